"""A pass-through Firehose Lambda handler in the usual blueprint style (decode, re-encode), for
bench/transform.sh through the Python runner."""


def lambda_handler(event, context):
    return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]}
                        for r in event["records"]]}
