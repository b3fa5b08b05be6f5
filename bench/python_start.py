"""Start-up and per-test cost of a Firehose for a test suite: firehosed through its Python
package next to moto (its standalone server, its in-process ThreadedMotoServer, and the
`mock_aws` decorator), measured in one run on one machine.

usage: python_start.py RUNS    (prints a Markdown table; run by bench/python_start.sh)

- start: from the constructor to the first request it would answer (firehosed: Firehosed()
  to /readyz; moto_server: the process started to its first HTTP answer; ThreadedMotoServer:
  start() to its first answer; mock_aws: entering the decorator's context to a boto3 call
  answered).
- a whole test: start, create a stream through boto3, wait for ACTIVE, put 1,000 records
  (2 x PutRecordBatch of 500), deliver (firehosed: flush; moto writes at once) and read the
  object(s) back, stop. boto3 is imported and a client's model loaded before timing.
"""
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import boto3

from firehosed.testing import Firehosed

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ROLE = "arn:aws:iam::000000000000:role/r"
CREDS = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
RECORDS = [{"Data": (json.dumps({"i": i, "pad": "x" * 40}) + "\n").encode()} for i in range(1000)]
boto3.client("firehose", endpoint_url="http://127.0.0.1:1", **CREDS)  # load the model once


def ms(samples):
    s = sorted(samples)
    return f"{statistics.median(s):.1f} | {s[int(len(s) * 0.95) - 1]:.1f}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, deadline=30):
    end = time.monotonic() + deadline
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # answered (moto says 404 or 403 to a bare GET)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.002)


def firehosed_start():
    t = time.perf_counter()
    fh = Firehosed().start()
    took = (time.perf_counter() - t) * 1000
    fh.stop()
    return took


def moto_server_start():
    port = free_port()
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/")
    took = (time.perf_counter() - t) * 1000
    p.terminate()
    p.wait()
    return took


def threaded_moto_start():
    from moto.server import ThreadedMotoServer

    t = time.perf_counter()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    wait_http(f"http://{host}:{port}/")
    took = (time.perf_counter() - t) * 1000
    server.stop()
    return took


def mock_aws_start():
    from moto import mock_aws

    t = time.perf_counter()
    with mock_aws():
        boto3.client("firehose", **CREDS).list_delivery_streams()
        took = (time.perf_counter() - t) * 1000
    return took


def create_and_wait(fh, name, bucket):
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": "t/",
        "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300}})
    while fh.describe_delivery_stream(DeliveryStreamName=name)[
            "DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        time.sleep(0.002)
    for i in (0, 500):
        assert fh.put_record_batch(DeliveryStreamName=name, Records=RECORDS[i:i + 500])["FailedPutCount"] == 0


def firehosed_test():
    t = time.perf_counter()
    with Firehosed() as d:
        create_and_wait(d.client(), "t", "lake")
        d.flush("t")
        [body] = d.objects("lake").values()
        assert body.count(b"\n") == 1000
    return (time.perf_counter() - t) * 1000


def mock_aws_test():
    from moto import mock_aws

    t = time.perf_counter()
    with mock_aws():
        s3 = boto3.client("s3", **CREDS)
        s3.create_bucket(Bucket="lake")
        create_and_wait(boto3.client("firehose", **CREDS), "t", "lake")
        objects = s3.list_objects_v2(Bucket="lake")["Contents"]
        lines = sum(s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read().count(b"\n") for o in objects)
        assert lines == 1000
    return (time.perf_counter() - t) * 1000


rows = [
    ("firehosed: `Firehosed()` to ready", firehosed_start),
    ("moto_server (subprocess) to its first answer", moto_server_start),
    ("moto `ThreadedMotoServer` to its first answer", threaded_moto_start),
    ("moto `mock_aws` (in process) to a call answered", mock_aws_start),
    ("a whole test, firehosed (start, create, 1,000 records, flush, read, stop)", firehosed_test),
    ("a whole test, moto `mock_aws` (start, create, 1,000 records, read)", mock_aws_test),
]
print("| what | p50 ms | p95 ms |")
print("|---|---|---|")
for name, f in rows:
    runs = RUNS if "moto_server" not in name else max(3, RUNS // 4)
    f()  # warm: imports, page cache
    print(f"| {name} | {ms([f() for _ in range(runs)])} |", flush=True)
