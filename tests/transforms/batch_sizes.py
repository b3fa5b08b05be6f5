"""Raw-protocol pass-through that reports each request's size and record count on stderr,
so a test can check how firehosed batches records for the transform."""
import json
import sys

for line in sys.stdin.buffer:
    event = json.loads(line)
    records = event["records"]
    print(f"request_bytes={len(line) - 1} records={len(records)}", file=sys.stderr, flush=True)
    out = {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in records]}
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    sys.stdout.flush()
