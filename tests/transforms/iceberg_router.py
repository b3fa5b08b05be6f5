"""A Lambda transform that routes each record to an Iceberg table, as AWS's documentation shows:
the record goes on unchanged, with metadata.otfMetadata naming its database and table (from
the record's "kind"); records of kind "audit" get no table of their own (the routing query
decides them)."""
import base64
import json


def handler(event, context):
    out = []
    for r in event["records"]:
        record = json.loads(base64.b64decode(r["data"]))
        item = {"recordId": r["recordId"], "result": "Ok", "data": r["data"]}
        if record.get("kind") != "audit":
            item["metadata"] = {"otfMetadata": {
                "destinationDatabaseName": "db",
                "destinationTableName": record["kind"],
                "operation": "insert",
            }}
        out.append(item)
    return {"records": out}
