"""Sends records built the way a CloudWatch Logs subscription filter builds them to a Firehose
stream, with boto3's PutRecordBatch: each record is one GZIP-compressed JSON document
(messageType, owner, logGroup, logStream, subscriptionFilters, logEvents[{id, timestamp,
message}]), as the CloudWatch Logs documentation describes for subscription filters
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html).

usage: cloudwatch_logs.py ENDPOINT STREAM SPEC.json

SPEC is a list of records to send, in order; each is one of
  {"data": {"logGroup": G, "logStream": S, "messages": [M, ...]}}
  {"control": true}                      the health check CloudWatch Logs sends first
  {"raw_base64": B}                      bytes sent as they are (not GZIP)
  {"gzip_of": TEXT}                      GZIP of a document that is not CloudWatch Logs'
  {"bomb_mib": N}                        GZIP of N MiB of zeros

Prints {"sent": N, "failed": N} and the record ids: every record must be acknowledged.
"""
import base64
import gzip
import json
import sys
import time

import boto3

endpoint, stream, spec_path = sys.argv[1:4]
with open(spec_path) as f:
    spec = json.load(f)

fh = boto3.client(
    "firehose",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)

event_id = 35000000000000000000000000000000000000000000000000000000


def document(item):
    global event_id
    if "control" in item:
        return {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [
                {
                    "id": "",
                    "timestamp": int(time.time() * 1000),
                    "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
                }
            ],
        }
    d = item["data"]
    events = []
    for m in d["messages"]:
        event_id += 1
        events.append({"id": str(event_id), "timestamp": int(time.time() * 1000), "message": m})
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": d["logGroup"],
        "logStream": d["logStream"],
        "subscriptionFilters": ["firehosed-test"],
        "logEvents": events,
    }


def payload(item):
    if "raw_base64" in item:
        return base64.b64decode(item["raw_base64"])
    if "gzip_of" in item:
        return gzip.compress(item["gzip_of"].encode())
    if "bomb_mib" in item:
        return gzip.compress(b"\0" * (item["bomb_mib"] << 20), compresslevel=9)
    # CloudWatch Logs writes compact JSON, then GZIP.
    return gzip.compress(json.dumps(document(item), separators=(",", ":")).encode())


records = [{"Data": payload(item)} for item in spec]
sent = failed = 0
batch, size = [], 0
for r in records + [None]:
    if r is None or len(batch) == 500 or size + len(r["Data"]) > 3_500_000:
        if batch:
            answer = fh.put_record_batch(DeliveryStreamName=stream, Records=batch)
            failed += answer["FailedPutCount"]
            sent += len(batch)
        batch, size = [], 0
    if r is not None:
        batch.append(r)
        size += len(r["Data"])
print(json.dumps({"sent": sent, "failed": failed}))
