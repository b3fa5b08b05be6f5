"""Creates, describes and updates an Iceberg delivery stream with boto3's firehose client,
unchanged but for the endpoint, and prints what boto3 parsed, as JSON, for tests/e2e/iceberg.rs.

usage: iceberg_api.py ENDPOINT STREAM
"""
import json
import sys
import time

import boto3

endpoint, stream = sys.argv[1:3]
fh = boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
role = "arn:aws:iam::123456789012:role/firehose"
fh.create_delivery_stream(
    DeliveryStreamName=stream,
    DeliveryStreamType="DirectPut",
    IcebergDestinationConfiguration={
        "RoleARN": role,
        "CatalogConfiguration": {"CatalogARN": "arn:aws:glue:us-east-1:123456789012:catalog",
                                 "WarehouseLocation": "s3://warehouse/"},
        "DestinationTableConfigurationList": [
            {"DestinationDatabaseName": "db", "DestinationTableName": "events",
             "S3ErrorOutputPrefix": "errors/events/"},
        ],
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        "RetryOptions": {"DurationInSeconds": 120},
        "S3Configuration": {"RoleARN": role, "BucketARN": "arn:aws:s3:::errors",
                            "ErrorOutputPrefix": "iceberg-errors/"},
    },
)
for _ in range(300):
    d = fh.describe_delivery_stream(DeliveryStreamName=stream)["DeliveryStreamDescription"]
    if d["DeliveryStreamStatus"] != "CREATING":
        break
    time.sleep(0.1)
out = {"status": d["DeliveryStreamStatus"], "created": d["Destinations"][0]}
records = [{"Data": json.dumps({"id": i, "name": f"n{i}"}).encode()} for i in range(50)]
r = fh.put_record_batch(DeliveryStreamName=stream, Records=records)
out["failed_put_count"] = r["FailedPutCount"]
fh.update_destination(
    DeliveryStreamName=stream,
    CurrentDeliveryStreamVersionId=d["VersionId"],
    DestinationId=d["Destinations"][0]["DestinationId"],
    IcebergDestinationUpdate={"AppendOnly": True, "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 30}},
)
for _ in range(300):
    d = fh.describe_delivery_stream(DeliveryStreamName=stream)["DeliveryStreamDescription"]
    if d["DeliveryStreamStatus"] == "ACTIVE" and d["VersionId"] != "1":
        break
    time.sleep(0.1)
out["updated"] = d["Destinations"][0]
out["version"] = d["VersionId"]
records = [{"Data": json.dumps({"id": 100 + i, "name": f"m{i}"}).encode()} for i in range(5)]
out["failed_after_update"] = fh.put_record_batch(DeliveryStreamName=stream, Records=records)["FailedPutCount"]
print(json.dumps(out, default=str))
