"""Enhanced fan-out next to polling, on kinesis-mock over TLS/HTTP/2 (the test tools' pin).

One firehosed reads one Kinesis stream twice: delivery stream `polled` (GetRecords) and `pushed`
(SubscribeToShard as a registered consumer).
  latency:    one record put every ~0.5 s; for each, the time from PutRecord's answer until each
              delivery stream's reader counted it (firehose_data_read_from_kinesis_stream_records_total,
              scraped every 5 ms): put-to-processor latency, p50/p90/max.
  throughput: a backlog of N ~1 KiB records in one shard, read from TRIM_HORIZON by a fresh
              instance: records/s and MB/s per shard for each way of reading.
What the server does sets these figures: kinesis-mock looks for new records once a second for a
subscription, and its own speed bounds the backlog; AWS pushes as records arrive (about 70 ms
quoted) and allows 2 MB/s per shard per consumer. usage: bench/kinesis_fan_out.sh (it builds the
release binary); python3 bench/kinesis_fan_out.py BINARY [N=20000] [SAMPLES=40]
"""
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
SAMPLES = int(sys.argv[3]) if len(sys.argv) > 3 else 40
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.environ.get("FIREHOSED_TOOLS", os.path.expanduser("~/.cache/firehosed-tools"))
work = tempfile.mkdtemp(prefix="firehosed-efo-")
procs = []


def sh(*args):
    subprocess.run(args, cwd=work, check=True, capture_output=True)


def certificate():
    with open(f"{work}/leaf.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    sh("openssl", "req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
    sh("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
       "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")
    cert = {"server": {"key": open(f"{work}/leaf.key").read(), "cert": open(f"{work}/leaf.pem").read()}}
    json.dump(cert, open(f"{work}/server.json", "w"))


def kinesis_mock():
    env = dict(os.environ, KINESIS_MOCK_TLS_PORT="1", KINESIS_MOCK_PLAIN_PORT="2",
               KINESIS_MOCK_CERT_PATH=f"{work}/server.json", LOG_LEVEL="WARN",
               CREATE_STREAM_DURATION="0ms", REGISTER_STREAM_CONSUMER_DURATION="100ms")
    main = f"{TOOLS}/kinesis-mock/node_modules/kinesis-local/main.js"
    p = subprocess.Popen(["node", "-r", f"{REPO}/tests/py/kinesis_mock.js", main], cwd=work, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(p)
    for line in p.stdout:
        if line.startswith("tls-listening "):
            return f"https://127.0.0.1:{int(line.split()[1])}"
    raise SystemExit("kinesis-mock did not start")


def daemon(name, endpoint, stream):
    cfg = f"{work}/{name}.yaml"
    streams = ""
    for ds, efo in (("polled", ""), ("pushed", "        enhanced_fan_out: {consumer_name: bench}\n")):
        streams += f"""  - name: {ds}
    source:
      kinesis_stream:
        stream_name: {stream}
        endpoint_url: '{endpoint}'
        starting_position: TRIM_HORIZON
{efo}    destinations:
      - directory: {work}/{name}-{ds}
        buffering: {{size_mib: 64, interval_seconds: 60}}
"""
    open(cfg, "w").write(f"listen: 127.0.0.1:0\nstate_dir: {work}/{name}-state\ndelivery_streams:\n{streams}")
    env = dict(os.environ, SSL_CERT_FILE=f"{work}/ca.pem", RUST_LOG="warn")
    p = subprocess.Popen([BIN, "run", "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=env, text=True)
    procs.append(p)
    for line in p.stdout:
        m = re.search(r"listening on (\S+)", line)
        if m:
            return m.group(1)
    raise SystemExit("firehosed did not start")


def read_counts(url):
    text = urllib.request.urlopen(f"{url}/metrics").read().decode()
    out = {"polled": 0.0, "pushed": 0.0}
    for line in text.splitlines():
        m = re.match(r'firehose_data_read_from_kinesis_stream_records_total\{delivery_stream="(\w+)"', line)
        if m and m.group(1) in out:
            out[m.group(1)] += float(line.rsplit(" ", 1)[1])
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


try:
    certificate()
    endpoint = kinesis_mock()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    k = boto3.client("kinesis", endpoint_url=endpoint, verify=f"{work}/ca.pem", region_name="us-east-1")
    for s in ("lat", "tp"):
        k.create_stream(StreamName=s, ShardCount=1)
    time.sleep(1)

    # Latency.
    url = daemon("lat", endpoint, "lat")
    deadline = time.time() + 30
    while time.time() < deadline and "subscriptions_started_total{delivery_stream=\"pushed\"" not in \
            urllib.request.urlopen(f"{url}/metrics").read().decode():
        time.sleep(0.1)
    time.sleep(3)
    lat = {"polled": [], "pushed": []}
    for i in range(SAMPLES):
        before = read_counts(url)
        k.put_record(StreamName="lat", Data=json.dumps({"i": i}).encode(), PartitionKey="k")
        t0 = time.monotonic()
        pending = {"polled", "pushed"}
        while pending and time.monotonic() - t0 < 10:
            now = read_counts(url)
            for ds in list(pending):
                if now[ds] > before[ds]:
                    lat[ds].append((time.monotonic() - t0) * 1000)
                    pending.discard(ds)
            time.sleep(0.005)
        time.sleep(random.uniform(0.3, 0.7))

    # Throughput: a backlog read by a fresh instance.
    pad = "x" * 990
    for i in range(0, N, 500):
        recs = [{"Data": f'{{"i":{j},"p":"{pad}"}}'[:1024].encode(), "PartitionKey": f"k{j % 97}"}
                for j in range(i, min(N, i + 500))]
        assert k.put_records(StreamName="tp", Records=recs)["FailedRecordCount"] == 0
    t0 = time.monotonic()
    url = daemon("tp", endpoint, "tp")
    took = {}
    while len(took) < 2 and time.monotonic() - t0 < 600:
        now = read_counts(url)
        for ds in ("polled", "pushed"):
            if ds not in took and now[ds] >= N:
                took[ds] = time.monotonic() - t0
        time.sleep(0.05)

    subs = [l for l in urllib.request.urlopen(f"{url}/metrics").read().decode().splitlines()
            if l.startswith("firehose_kinesis_subscri") and not l.endswith(" 0")]
    print("\n".join(subs))
    print(f"kinesis-mock 0.6.2 over TLS/h2, one shard; firehosed {os.path.relpath(BIN, REPO)}")
    print("| reading | put-to-reader p50 | p90 | max | backlog of %d x 1 KiB: records/s | MB/s |" % N)
    print("|---|---|---|---|---|---|")
    for ds, what in (("polled", "polling (GetRecords)"), ("pushed", "enhanced fan-out (SubscribeToShard)")):
        xs = lat[ds]
        rate = N / took[ds] if ds in took else float("nan")
        print(f"| {what} | {pct(xs, 50):.0f} ms | {pct(xs, 90):.0f} ms | {max(xs):.0f} ms "
              f"| {rate:,.0f} | {rate * 1024 / 1e6:.2f} |  (samples {len(xs)}, mean {statistics.mean(xs):.0f} ms)")
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run(["rm", "-rf", work])
