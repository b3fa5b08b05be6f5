"""Counts the records in the GZIP objects under DIR (an s3s-fs bucket folder): one record per
line. With --missing ACKED, also how many acknowledged numbers ("n" of crash_load.py) are in
no object, and how many records were delivered more than once.
usage: count_objects.py DIR [--missing ACKED]"""
import gzip
import json
import os
import sys

root = sys.argv[1]
ns, records, objects = {}, 0, 0
for dirpath, _, files in os.walk(root):
    for name in files:
        path = os.path.join(dirpath, name)
        with open(path, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                continue  # s3s-fs keeps metadata beside the objects
        objects += 1
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                records += 1
                if len(sys.argv) > 3:
                    n = json.loads(line).get("n")
                    ns[n] = ns.get(n, 0) + 1
out = f"objects={objects} records={records}"
if len(sys.argv) > 3:
    acked = [int(l) for l in open(sys.argv[3]) if l.strip()]
    missing = sum(1 for n in acked if n not in ns)
    twice = sum(c - 1 for c in ns.values() if c > 1)
    out += f" acknowledged={len(acked)} missing={missing} duplicates={twice}"
print(out)
