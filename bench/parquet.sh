#!/usr/bin/env bash
# JSON -> Parquet speed: firehosed's conversion (examples/json2parquet.rs, the code staging
# runs for a destination's main object: parsing on one thread, row groups encoded beside it)
# next to pyarrow (pyarrow.json.read_json + pyarrow.parquet.write_table, the pinned version of
# tests/requirements.txt) on the same file of realistic ~1 KiB events, in the same run, SNAPPY
# both. Best of 3 interleaved rounds; each on one core (taskset) and on all cores.
# FORMAT=orc: JSON -> ORC instead (firehosed's ORC writer next to pyarrow.orc.write_table).
# JSON2PARQUET_BIN: another build's json2parquet (before/after comparisons).
# usage: [FORMAT=orc] [JSON2PARQUET_BIN=path] bench/parquet.sh [records=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
fmt=${FORMAT:-parquet}
tools=$(scripts/test-tools.sh)
py="$tools/venv/bin/python"
cargo build --release --quiet --example json2parquet
work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-parquet.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" bench/parquet/make_events.py "$work/events.ndjson" "$work/schema.json" "$n"
echo "$fmt; input: $n records, $(du -m "$work/events.ndjson" | cut -f1) MiB; firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores"
# Three rounds, each running all three converters in turn (so a slower moment of this shared
# machine hits them alike); the best MB/s of each.
mbs() { "$@" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["mb_per_s"])'; }
fh=0; fh1=0; pa1=0; pan=0
bin=${JSON2PARQUET_BIN:-target/release/examples/json2parquet}
for _ in 1 2 3; do
  fh=$("$py" -c "print(max($fh, $(mbs "$bin" "$work/schema.json" "$work/events.ndjson" "$work/fh.$fmt" $([ "$fmt" = orc ] && echo orc))))")
  fh1=$("$py" -c "print(max($fh1, $(mbs taskset -c 0 "$bin" "$work/schema.json" "$work/events.ndjson" "$work/fh.$fmt" $([ "$fmt" = orc ] && echo orc))))")
  pa1=$("$py" -c "print(max($pa1, $(mbs "$py" bench/parquet/pyarrow_convert.py "$work/events.ndjson" "$work/pa.$fmt" 1 "$fmt")))")
  pan=$("$py" -c "print(max($pan, $(mbs "$py" bench/parquet/pyarrow_convert.py "$work/events.ndjson" "$work/pa.$fmt" all "$fmt")))")
done
printf "%-34s %8s\n" converter MB/s
printf "%-34s %8s\n" "firehosed (1 core)" "$fh1"
printf "%-34s %8s\n" "firehosed (all $(nproc) cores)" "$fh"
printf "%-34s %8s\n" "pyarrow $("$py" -c 'import pyarrow; print(pyarrow.__version__)') (1 core)" "$pa1"
printf "%-34s %8s\n" "pyarrow (all $(nproc) cores)" "$pan"
"$py" -c "print(f'firehosed on all cores / pyarrow on all cores: {$fh / $pan:.2f}x; firehosed all / one core: {$fh / $fh1:.2f}x')"
echo "output: firehosed $(du -k "$work/fh.$fmt" | cut -f1) KiB, pyarrow $(du -k "$work/pa.$fmt" | cut -f1) KiB"
# Both files hold the same rows (read back by pyarrow).
"$py" - "$work/fh.$fmt" "$work/pa.$fmt" <<'PY'
import sys, pyarrow.orc as orc, pyarrow.parquet as pq
read = lambda f: orc.read_table(f) if f.endswith(".orc") else pq.read_table(f)
a, b = (read(f) for f in sys.argv[1:])
assert a.num_rows == b.num_rows, (a.num_rows, b.num_rows)
assert a.column("user_id").equals(b.column("user_id")) and a.column("ts").equals(b.column("ts"))
print("same rows: yes")
PY
