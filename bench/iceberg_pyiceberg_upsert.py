"""pyiceberg applying the benchmark's change stream to an Iceberg table on its SQL catalog, as
a Python pipeline would without firehosed: per batch, JSON lines -> Arrow, the batch's deletes
with `table.delete(In(event_id, ...))`, its inserts and updates with `table.upsert(...,
join_cols=["event_id"])` (pyiceberg 0.12's upsert: copy-on-write, it reads the rows a batch
matches and rewrites them). The records are examples/loadgen.rs's `--updates 10 --deletes 2`
events (benches/common/records.rs's ~1 KiB events with an "op" first), made the same way here
(not timed). A batch keeps the last operation of each key, as upsert needs unique keys.
Prints rows/s from the first JSON parse to the last commit, and commit latency.

usage: iceberg_pyiceberg_upsert.py CATALOG_URI TABLE RECORDS BATCH_RECORDS
"""
import json
import os
import statistics
import sys
import time

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import In

sys.path.insert(0, os.path.dirname(__file__))
from iceberg_pyiceberg import records, to_table  # noqa: E402  (the same events, byte for byte)


def op_of(i, updates=10, deletes=2):
    """examples/loadgen.rs with_ops: per 100 records, evenly spread."""
    at = lambda k, j: k > 0 and (j * k // 100) != ((j + 1) * k // 100)  # noqa: E731
    j = i % 100
    if at(deletes, j):
        return "delete"
    if at(updates, (j + 50) % 100):
        return "update"
    return "insert"


uri, name, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
table = SqlCatalog("default", uri=uri).load_table(name)
schema = table.schema().as_arrow()
# loadgen repeats 16 sets of 500 records: event_id repeats every 8,000 records, as here.
base = records(8000)
lines = [base[i % 8000] for i in range(count)]
start = time.monotonic()
commits = []
for i in range(0, len(lines), batch):
    last = {}
    for n, line in enumerate(lines[i:i + batch]):
        row = json.loads(line)
        last[row["event_id"]] = (op_of((i + n) % 500), row)
    deletes = [k for k, (op, _) in last.items() if op == "delete"]
    rows = [r for op, r in last.values() if op != "delete"]
    t0 = time.monotonic()
    if deletes:
        table.delete(In("event_id", deletes))
    if rows:
        arrow = to_table(pa.Table.from_pylist(rows), schema)
        table.upsert(arrow, join_cols=["event_id"])
    commits.append(time.monotonic() - t0)
elapsed = time.monotonic() - start
p99 = statistics.quantiles(commits, n=100)[98] if len(commits) > 1 else commits[0]
print(f"pyiceberg upsert: rows={len(lines)} rows_per_s={len(lines) / elapsed:.0f} "
      f"batches={len(commits)} commit_p50_ms={1000 * statistics.median(commits):.0f} "
      f"commit_p99_ms={1000 * p99:.0f}")
