"""Raw-protocol child that answers correctly, then prints a stray line to stdout (as a handler
that print()s without a runner would): the next answer would be read out of step."""
import json
import sys
import time

for line in sys.stdin.buffer:
    event = json.loads(line)
    out = {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in event["records"]]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    time.sleep(0.05)
    sys.stdout.write("debug: batch done\n")
    sys.stdout.flush()
