"""Creates, describes and updates an HTTP endpoint stream through the control plane with boto3,
as a test suite written against AWS would, puts records and flushes; prints what boto3 saw as
JSON for tests/e2e/http_endpoint.rs, with the error codes of requests AWS refuses.

usage: http_endpoint_api.py ENDPOINT RECEIVER_URL
"""
import json
import sys
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

endpoint, url = sys.argv[1:3]
# The model's checks are the server's to make (as AWS answers them), not boto3's.
fh = boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test",
                  config=Config(parameter_validation=False))
out = {"errors": {}}


def config(**changes):
    c = {
        "EndpointConfiguration": {"Url": url, "Name": "receiver", "AccessKey": "k-123"},
        "RequestConfiguration": {"ContentEncoding": "GZIP",
                                 "CommonAttributes": [{"AttributeName": "source",
                                                       "AttributeValue": "boto3"}]},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "RetryOptions": {"DurationInSeconds": 60},
        "S3BackupMode": "FailedDataOnly",
        "RoleARN": "arn:aws:iam::000000000000:role/firehose",
        "S3Configuration": {"RoleARN": "arn:aws:iam::000000000000:role/firehose",
                            "BucketARN": "arn:aws:s3:::api-backup",
                            "ErrorOutputPrefix": "failed/"},
    }
    c.update(changes)
    return c


def code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    except ParamValidationError:
        return "client-side ParamValidationError"
    return None


def describe(name="api-http"):
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    for k in ("CreateTimestamp", "LastUpdateTimestamp"):
        if k in d:
            d[k] = d[k].isoformat()
    return d


def wait_active(name="api-http"):
    for _ in range(200):
        d = describe(name)
        if d["DeliveryStreamStatus"] == "ACTIVE":
            return d
        time.sleep(0.1)
    raise SystemExit(f"{name} never became ACTIVE: {d}")


fh.create_delivery_stream(DeliveryStreamName="api-http", DeliveryStreamType="DirectPut",
                          HttpEndpointDestinationConfiguration=config())
out["created"] = wait_active()
r = fh.put_record_batch(DeliveryStreamName="api-http",
                        Records=[{"Data": json.dumps({"i": i}).encode()} for i in range(50)])
out["put_failed"] = r["FailedPutCount"]
req = urllib.request.Request(endpoint + "/v1/streams/api-http/flush", method="POST", data=b"")
out["flushed"] = json.load(urllib.request.urlopen(req))["keys"]
fh.update_destination(DeliveryStreamName="api-http", CurrentDeliveryStreamVersionId="1",
                      DestinationId="destinationId-000000000001",
                      HttpEndpointDestinationUpdate={"RetryOptions": {"DurationInSeconds": 120}})
out["updated"] = wait_active()

bad_url = config(EndpointConfiguration={"Url": "http://127.0.0.1:1/x"})
out["errors"]["http_url"] = code(lambda: fh.create_delivery_stream(
    DeliveryStreamName="bad-url", HttpEndpointDestinationConfiguration=bad_url))
big = config(BufferingHints={"SizeInMBs": 65, "IntervalInSeconds": 60})
out["errors"]["size_65"] = code(lambda: fh.create_delivery_stream(
    DeliveryStreamName="bad-size", HttpEndpointDestinationConfiguration=big))
twice = config(RequestConfiguration={"CommonAttributes": [
    {"AttributeName": "a", "AttributeValue": "1"}, {"AttributeName": "a", "AttributeValue": "2"}]})
out["errors"]["duplicate_attribute"] = code(lambda: fh.create_delivery_stream(
    DeliveryStreamName="bad-attrs", HttpEndpointDestinationConfiguration=twice))
out["errors"]["s3_update_of_http"] = code(lambda: fh.update_destination(
    DeliveryStreamName="api-http", CurrentDeliveryStreamVersionId="2",
    DestinationId="destinationId-000000000001",
    ExtendedS3DestinationUpdate={"Prefix": "x/"}))
print(json.dumps(out, default=str))
