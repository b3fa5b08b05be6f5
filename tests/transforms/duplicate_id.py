"""Raw protocol child: answers the first record twice, then the rest (Lambda.DuplicatedRecordId)."""
import json
import sys

for line in sys.stdin.buffer:
    records = json.loads(line)["records"]
    answer = [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in records[:1] + records]
    sys.stdout.write(json.dumps({"records": answer}, separators=(",", ":")) + "\n")
    sys.stdout.flush()
