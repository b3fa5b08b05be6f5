"""The state of an Iceberg table on the embedded catalog as its delete files accumulate: data and
delete files (counts from the current snapshot's summary, sizes from the file:// warehouse's
files, whose names say their kind) and the time DuckDB (its iceberg extension, which applies
equality and position deletes) takes to read the whole table (SELECT count(*), sum(amount)),
best of three, each within TIMEOUT seconds. Prints one JSON line.

usage: iceberg_read.py CATALOG_URI TABLE [TIMEOUT=300]
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
import iceberg_tool  # noqa: E402

uri, name = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 300
t = iceberg_tool.catalog(uri).load_table(name)
summary = t.metadata.snapshots[-1].summary.additional_properties if t.metadata.snapshots else {}
data_dir = t.metadata.location.removeprefix("file://") + "/data"
sizes = {"data": 0, "delete": 0}
for f in os.listdir(data_dir):
    kind = "delete" if f.endswith("-deletes.parquet") else "data"
    sizes[kind] += os.path.getsize(os.path.join(data_dir, f))
con = iceberg_tool.duckdb_connection()
best, rows = None, None
for _ in range(3):
    timer = threading.Timer(timeout, con.interrupt)
    timer.start()
    started = time.perf_counter()
    try:
        rows, _ = con.execute("SELECT count(*), sum(amount) FROM iceberg_scan(?)", [t.metadata_location]).fetchone()
    except Exception:  # interrupted: slower than the timeout
        timer.cancel()
        best = None
        break
    timer.cancel()
    took = time.perf_counter() - started
    best = took if best is None else min(best, took)
print(json.dumps({"snapshots": len(t.metadata.snapshots), "rows": rows,
                  "data_files": int(summary.get("total-data-files", 0)),
                  "delete_files": int(summary.get("total-delete-files", 0)),
                  "equality_deletes": int(summary.get("total-equality-deletes", 0)),
                  "position_deletes": int(summary.get("total-position-deletes", 0)),
                  "data_mib": round(sizes["data"] / 2**20, 1),
                  "delete_mib": round(sizes["delete"] / 2**20, 2),
                  "duckdb_read_s": round(best, 3) if best is not None else f">{timeout:.0f}"}))
