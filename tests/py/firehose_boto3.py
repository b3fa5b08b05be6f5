"""Drives firehosed with boto3's firehose client, unchanged but for the endpoint, and prints
what boto3 parsed, as JSON, for the Rust test to check.

usage: firehose_boto3.py ENDPOINT STREAM
"""
import base64
import json
import sys

import boto3
from botocore.exceptions import ClientError

endpoint, stream = sys.argv[1:3]
fh = boto3.client(
    "firehose",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
out = {}
out["list"] = fh.list_delivery_streams()
desc = fh.describe_delivery_stream(DeliveryStreamName=stream)["DeliveryStreamDescription"]
desc["CreateTimestamp"] = desc["CreateTimestamp"].isoformat()
# AWS leaves LastUpdateTimestamp out of a stream that was never updated.
out["has_last_update"] = "LastUpdateTimestamp" in desc
out["describe"] = desc
r = fh.put_record(DeliveryStreamName=stream, Record={"Data": b'{"via":"put_record"}\n'})
out["put_record"] = {"RecordId": r["RecordId"], "Encrypted": r["Encrypted"]}
records = [{"Data": json.dumps({"via": "batch", "i": i}).encode() + b"\n"} for i in range(500)]
r = fh.put_record_batch(DeliveryStreamName=stream, Records=records)
out["batch"] = {
    "FailedPutCount": r["FailedPutCount"],
    "count": len(r["RequestResponses"]),
    "ids": len({x["RecordId"] for x in r["RequestResponses"]}),
}
errors = {}
try:
    fh.put_record(DeliveryStreamName="no-such-stream", Record={"Data": b"x"})
except ClientError as e:
    errors["unknown_stream"] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
try:
    fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": b"x"}] * 501)
except ClientError as e:
    errors["too_many"] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
try:
    fh.put_record(DeliveryStreamName=stream, Record={"Data": b"x" * 1_024_001})
except ClientError as e:
    errors["too_big"] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
out["errors"] = errors
print(json.dumps(out, default=str))
