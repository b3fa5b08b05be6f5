"""Sets a delivery stream up through the control plane with boto3, the way a test suite does it
against AWS: create (with tags), wait for ACTIVE, put, flush, update the destination (version
check), put again, flush, tags, delete, and the errors on the way. Prints what boto3 saw as
JSON for tests/e2e/control_plane.rs.

usage: control_plane.py ENDPOINT BUCKET FILE_STREAM
"""
import json
import sys
import time
import urllib.request

import boto3
from botocore.exceptions import ClientError

endpoint, bucket, file_stream = sys.argv[1:4]
fh = boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
out = {"errors": {}, "statuses": []}


def code(call):
    try:
        call()
    except ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"]]
    return None


def describe():
    return fh.describe_delivery_stream(DeliveryStreamName="api")["DeliveryStreamDescription"]


def flush():
    req = urllib.request.Request(endpoint + "/v1/streams/api/flush", method="POST", data=b"")
    return json.load(urllib.request.urlopen(req))["keys"]


created = fh.create_delivery_stream(
    DeliveryStreamName="api",
    DeliveryStreamType="DirectPut",
    ExtendedS3DestinationConfiguration={
        "RoleARN": "arn:aws:iam::000000000000:role/firehose",
        "BucketARN": "arn:aws:s3:::" + bucket,
        "Prefix": "v1/",
        "ErrorOutputPrefix": "errors/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        "CompressionFormat": "UNCOMPRESSED",
        "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]},
    },
    Tags=[{"Key": "team", "Value": "data"}],
)
out["arn"] = created["DeliveryStreamARN"]
for _ in range(200):
    status = describe()["DeliveryStreamStatus"]
    if not out["statuses"] or out["statuses"][-1] != status:
        out["statuses"].append(status)
    if status == "ACTIVE":
        break
    time.sleep(0.05)
out["errors"]["duplicate"] = code(lambda: fh.create_delivery_stream(
    DeliveryStreamName="api",
    ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::" + bucket}))
out["errors"]["invalid"] = code(lambda: fh.create_delivery_stream(
    DeliveryStreamName="bad",
    ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::" + bucket,
                                        "BufferingHints": {"SizeInMBs": 500}}))
out["errors"]["delete_file_stream"] = code(
    lambda: fh.delete_delivery_stream(DeliveryStreamName=file_stream))

d = describe()
out["before"] = {"version": d["VersionId"],
                 "prefix": d["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"],
                 "processing": d["Destinations"][0]["ExtendedS3DestinationDescription"][
                     "ProcessingConfiguration"]}
fh.put_record_batch(DeliveryStreamName="api",
                    Records=[{"Data": json.dumps({"n": i}).encode()} for i in range(10)])
out["keys_before"] = flush()

# Buffered when the update comes: delivered by the old configuration, once.
fh.put_record_batch(DeliveryStreamName="api",
                    Records=[{"Data": json.dumps({"n": i}).encode()} for i in range(100, 105)])
out["errors"]["stale_version"] = code(lambda: fh.update_destination(
    DeliveryStreamName="api", CurrentDeliveryStreamVersionId="7",
    DestinationId="destinationId-000000000001",
    ExtendedS3DestinationUpdate={"Prefix": "nope/"}))
fh.update_destination(
    DeliveryStreamName="api", CurrentDeliveryStreamVersionId=d["VersionId"],
    DestinationId="destinationId-000000000001",
    ExtendedS3DestinationUpdate={"Prefix": "v2/", "CompressionFormat": "GZIP"})
d = describe()
ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
out["after"] = {"version": d["VersionId"], "prefix": ext["Prefix"],
                "compression": ext["CompressionFormat"], "status": d["DeliveryStreamStatus"]}
fh.put_record_batch(DeliveryStreamName="api",
                    Records=[{"Data": json.dumps({"n": i}).encode()} for i in range(10, 20)])
out["keys_after"] = flush()

fh.tag_delivery_stream(DeliveryStreamName="api", Tags=[{"Key": "env", "Value": "test"}])
fh.untag_delivery_stream(DeliveryStreamName="api", TagKeys=["team"])
out["tags"] = fh.list_tags_for_delivery_stream(DeliveryStreamName="api")["Tags"]
out["listed"] = fh.list_delivery_streams()["DeliveryStreamNames"]

fh.delete_delivery_stream(DeliveryStreamName="api")
gone = None
for _ in range(200):
    gone = code(describe)
    if gone:
        break
    time.sleep(0.05)
out["errors"]["after_delete"] = gone
out["listed_after_delete"] = fh.list_delivery_streams()["DeliveryStreamNames"]
print(json.dumps(out))
