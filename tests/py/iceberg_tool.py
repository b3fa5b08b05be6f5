"""Iceberg tables for tests/e2e/iceberg.rs, through independent readers and writers.

  (every command: --uri SQLITE_URI for the embedded catalog, or --glue ENDPOINT for a moto
  server's Glue Data Catalog with its S3)
  create  --uri SQLITE_URI --warehouse URL --table DB.T --schema JSON [--partition JSON]
          creates the namespace (if missing) and the table with pyiceberg's SqlCatalog; the
          schema is Iceberg's own JSON (Appendix C), the partition spec a list of
          {"source": name, "transform": "identity" | "day" | "bucket[4]" ..., "name": ...}
  s3tables-create --glue ENDPOINT --bucket NAME --table NS.T --schema JSON
          a table bucket, namespace and table in moto's S3 Tables with its first metadata
          (pyiceberg's new_table_metadata) registered; prints {"arn", "warehouse"}; then
          rows/duckdb/info take --glue ENDPOINT --s3tables ARN
  drop    --uri SQLITE_URI --table DB.T      drops the table from the catalog
  rows    --uri SQLITE_URI --table DB.T
          the table's rows as pyiceberg reads them: one JSON object per line, sorted
  duckdb  --uri SQLITE_URI --table DB.T
          the same rows as DuckDB's iceberg extension reads the current metadata file (loaded
          from the PyPI wheels, offline)
  ids     --uri SQLITE_URI --table DB.T
          column `i` as pyiceberg and as DuckDB read it: {"pyiceberg": [...], "duckdb": [...]}
  schema  --uri URI --table DB.T: columns, partition spec, schema count (JSON)
  info    --uri SQLITE_URI --table DB.T
          snapshots (id, parent, summary) and the current metadata location, as JSON
"""

import argparse
import base64
import datetime
import decimal
import json
import os
import sys
import uuid


GLUE = None  # --glue ENDPOINT: the Glue Data Catalog (and S3) of a moto server
S3TABLES = None  # --s3tables ARN (with --glue ENDPOINT): a table bucket of that moto server


def moto_client(service):
    import boto3

    return boto3.client(service, endpoint_url=GLUE, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def s3_props():
    return {"s3.endpoint": GLUE, "s3.region": "us-east-1", "s3.access-key-id": "testing",
            "s3.secret-access-key": "testing", "s3.force-virtual-addressing": "false"}


def load(uri, name):
    """The table: through its catalog, or (S3 Tables) from the metadata file S3 Tables names."""
    if S3TABLES:
        from pyiceberg.table import StaticTable

        ns, table = name.split(".", 1)
        loc = moto_client("s3tables").get_table_metadata_location(
            tableBucketARN=S3TABLES, namespace=ns, name=table)["metadataLocation"]
        return StaticTable.from_metadata(loc, properties=s3_props())
    return catalog(uri).load_table(name)


def s3tables_create(args):
    """A table bucket, namespace and table in moto's S3 Tables, and the table's first metadata
    (made by pyiceberg) written to its warehouse and registered: prints the bucket's ARN."""
    import uuid as _uuid
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import new_table_metadata
    from pyiceberg.table.sorting import SortOrder

    st = moto_client("s3tables")
    ns, name = args.table.split(".", 1)
    arn = st.create_table_bucket(name=args.bucket)["arn"]
    st.create_namespace(tableBucketARN=arn, namespace=[ns])
    token = st.create_table(tableBucketARN=arn, namespace=ns, name=name, format="ICEBERG")["versionToken"]
    where = st.get_table_metadata_location(tableBucketARN=arn, namespace=ns, name=name)
    warehouse = where["warehouseLocation"].rstrip("/")
    schema = Schema.model_validate_json(args.schema)
    metadata = new_table_metadata(schema, PartitionSpec(), SortOrder(), warehouse, properties={})
    key = f"metadata/00000-{_uuid.uuid4()}.metadata.json"
    bucket = warehouse.split("://", 1)[1].split("/", 1)[0]
    prefix = warehouse.split("://", 1)[1][len(bucket):].strip("/")
    full_key = f"{prefix}/{key}" if prefix else key
    moto_client("s3").put_object(Bucket=bucket, Key=full_key, Body=metadata.model_dump_json().encode())
    st.update_table_metadata_location(tableBucketARN=arn, namespace=ns, name=name,
                                      versionToken=token, metadataLocation=f"{warehouse}/{key}")
    print(json.dumps({"arn": arn, "warehouse": warehouse}))


def catalog(uri, warehouse=None):
    if GLUE:
        from pyiceberg.catalog.glue import GlueCatalog

        props = {"glue.endpoint": GLUE, "glue.region": "us-east-1",
                 "glue.access-key-id": "testing", "glue.secret-access-key": "testing",
                 "s3.endpoint": GLUE, "s3.region": "us-east-1",
                 "s3.access-key-id": "testing", "s3.secret-access-key": "testing"}
        if warehouse:
            props["warehouse"] = warehouse
        return GlueCatalog("glue", **props)
    from pyiceberg.catalog.sql import SqlCatalog

    props = {"uri": uri}
    if warehouse:
        props["warehouse"] = warehouse
    return SqlCatalog("default", **props)


def duckdb_connection():
    """DuckDB with its iceberg extension (and httpfs for S3) loaded from the PyPI wheels."""
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_httpfs
    import duckdb_extension_iceberg

    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    con.execute("SET TimeZone='UTC'")
    ver = con.execute("PRAGMA version").fetchone()[0]
    # avro before iceberg: iceberg's start-up would otherwise try to install it.
    for mod, ext in [(duckdb_extension_httpfs, "httpfs"), (duckdb_extension_avro, "avro"),
                     (duckdb_extension_iceberg, "iceberg")]:
        path = os.path.join(os.path.dirname(mod.__file__), "extensions", ver, ext + ".duckdb_extension")
        con.execute(f"LOAD '{path}'")
    if GLUE:
        host = GLUE.split("://", 1)[1]
        con.execute(f"""CREATE SECRET moto (TYPE s3, KEY_ID 'testing', SECRET 'testing',
                        REGION 'us-east-1', ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)""")
    return con


def plain(v):
    """A value as JSON text the test compares: the same for pyiceberg and DuckDB."""
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return v.isoformat() + "Z"
        return v.isoformat()
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, uuid.UUID):
        # pyarrow reads a uuid as its 16 bytes: both readers show them the same way
        return base64.b64encode(v.bytes).decode()
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        # pyarrow gives maps as lists of (key, value) pairs
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
            return {str(k): plain(x) for k, x in v}
        return [plain(x) for x in v]
    return v


