"""An example Firehose data-transformation handler, as you would deploy it to AWS Lambda:
adds a field to every JSON record and a newline after it, drops heartbeats, and fails what is
not JSON. config/transform-example.yaml runs it, unchanged, through the Python runner."""
import base64
import json


def lambda_handler(event, context):
    output = []
    for record in event["records"]:
        try:
            payload = json.loads(base64.b64decode(record["data"]))
        except ValueError:
            output.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
            continue
        if payload.get("type") == "heartbeat":
            output.append({"recordId": record["recordId"], "result": "Dropped", "data": record["data"]})
            continue
        payload["transformed_by"] = context.function_name
        data = base64.b64encode((json.dumps(payload) + "\n").encode()).decode()
        output.append({"recordId": record["recordId"], "result": "Ok", "data": data})
    return {"records": output}
