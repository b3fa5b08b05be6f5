"""pyiceberg appending the benchmark's records to an Iceberg table on its SQL catalog, as a
Python pipeline would: JSON lines -> Arrow -> table.append, one append per batch (one snapshot
each, as firehosed commits one per buffer). The records are benches/common/records.rs's ~1 KiB
events, made the same way here (not timed). Prints rows/s from the first JSON parse to the last
append, and the append (commit) latency.

usage: iceberg_pyiceberg.py CATALOG_URI TABLE RECORDS BATCH_RECORDS
"""
import json
import statistics
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog


def records(count, size=1024):
    """benches/common/records.rs json_records(count, size, 0), byte for byte."""
    out = []
    chars = b"abcdefghijklmnopqrstuvwxyz0123456789"
    for n in range(count):
        r = ('{"event_id":%d,"user":"user-%d","action":"%s","ts":"2026-11-22T10:%02d:%02dZ","amount":%d.%02d,"pad":"'
             % (n, n % 9973, ["view", "click", "purchase", "scroll"][n % 4], (n // 60) % 60, n % 60,
                n % 1000, n % 100)).encode()
        r = bytearray(r)
        x = n | 1
        mask = (1 << 64) - 1
        while len(r) + 3 < size:
            x ^= (x << 13) & mask
            x ^= x >> 7
            x ^= (x << 17) & mask
            r.append(chars[x % 36])
        r += b'"}\n'
        out.append(bytes(r[:size]))
    return out


def to_table(arrow, schema):
    """The events as the table's Arrow schema: `ts` parsed, columns in order and types."""
    ts = pc.assume_timezone(pc.strptime(arrow["ts"], format="%Y-%m-%dT%H:%M:%SZ", unit="us"), "UTC")
    arrow = arrow.set_column(arrow.schema.get_field_index("ts"), "ts", ts)
    return arrow.select([f.name for f in schema]).cast(schema)


if __name__ == "__main__":
    uri, name, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    table = SqlCatalog("default", uri=uri).load_table(name)
    schema = table.schema().as_arrow()
    lines = records(count)
    start = time.monotonic()
    commits = []
    for i in range(0, len(lines), batch):
        rows = [json.loads(line) for line in lines[i:i + batch]]
        arrow = pa.Table.from_pylist(rows)
        arrow = to_table(arrow, schema)
        t0 = time.monotonic()
        table.append(arrow)
        commits.append(time.monotonic() - t0)
    elapsed = time.monotonic() - start
    p99 = statistics.quantiles(commits, n=100)[98] if len(commits) > 1 else commits[0]
    print(f"pyiceberg: rows={len(lines)} rows_per_s={len(lines) / elapsed:.0f} "
          f"MB_per_s={len(lines) * 1024 / elapsed / 1e6:.1f} appends={len(commits)} "
          f"append_p50_ms={1000 * statistics.median(commits):.0f} append_p99_ms={1000 * p99:.0f}")
