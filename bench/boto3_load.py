"""The same boto3 load against any Firehose endpoint: PutRecordBatch calls of 500 x 1 KiB JSON
records from several threads for a fixed time. Prints records/s, MB/s, p50/p99 latency.

usage: boto3_load.py ENDPOINT STREAM [--threads 4] [--seconds 10] [--create-on-moto BUCKET]
"""
import argparse
import json
import threading
import time

import boto3
from botocore.config import Config


def records(salt, count=500, size=1024):
    out = []
    for i in range(count):
        n = salt * count + i
        r = json.dumps({"event_id": n, "user": f"user-{n % 9973}", "action": ["view", "click", "purchase", "scroll"][n % 4], "pad": ""})
        r = r[:-2] + "x" * (size - len(r) - 1) + '"}'
        out.append({"Data": (r + "\n").encode()[:size]})
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("endpoint")
    p.add_argument("stream")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--create-on-moto", metavar="BUCKET")
    a = p.parse_args()
    kw = dict(endpoint_url=a.endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
              config=Config(retries={"max_attempts": 1}, max_pool_connections=a.threads * 2))
    if a.create_on_moto:
        boto3.client("s3", **kw).create_bucket(Bucket=a.create_on_moto)
        boto3.client("firehose", **kw).create_delivery_stream(
            DeliveryStreamName=a.stream,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{a.create_on_moto}",
                "CompressionFormat": "GZIP",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            },
        )
    batches = [records(s) for s in range(8)]
    lat, count, errors = [], [0], [0]
    lock = threading.Lock()
    deadline = time.time() + a.seconds

    def worker(t):
        fh = boto3.client("firehose", **kw)
        i = t
        while time.time() < deadline:
            start = time.perf_counter()
            r = fh.put_record_batch(DeliveryStreamName=a.stream, Records=batches[i % len(batches)])
            took = time.perf_counter() - start
            i += 1
            with lock:
                lat.append(took)
                count[0] += 500 - r["FailedPutCount"]
                errors[0] += r["FailedPutCount"]

    start = time.time()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - start
    lat.sort()
    pct = lambda q: lat[min(int(len(lat) * q), len(lat) - 1)] * 1000 if lat else 0
    print(f"records_per_s={count[0] / elapsed:.0f} MB_per_s={count[0] * 1024 / elapsed / 1e6:.1f} "
          f"p50_ms={pct(0.5):.1f} p99_ms={pct(0.99):.1f} failed={errors[0]}")


if __name__ == "__main__":
    main()
