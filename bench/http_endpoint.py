"""The HTTP endpoint benchmark's parts (bench/http_endpoint.sh).

  receiver PORT_FILE MODE   an endpoint answering as AWS's specification says; MODE decode:
                            every request decoded (gzip, JSON, base64), as a real receiver
                            would; count: gunzipped, records counted without parsing (so the
                            receiver costs little). GET /stats: {"requests", "records", "bytes"}
  load URL N                N ~1 KiB JSON records into stream "load" by plain ingest (1 MiB
                            bodies, 4 connections), then a flush; prints the times
  ceiling URL N GZIP        the receiver's own ceiling: N records in requests of at most 5 MiB of
                            body (as firehosed cuts them) built ahead, POSTed one at a time on
                            one connection (what one destination does)
"""
import base64
import gzip
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

stats = {"requests": 0, "records": 0, "bytes": 0}
MODE = "decode"
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        out = json.dumps(stats).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        if MODE == "decode":
            body = json.loads(raw)
            rid, count = body["requestId"], len(body["records"])
            n = sum(len(base64.b64decode(r["data"])) for r in body["records"])
        else:
            rid = json.loads(raw[: raw.index(b',"records"')] + b"}")["requestId"]
            count, n = raw.count(b'{"data":'), len(raw)
        with lock:
            stats["requests"] += 1
            stats["records"] += count
            stats["bytes"] += n
        out = json.dumps({"requestId": rid, "timestamp": int(time.time() * 1000)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def record(i):
    head = '{"i":%d,"service":"checkout","level":"info","msg":"' % i
    return head + ("payment accepted for order %d " % i) * 28 + '"}'


def load(url, n):
    u = urllib.parse.urlparse(url)
    bodies, chunk, size = [], [], 0
    for i in range(n):
        r = record(i)
        chunk.append(r)
        size += len(r) + 1
        if size >= 1 << 20:
            bodies.append("\n".join(chunk).encode())
            chunk, size = [], 0
    if chunk:
        bodies.append("\n".join(chunk).encode())
    start = time.time()

    def worker(k):
        c = http.client.HTTPConnection(u.hostname, u.port)
        for b in bodies[k::4]:
            c.request("POST", "/v1/streams/load/records", body=b)
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acked = time.time()
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    c.request("POST", "/v1/streams/load/flush", body=b"")
    c.getresponse().read()
    done = time.time()
    mb = sum(len(b) for b in bodies) / 1e6
    print(json.dumps({"records": n, "mb": round(mb, 1), "ack_s": round(acked - start, 2),
                      "delivered_s": round(done - start, 2),
                      "records_per_s": int(n / (done - start))}))


def ceiling(url, n, gz):
    u = urllib.parse.urlparse(url)
    bodies, recs, size = [], [], 0

    def cut():
        b = json.dumps({"requestId": str(uuid.uuid4()), "timestamp": 0, "records": recs},
                       separators=(",", ":")).encode()
        bodies.append(gzip.compress(b, 6) if gz == "yes" else b)

    for i in range(n):
        data = base64.b64encode(record(i).encode()).decode()
        # firehosed counts each record's base64 and {"data":""}, toward the 5 MiB.
        if recs and size + len(data) + 12 > 5 << 20:
            cut()
            recs, size = [], 0
        recs.append({"data": data})
        size += len(data) + 12
    if recs:
        cut()
    c = http.client.HTTPConnection(u.hostname, u.port)
    t = time.time()
    for b in bodies:
        h = {"Content-Type": "application/json"}
        if gz == "yes":
            h["Content-Encoding"] = "gzip"
        c.request("POST", "/", body=b, headers=h)
        c.getresponse().read()
    s = time.time() - t
    print(json.dumps({"records": n, "s": round(s, 2), "records_per_s": int(n / s)}))


def main():
    cmd = sys.argv[1]
    if cmd == "receiver":
        global MODE
        MODE = sys.argv[3]
        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        with open(sys.argv[2], "w") as f:
            f.write(str(server.server_address[1]))
        server.serve_forever()
    elif cmd == "load":
        load(sys.argv[2], int(sys.argv[3]))
    elif cmd == "ceiling":
        ceiling(sys.argv[2], int(sys.argv[3]), sys.argv[4])


if __name__ == "__main__":
    main()
