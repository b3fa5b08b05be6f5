"""An HTTP endpoint for firehosed's http_endpoint destination, written from AWS's "HTTP
endpoint delivery request and response specifications"
(https://docs.aws.amazon.com/firehose/latest/dev/httpdeliveryrequestresponse.html).

It checks every request against the specification and appends one JSON line per request to
LOG: the request id, the records (base64, as sent), what it answered, and every violation
found. What it answers comes from PLAN, a JSON file read on each request (so a test can change
it while the daemon runs): {"sequence": [behaviour, ...], "default": behaviour}; the n-th
request gets sequence[n], later ones the default. Behaviours: "ok", "500", "201",
"wrong_id", "bad_json", "text_plain", "sleep:SECONDS" (then ok).

usage: http_receiver.py LOG PLAN --path /p --access-key K --attributes JSON --gzip yes|no
       --stream NAME [--cert C --key K]
Prints "PORT <n>" once listening on 127.0.0.1.
"""

import argparse
import base64
import binascii
import gzip
import json
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ARN = re.compile(r"^arn:aws:firehose:[a-z0-9-]+:\d{12}:deliverystream/(.+)$")

args = None
lock = threading.Lock()
count = [0]


def behaviour():
    with lock:
        n = count[0]
        count[0] += 1
    with open(args.plan) as f:
        plan = json.load(f)
    seq = plan.get("sequence", [])
    return seq[n] if n < len(seq) else plan.get("default", "ok")


def check(handler, raw):
    """The request's violations of the specification, and its decoded body."""
    v = []
    h = handler.headers
    if handler.command != "POST":
        v.append(f"method {handler.command}")
    if handler.path != args.path:
        v.append(f"path {handler.path!r}, configured {args.path!r}")
    if h.get("Content-Type") != "application/json":
        v.append(f"Content-Type {h.get('Content-Type')!r}")
    if h.get("X-Amz-Firehose-Protocol-Version") != "1.0":
        v.append(f"X-Amz-Firehose-Protocol-Version {h.get('X-Amz-Firehose-Protocol-Version')!r}")
    rid = h.get("X-Amz-Firehose-Request-Id")
    if not rid or not UUID.match(rid):
        v.append(f"X-Amz-Firehose-Request-Id {rid!r} is not a GUID")
    arn = ARN.match(h.get("X-Amz-Firehose-Source-Arn") or "")
    if not arn or arn.group(1) != args.stream:
        v.append(f"X-Amz-Firehose-Source-Arn {h.get('X-Amz-Firehose-Source-Arn')!r}")
    if h.get("X-Amz-Firehose-Access-Key") != args.access_key:
        v.append(f"X-Amz-Firehose-Access-Key {h.get('X-Amz-Firehose-Access-Key')!r}")
    attributes = h.get("X-Amz-Firehose-Common-Attributes")
    want = json.loads(args.attributes) if args.attributes else None
    got = json.loads(attributes) if attributes else None
    if (want and got != {"commonAttributes": want}) or (not want and got is not None):
        v.append(f"X-Amz-Firehose-Common-Attributes {attributes!r}")
    if h.get("Transfer-Encoding"):
        v.append("chunked: Content-Length must be used")
    if int(h.get("Content-Length") or -1) != len(raw):
        v.append(f"Content-Length {h.get('Content-Length')} for {len(raw)} bytes")
    encoding = h.get("Content-Encoding")
    if args.gzip == "yes":
        if encoding != "gzip":
            v.append(f"Content-Encoding {encoding!r}, configured GZIP")
        try:
            raw = gzip.decompress(raw)
        except OSError as e:
            v.append(f"body is not gzip: {e}")
            return v, None
    elif encoding is not None:
        v.append(f"Content-Encoding {encoding!r} without compression configured")
    try:
        body = json.loads(raw)
    except ValueError as e:
        v.append(f"body is not JSON: {e}")
        return v, None
    if not isinstance(body, dict) or set(body) != {"requestId", "timestamp", "records"}:
        v.append(f"body members {sorted(body) if isinstance(body, dict) else type(body)}")
        return v, None
    if body["requestId"] != rid:
        v.append(f"body requestId {body['requestId']!r}, header {rid!r}")
    ts = body["timestamp"]
    if not isinstance(ts, int) or abs(ts - time.time() * 1000) > 3_600_000:
        v.append(f"timestamp {ts!r} is not the epoch milliseconds of now")
    for r in body["records"]:
        if not isinstance(r, dict) or set(r) != {"data"}:
            v.append(f"record {r!r}")
            continue
        try:
            base64.b64decode(r["data"], validate=True)
        except (binascii.Error, TypeError):
            v.append(f"record data {r['data']!r} is not base64")
    return v, body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        violations, body = check(self, raw)
        what = behaviour()
        rid = self.headers.get("X-Amz-Firehose-Request-Id")
        entry = {
            "request_id": rid,
            "answer": what,
            "violations": violations,
            "records": [r.get("data") for r in body["records"]] if body else [],
            "at": time.time(),
        }
        with lock:
            with open(args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        status, content_type = 200, "application/json"
        answer = {"requestId": rid, "timestamp": int(time.time() * 1000)}
        if what.startswith("sleep:"):
            time.sleep(float(what.split(":", 1)[1]))
        elif what == "500":
            status = 500
            answer["errorMessage"] = "the receiver is failing on purpose"
        elif what == "201":
            status = 201
        elif what == "wrong_id":
            answer["requestId"] = "00000000-0000-0000-0000-000000000000"
        elif what == "text_plain":
            content_type = "text/plain"
        out = b"{not json" if what == "bad_json" else json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("plan")
    p.add_argument("--path", default="/")
    p.add_argument("--access-key", default=None)
    p.add_argument("--attributes", default="")
    p.add_argument("--gzip", default="no")
    p.add_argument("--stream", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