def print_rows(rows):
    lines = sorted(json.dumps(plain(r), sort_keys=True) for r in rows)
    for line in lines:
        print(line)


def create(args):
    from pyiceberg.schema import Schema
    from pyiceberg.partitioning import PartitionSpec, PartitionField
    from pyiceberg.transforms import parse_transform

    cat = catalog(args.uri, args.warehouse)
    ns, name = args.table.split(".", 1)
    if (ns,) not in [tuple(n) for n in cat.list_namespaces()]:
        cat.create_namespace(ns)
    schema = Schema.model_validate_json(args.schema)
    spec = PartitionSpec()
    if args.partition:
        fields = []
        for i, p in enumerate(json.loads(args.partition)):
            source = schema.find_field(p["source"])
            fields.append(
                PartitionField(
                    source_id=source.field_id,
                    field_id=1000 + i,
                    transform=parse_transform(p["transform"]),
                    name=p.get("name", p["source"]),
                )
            )
        spec = PartitionSpec(*fields)
    t = cat.create_table(f"{ns}.{name}", schema=schema, partition_spec=spec)
    print(t.metadata_location)


def rows(args):
    t = load(args.uri, args.table)
    print_rows(t.scan().to_arrow().to_pylist())


def duckdb_rows(args):
    t = load(args.uri, args.table)
    con = duckdb_connection()
    cur = con.execute("SELECT * FROM iceberg_scan(?)", [t.metadata_location])
    names = [d[0] for d in cur.description]
    print_rows([dict(zip(names, r)) for r in cur.fetchall()])


def drop(args):
    catalog(args.uri).drop_table(args.table)


def ids(args):
    """The values of column `i`, as pyiceberg and DuckDB read them (both, as two lists)."""
    t = catalog(args.uri).load_table(args.table)
    py = t.scan(selected_fields=("i",)).to_arrow().column("i").to_pylist()
    con = duckdb_connection()
    duck = [r[0] for r in con.execute("SELECT i FROM iceberg_scan(?)", [t.metadata_location]).fetchall()]
    print(json.dumps({"pyiceberg": sorted(py), "duckdb": sorted(duck)}))


def info(args):
    t = load(args.uri, args.table)
    snaps = [
        {"id": s.snapshot_id, "parent": s.parent_snapshot_id,
         "summary": {k: v for k, v in s.summary.additional_properties.items()}
         | {"operation": s.summary.operation.value}}
        for s in t.metadata.snapshots
    ]
    print(json.dumps({"metadata": t.metadata_location, "snapshots": snaps,
                      "format_version": t.metadata.format_version}))


def schema(args):
    """The table's current columns, partition spec and how many schemas it has had."""
    t = load(args.uri, args.table)
    s = t.schema()
    spec = [{"name": f.name, "transform": str(f.transform), "source": s.find_field(f.source_id).name}
            for f in t.spec().fields]
    print(json.dumps({"columns": [f.name for f in s.fields], "spec": spec,
                      "schemas": len(t.metadata.schemas),
                      "format_version": t.metadata.format_version}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["create", "s3tables-create", "drop", "rows", "duckdb", "ids", "info", "schema"])
    p.add_argument("--uri", default="")
    p.add_argument("--glue", help="a moto server's endpoint: its Glue Data Catalog and S3")
    p.add_argument("--s3tables", help="a table bucket's ARN in that moto server's S3 Tables")
    p.add_argument("--bucket", help="s3tables-create: the table bucket's name")
    p.add_argument("--warehouse")
    p.add_argument("--table", required=True)
    p.add_argument("--schema")
    p.add_argument("--partition")
    args = p.parse_args()
    global GLUE, S3TABLES
    GLUE, S3TABLES = args.glue, args.s3tables
    if args.command == "create":
        create(args)
    elif args.command == "s3tables-create":
        s3tables_create(args)
    elif args.command == "drop":
        drop(args)
    elif args.command == "rows":
        rows(args)
    elif args.command == "duckdb":
        duckdb_rows(args)
    elif args.command == "ids":
        ids(args)
    elif args.command == "schema":
        schema(args)
    else:
        info(args)


if __name__ == "__main__":
    sys.exit(main())
