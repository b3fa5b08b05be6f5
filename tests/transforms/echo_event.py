"""Handler (for the Python runner) that replaces each record's data with what the Lambda event
said about it: the event-level fields and the record's own fields, so a test can check the
request firehosed builds."""
import base64
import json


def handler(event, context):
    out = []
    for r in event["records"]:
        seen = {
            "invocationId": event["invocationId"],
            "deliveryStreamArn": event["deliveryStreamArn"],
            "region": event["region"],
            "sourceKinesisStreamArn": event.get("sourceKinesisStreamArn"),
            "approximateArrivalTimestamp": r["approximateArrivalTimestamp"],
            "kinesisRecordMetadata": r.get("kinesisRecordMetadata"),
            "data": base64.b64decode(r["data"]).decode("utf-8", "replace"),
            "functionName": context.function_name,
            "requestId": context.aws_request_id,
        }
        line = json.dumps(seen) + "\n"
        out.append({"recordId": r["recordId"], "result": "Ok",
                    "data": base64.b64encode(line.encode()).decode()})
    return {"records": out}
