"""The same conversion with pyarrow: pyarrow.json.read_json (with the explicit schema) +
pyarrow.parquet.write_table (or, with FORMAT orc, pyarrow.orc.write_table), SNAPPY as
firehosed's default. Prints the speed as JSON.
usage: pyarrow_convert.py INPUT.ndjson OUTPUT THREADS(1|all) [parquet|orc]"""
import json
import os
import sys
import time

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.orc as orc
import pyarrow.parquet as pq

inp, out, threads = sys.argv[1], sys.argv[2], sys.argv[3]
fmt = sys.argv[4] if len(sys.argv) > 4 else "parquet"
use_threads = threads != "1"
pa.set_cpu_count(os.cpu_count() if use_threads else 1)
pa.set_io_thread_count(os.cpu_count() if use_threads else 1)
schema = pa.schema([
    ("event_id", pa.string()), ("ts", pa.timestamp("ns" if fmt == "orc" else "us")), ("user_id", pa.int64()),
    ("session", pa.string()), ("action", pa.string()), ("page", pa.string()),
    ("referrer", pa.string()), ("user_agent", pa.string()), ("country", pa.string()),
    ("device", pa.struct([("os", pa.string()), ("version", pa.string()), ("mobile", pa.bool_())])),
    ("duration_ms", pa.int32()), ("amount", pa.float64()), ("tags", pa.list_(pa.string())),
    ("message", pa.string()),
])
start = time.perf_counter()
table = pj.read_json(
    inp,
    read_options=pj.ReadOptions(use_threads=use_threads, block_size=4 << 20),
    parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
)
if fmt == "orc":
    orc.write_table(table, out, compression="snappy")
else:
    pq.write_table(table, out, compression="snappy")
secs = time.perf_counter() - start
size = os.path.getsize(inp)
print(json.dumps({"rows": table.num_rows, "input_bytes": size, "output_bytes": os.path.getsize(out),
                  "seconds": round(secs, 3), "mb_per_s": round(size / 1e6 / secs, 1)}))
