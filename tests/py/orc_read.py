"""Reads ORC files with two readers, pyarrow's (Arrow's ORC adapter) and pyorc (Apache ORC's
C++ library through its own bindings), and prints what each sees as JSON, values in one
canonical form so the test can compare them exactly:

    {"files": N, "pyarrow": {"types": {col: type}, "rows": [...]},
     "pyorc": {"schema": "struct<...>", "rows": [...]},
     "stripes": [n per file], "compression": [kind per file], "format": [version per file]}

Canonical values as tests/py/parquet_read.py's: timestamps as ISO text without a zone (to the
nanosecond from pyarrow; to the microsecond from pyorc, which gives datetimes), dates as ISO,
decimals as text, binary as base64, maps as {key: value} objects, structs as objects.

With `--ipc IPC_FILE...` after the ORC files, also the rows of Arrow IPC files another reader
(orc-rust, in the Rust test) made of them, as "orc_rust".

usage: orc_read.py FILE... [--ipc IPC_FILE...]   (rows of all files, in the order given)
"""
import datetime
import json
import sys

import pyarrow as pa
import pyarrow.orc as orc
import pyorc

from parquet_read import canon


def ts_text(scalar):
    """A pyarrow timestamp[ns] scalar as ISO text to the nanosecond (trailing zeros cut to
    the microsecond, as Python prints)."""
    ns = scalar.value
    secs, nanos = divmod(ns, 1_000_000_000)
    base = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=secs)
    text = base.isoformat()
    if nanos:
        frac = f"{nanos:09d}"
        frac = frac if frac[6:] != "000" else frac[:6]
        text += "." + frac
    return text


def arrow_value(column, i):
    s = column[i]
    if not s.is_valid:
        return None
    if pa.types.is_timestamp(column.type):
        return ts_text(s)
    if pa.types.is_map(column.type):
        return {str(canon(k)): canon(x) for k, x in s.as_py()}
    return canon(s.as_py())


def with_pyarrow(files):
    rows, types, stripes, compression, versions = [], {}, [], [], []
    for f in files:
        of = orc.ORCFile(f)
        stripes.append(of.nstripes)
        compression.append(of.compression)
        versions.append(str(of.file_version))
        table = of.read().combine_chunks()
        types = {field.name: str(field.type) for field in table.schema}
        for i in range(table.num_rows):
            rows.append({name: arrow_value(table.column(name).chunk(0), i) for name in table.column_names})
    return {"types": types, "rows": rows}, stripes, compression, versions


def naive(v):
    """pyorc's timestamps are UTC datetimes: as the wall time they stand for, like pyarrow's."""
    if isinstance(v, datetime.datetime):
        return v.replace(tzinfo=None)
    if isinstance(v, dict):
        return {k: naive(x) for k, x in v.items()}
    if isinstance(v, list):
        return [naive(x) for x in v]
    return v


def with_pyorc(files):
    rows, schema = [], ""
    for f in files:
        with open(f, "rb") as fh:
            r = pyorc.Reader(fh, struct_repr=pyorc.StructRepr.DICT)
            schema = str(r.schema)
            for row in r:
                rows.append({k: canon(naive(v)) for k, v in row.items()})
    return {"schema": schema, "rows": rows}


def with_ipc(files):
    rows, types = [], {}
    for f in files:
        table = pa.ipc.open_file(f).read_all().combine_chunks()
        types = {field.name: str(field.type) for field in table.schema}
        for i in range(table.num_rows):
            rows.append({name: arrow_value(table.column(name).chunk(0), i) for name in table.column_names})
    return {"types": types, "rows": rows}


def main():
    args = sys.argv[1:]
    ipc = args[args.index("--ipc") + 1:] if "--ipc" in args else []
    files = args[:args.index("--ipc")] if "--ipc" in args else args
    arrow, stripes, compression, versions = with_pyarrow(files)
    out = {"files": len(files), "pyarrow": arrow, "pyorc": with_pyorc(files),
           "stripes": stripes, "compression": compression, "format": versions}
    if ipc:
        out["orc_rust"] = with_ipc(ipc)
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
