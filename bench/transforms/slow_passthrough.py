"""Raw-protocol pass-through that takes argv[1] milliseconds per invocation, for
bench/transform_concurrency.sh. It stands for a remote Lambda: the time is waiting, not local
CPU, so the answer is cut from the request with a C-speed regex (each record's
approximateArrivalTimestamp becomes "result":"Ok"; firehosed ignores the other fields) instead
of parsing 1 MiB of JSON in Python, and the rest of the time is slept."""
import re
import sys
import time

delay = int(sys.argv[1]) / 1000
arrival = re.compile(rb'"approximateArrivalTimestamp":\d+')
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    started = time.monotonic()
    records = line[line.index(b'"records":['):].rstrip(b"\n")
    answer = b"{" + arrival.sub(b'"result":"Ok"', records) + b"\n"
    time.sleep(max(0.0, delay - (time.monotonic() - started)))
    out.write(answer)
    out.flush()
