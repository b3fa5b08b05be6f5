"""Reads Parquet files with two independent readers, pyarrow and DuckDB, and prints what each
sees as JSON, values in one canonical form so the test can compare them exactly:

    {"files": N, "pyarrow": {"types": {col: type}, "rows": [...]},
     "duckdb": {"types": {col: type}, "rows": [...]}, "row_groups": [n per file],
     "codecs": [the column chunks' compression codecs]}

Canonical values: timestamps as ISO text (microseconds or nanoseconds as stored), dates as ISO,
decimals as text, binary as base64, maps as {key: value} objects (keys as text), structs as
objects, lists as lists, floats as JSON numbers.

usage: parquet_read.py FILE...   (rows of all files, in the order given)
"""
import base64
import datetime
import decimal
import json
import sys

import duckdb
import pyarrow.parquet as pq


def canon(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, datetime.datetime):
        return v.isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, dict):
        # DuckDB gives a MAP as {"key": [...], "value": [...]} in old versions, as a dict now.
        if set(v) == {"key", "value"} and isinstance(v["key"], list):
            return {str(canon(k)): canon(x) for k, x in zip(v["key"], v["value"])}
        return {str(k): canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [canon(e) for e in v]
    return str(v)


def with_pyarrow(files):
    rows, types, groups, codecs = [], {}, [], set()
    for f in files:
        pf = pq.ParquetFile(f)
        meta = pf.metadata
        groups.append(meta.num_row_groups)
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                codecs.add(meta.row_group(g).column(c).compression)
        table = pf.read()
        types = {field.name: str(field.type) for field in table.schema}
        for r in table.to_pylist(maps_as_pydicts="strict"):
            rows.append({k: canon(v) for k, v in r.items()})
    return {"types": types, "rows": rows}, groups, sorted(codecs)


def with_duckdb(files):
    con = duckdb.connect()
    rows, types = [], {}
    for f in files:
        cur = con.execute("SELECT * FROM read_parquet(?)", [f])
        names = [d[0] for d in cur.description]
        for r in cur.fetchall():
            rows.append({n: canon(v) for n, v in zip(names, r)})
        types = {
            r[0]: r[1]
            for r in con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", [f]).fetchall()
        }
    return {"types": types, "rows": rows}


def main():
    files = sys.argv[1:]
    pa, groups, codecs = with_pyarrow(files)
    out = {"files": len(files), "pyarrow": pa, "duckdb": with_duckdb(files),
           "row_groups": groups, "codecs": codecs}
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
