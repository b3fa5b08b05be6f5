"""A Firehose data-transformation Lambda handler, as deployed to AWS Lambda: upper-cases each
record's "name" and drops records marked "skip" (result Dropped)."""
import base64
import json


def lambda_handler(event, context):
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        if doc.get("skip"):
            out.append({"recordId": r["recordId"], "result": "Dropped", "data": r["data"]})
            continue
        doc["name"] = doc["name"].upper()
        data = base64.b64encode((json.dumps(doc) + "\n").encode()).decode()
        out.append({"recordId": r["recordId"], "result": "Ok", "data": data})
    return {"records": out}
