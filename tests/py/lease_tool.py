"""The lease table of a Kinesis fleet, read with boto3 (DynamoDB on moto).

usage:
  lease_tool.py ENDPOINT scan TABLE    -> JSON list of items, attribute values unwrapped
  lease_tool.py ENDPOINT watch TABLE SECONDS OUTFILE
        scans every 0.2 s for SECONDS, appending each scan (JSON list) as a line to OUTFILE
"""
import json
import sys
import time

import boto3


def client(endpoint):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def unwrap(v):
    (kind, value), = v.items()
    if kind == "N":
        return int(value)
    if kind == "SS":
        return sorted(value)
    return value


def scan(d, table):
    items, start = [], None
    while True:
        kw = {"TableName": table, "ConsistentRead": True}
        if start:
            kw["ExclusiveStartKey"] = start
        r = d.scan(**kw)
        items += [{k: unwrap(v) for k, v in item.items()} for item in r["Items"]]
        start = r.get("LastEvaluatedKey")
        if not start:
            return sorted(items, key=lambda i: i["leaseKey"])


def main():
    endpoint, cmd, table, *a = sys.argv[1:]
    d = client(endpoint)
    if cmd == "scan":
        print(json.dumps(scan(d, table)))
    elif cmd == "watch":
        seconds, out = float(a[0]), a[1]
        end = time.time() + seconds
        with open(out, "a") as f:
            while time.time() < end:
                try:
                    f.write(json.dumps(scan(d, table)) + "\n")
                    f.flush()
                except Exception:  # the table may not exist yet, or the server be paused
                    pass
                time.sleep(0.2)
    else:
        raise SystemExit(f"unknown command {cmd}")


main()
