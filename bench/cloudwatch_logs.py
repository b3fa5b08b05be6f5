"""Sends CloudWatch Logs subscription documents to a firehosed stream as fast as it takes them
and prints the figures of bench/cloudwatch_logs.sh.

usage: cloudwatch_logs.py URL STREAM DOCS EVENTS_PER_DOC [--ceiling]

DOCS documents of EVENTS_PER_DOC log events (a realistic ~230-byte JSON application log line
each), GZIP'd as CloudWatch Logs sends them, in PutRecordBatch calls of 500 records over 4
connections; then a flush. Prints events/s delivered (load + final flush) and the MB/s of
decompressed documents. --ceiling instead prints how fast this machine's Python
(zlib + json, one core) decompresses and extracts the same documents.
"""
import base64
import gzip
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

url, stream, docs, per_doc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(7)
paths = ["/api/orders", "/api/cart", "/health", "/api/users/login", "/static/app.js"]


def document(d):
    events = []
    for e in range(per_doc):
        msg = json.dumps({
            "time": f"2026-12-02T10:{d % 60:02d}:{e % 60:02d}.{e:03d}Z", "level": rng.choice(["INFO", "WARN", "ERROR"]),
            "requestId": f"{rng.getrandbits(64):016x}-{d}-{e}", "method": "GET", "path": rng.choice(paths),
            "status": rng.choice([200, 200, 200, 404, 500]), "latency_ms": rng.randint(1, 900),
            "msg": "request completed for user " + str(rng.randint(1, 10_000)),
        }, separators=(",", ":"))
        events.append({"id": str(10**55 + d * per_doc + e), "timestamp": 1764669600000 + e, "message": msg})
    return json.dumps({"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/ecs/web",
                       "logStream": f"web/{d % 8}", "subscriptionFilters": ["all"], "logEvents": events},
                      separators=(",", ":")).encode()


plain = [document(d) for d in range(docs)]
raw_bytes = sum(len(p) for p in plain)
gz = [gzip.compress(p, compresslevel=6) for p in plain]
if "--ceiling" in sys.argv:
    t = time.perf_counter()
    n = 0
    for g in gz:
        n += len([e["message"] for e in json.loads(gzip.decompress(g))["logEvents"]])
    s = time.perf_counter() - t
    print(f"{n / s:,.0f} events/s, {raw_bytes / s / 1e6:.1f} MB/s")
    sys.exit(0)
bodies = []
for i in range(0, docs, 500):
    recs = [{"Data": base64.b64encode(g).decode()} for g in gz[i:i + 500]]
    bodies.append(json.dumps({"DeliveryStreamName": stream, "Records": recs}).encode())
u = urllib.parse.urlparse(url)
headers = {"content-type": "application/x-amz-json-1.1", "x-amz-target": "Firehose_20150804.PutRecordBatch"}


def sender(mine):
    c = http.client.HTTPConnection(u.hostname, u.port)
    for b in mine:
        while True:
            c.request("POST", "/", b, headers)
            r = c.getresponse()
            answer = json.loads(r.read())
            if r.status == 200 and answer["FailedPutCount"] == 0:
                break
            time.sleep(0.05)  # "Slow down.": the same batch again


start = time.perf_counter()
threads = [threading.Thread(target=sender, args=(bodies[k::4],)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
acked = time.perf_counter() - start
c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
c.request("POST", f"/v1/streams/{stream}/flush", b"")
assert c.getresponse().status == 200
total = time.perf_counter() - start
events = docs * per_doc
print(f"{events / total:,.0f} events/s delivered ({raw_bytes / total / 1e6:.1f} MB/s of documents; "
      f"{sum(map(len, gz)) / 1e6:.1f} MB of GZIP acknowledged in {acked:.1f} s, all delivered in {total:.1f} s)")
