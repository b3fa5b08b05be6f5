"""What a test suite waits for, firehosed next to moto's Firehose in the same run: process start
until the first request is answered, CreateDeliveryStream until the stream is ACTIVE (and takes
a record), one PutRecord round trip, and for firehosed a SIGHUP reload that adds a stream until
the stream is listed, and SIGTERM until exit (the drain). Medians of RUNS. moto also serves S3
for firehosed's streams.

usage: operations.py FIREHOSED_BINARY MOTO_SERVER [--runs 5]
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answered(url):
    try:
        urllib.request.urlopen(url, timeout=0.5).read()
        return True
    except OSError:
        return False


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.002)
    raise RuntimeError("timed out")


def firehose(endpoint):
    return boto3.client("firehose", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(retries={"max_attempts": 1}))


def create_to_active(fh, name, bucket):
    t = time.monotonic()
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": name + "/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}})
    wait_until(lambda: fh.describe_delivery_stream(DeliveryStreamName=name)
               ["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE")
    return time.monotonic() - t


def put_round_trip(fh, name):
    t = time.monotonic()
    fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"n":1}\n'})
    return time.monotonic() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("firehosed")
    p.add_argument("moto_server")
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="firehosed-ops.")
    res = {k: [] for k in ["fh_start", "moto_start", "fh_create", "moto_create", "fh_put",
                           "moto_put", "fh_reload", "fh_stop"]}
    s3_port = free_port()
    s3 = subprocess.Popen([a.moto_server, "-p", str(s3_port)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        s3_url = f"http://127.0.0.1:{s3_port}"
        wait_until(lambda: answered(s3_url + "/moto-api/"))
        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="x",
                     aws_secret_access_key="x").create_bucket(Bucket="lake")
        for run in range(a.runs):
            # moto: a fresh server per run, as a test suite starts one.
            port = free_port()
            t = time.monotonic()
            moto = subprocess.Popen([a.moto_server, "-p", str(port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: answered(url + "/moto-api/"))
            res["moto_start"].append(time.monotonic() - t)
            fh = firehose(url)
            boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                         aws_secret_access_key="x").create_bucket(Bucket="lake")
            res["moto_create"].append(create_to_active(fh, "s", "lake"))
            res["moto_put"].append(statistics.median(put_round_trip(fh, "s") for _ in range(20)))
            moto.terminate()
            moto.wait()

            state = os.path.join(work, f"run{run}")
            config = os.path.join(work, f"run{run}.yaml")
            base = (f"listen: 127.0.0.1:0\nstate_dir: {state}\n"
                    f"aws: {{region: us-east-1, endpoint_url: '{s3_url}', force_path_style: true}}\n"
                    "spool: {fsync: true}\ndelivery_streams:\n")
            stream = ("  - name: {n}\n    source: {{direct_put: {{}}}}\n    destinations:\n"
                      "      - s3: {{bucket: lake}}\n        prefix: {n}/\n"
                      "        buffering: {{size_mib: 1, interval_seconds: 60}}\n")
            with open(config, "w") as f:
                f.write(base + stream.format(n="file"))
            env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
            t = time.monotonic()
            d = subprocess.Popen([a.firehosed, "run", "--config", config], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = d.stdout.readline()
            url = line.strip().split("listening on ", 1)[1]
            wait_until(lambda: answered(url + "/readyz"))
            res["fh_start"].append(time.monotonic() - t)
            fh = firehose(url)
            res["fh_create"].append(create_to_active(fh, "s", "lake"))
            res["fh_put"].append(statistics.median(put_round_trip(fh, "s") for _ in range(20)))
            with open(config, "w") as f:
                f.write(base + stream.format(n="file") + stream.format(n="added"))
            t = time.monotonic()
            d.send_signal(signal.SIGHUP)
            wait_until(lambda: "added" in fh.list_delivery_streams()["DeliveryStreamNames"])
            res["fh_reload"].append(time.monotonic() - t)
            t = time.monotonic()
            d.send_signal(signal.SIGTERM)
            d.wait(timeout=120)
            res["fh_stop"].append(time.monotonic() - t)
    finally:
        s3.terminate()
        s3.wait()
    print(json.dumps({k: round(statistics.median(v) * 1000, 1) for k, v in res.items()}))


if __name__ == "__main__":
    main()
