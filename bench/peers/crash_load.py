"""The kill -9 row of bench/peers/fluent-bit.sh: 4 connections POST NDJSON bodies of 100
records, each record a line of $BODIES with a unique "n" in front, and remember which records
were acknowledged (a 2xx answer). After SECONDS the target PID gets SIGKILL while requests are
in flight. Writes the acknowledged numbers to ACKED, one per line.
usage: crash_load.py URL PID SECONDS ACKED"""
import http.client
import os
import signal
import sys
import threading
import time
import urllib.parse

url, pid, seconds, acked_path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
lines = [l for l in open(os.environ["BODIES"], encoding="utf-8").read().split("\n") if l]
target = urllib.parse.urlsplit(url)
acked, lock, stop = [], threading.Lock(), threading.Event()
counter = iter(range(0, 1 << 62, 100))


def worker():
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    while not stop.is_set():
        with lock:
            first = next(counter)
        ns = range(first, first + 100)
        body = "".join('{"n":%d,%s\n' % (n, lines[n % len(lines)][1:]) for n in ns).encode()
        try:
            conn.request("POST", target.path or "/", body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            continue
        if 200 <= status < 300:
            with lock:
                acked.extend(ns)


threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
for t in threads:
    t.start()
time.sleep(seconds)
os.kill(pid, signal.SIGKILL)
stop.set()
for t in threads:
    t.join(timeout=15)
with lock:
    with open(acked_path, "w") as f:
        f.write("".join(f"{n}\n" for n in acked))
print(f"acknowledged={len(acked)}")
