"""Raw protocol child: answers Ok for every record but the first (Lambda.MissingRecordId)."""
import json
import sys

for line in sys.stdin.buffer:
    records = json.loads(line)["records"]
    answer = [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in records[1:]]
    sys.stdout.write(json.dumps({"records": answer}, separators=(",", ":")) + "\n")
    sys.stdout.flush()
