"""Raw-protocol child that crashes on its first request ever (a marker file remembers it), then
answers every record Ok: proves that a failed invocation is retried on a restarted child."""
import json
import os
import sys

marker = sys.argv[1]
for line in sys.stdin.buffer:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(7)
    event = json.loads(line)
    out = {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in event["records"]]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
