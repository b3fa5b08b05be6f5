#!/usr/bin/env bash
# Backlog drain of one converting destination (JSON -> Parquet or ORC, SNAPPY, 128 MiB / 900 s
# buffers, into a directory): the release firehosed (fsync spool) acknowledges SECONDS of wrk
# load (NDJSON bodies of 100 realistic ~1 KiB events, bench/parquet/make_events.py) and is
# killed with SIGKILL; what it had not written is replayed from the spool when it starts again
# on the same state (nothing is delivered during the load: see below), and a flush returns
# once all is written. The drain rate is the replayed
# bytes over the time from the restart to the flush's answer. PIN=0 runs the restarted daemon
# on one core (taskset), PIN=0,1 on two: the ratio is what conversion on every core gains.
# The rows written are read back with pyarrow and counted against the records replayed.
# FIREHOSED_BIN: another build (before/after comparisons).
# Needs wrk.
# usage: [FORMAT=parquet|orc] [PIN=cpus] [FIREHOSED_BIN=path] [PERF=file] bench/conversion_backlog.sh [seconds=6]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-6}
fmt=${FORMAT:-parquet}
case $fmt in parquet) output= ;; orc) output="output: {orc: {}}" ;; *) echo "FORMAT is parquet or orc"; exit 1 ;; esac
command -v wrk > /dev/null || { echo "wrk is missing (apt-get install wrk)"; exit 1; }
tools=$(scripts/test-tools.sh)
py="$tools/venv/bin/python"
[ -n "${FIREHOSED_BIN:-}" ] || cargo build --release --quiet --bin firehosed
bench_work convbacklog

"$py" bench/parquet/make_events.py "$work/events.ndjson" "$work/schema.json" 51200 > /dev/null
awk '{print} NR % 100 == 0 {print ""}' "$work/events.ndjson" > "$work/bodies"
export BODIES=$work/bodies
avg=$("$py" -c "import sys; n=sum(1 for _ in open(sys.argv[1],'rb')); print(__import__('os').path.getsize(sys.argv[1]) / n)" "$work/events.ndjson")
columns=$("$py" -c "import json,sys; print(', '.join('{name: %s, type: \"%s\"}' % (c['Name'], c['Type']) for c in json.load(open(sys.argv[1]))['Columns']))" "$work/schema.json")
{
  load_config_head
  cat <<YAML
    destinations:
      - directory: $work/out
        buffering: {size_mib: 128, interval_seconds: 900}
        data_format_conversion:
          schema: {columns: [$columns]}
          $output
YAML
} > "$work/c.yaml"

echo "firehosed ${FIREHOSED_BIN:-$(git rev-parse --short HEAD 2>/dev/null)} on ${PIN:-all $(nproc)} cores; JSON -> $fmt; $seconds s of wrk load, then kill -9 and a restart; load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_firehosed "$work/c.yaml" "$work"
# The destination folder becomes a file: nothing can be delivered during the load, so every
# acknowledged record is left for the drain (a converter that keeps up would otherwise leave
# only the last objects, and a faster build a smaller backlog).
rm -rf "$work/out"; touch "$work/out"
wrk -t2 -c16 -d"${seconds}s" -s bench/peers/post.lua "$url/v1/streams/load/records" > "$work/wrk.out"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
rm -f "$work/out"; mkdir -p "$work/out"
t0=$(date +%s.%N)
if [ -n "${PIN:-}" ]; then
  taskset -c "$PIN" "${FIREHOSED_BIN:-target/release/firehosed}" run --config "$work/c.yaml" > "$work/stdout" 2> "$work/log" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/.*listening on //p' "$work/stdout")
else
  start_firehosed "$work/c.yaml" "$work"
fi
# PERF=FILE records the drain's profile there (perf report -i FILE --sort comm,sym).
[ -z "${PERF:-}" ] || { perf record -e cpu-clock -F 999 -g -p "$pid" -o "$PERF" > /dev/null 2>&1 & perfpid=$!; }
curl -sf -X POST "$url/v1/streams/load/flush" > /dev/null
t1=$(date +%s.%N)
[ -z "${PERF:-}" ] || { kill -INT $perfpid; wait $perfpid 2>/dev/null || true; }
peak=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
# The daemon's CPU time from its start (utime + stime, in clock ticks): how busy the cores were.
ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
replayed=$(sed -n 's/.*records=\([0-9]*\).*replaying.*/\1/p; s/.*replaying.*records=\([0-9]*\).*/\1/p' "$work/log" | head -1)
"$py" - "$work/out" "$t0" "$t1" "${replayed:-0}" "$avg" "$fmt" "$peak" "$ticks" "$(getconf CLK_TCK)" <<'PY'
import os, sys
import pyarrow.orc as orc, pyarrow.parquet as pq
root, t0, t1, replayed, avg, fmt, peak = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], int(sys.argv[7])
cpu = int(sys.argv[8]) / int(sys.argv[9])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith("." + fmt))
rows = 0
groups = 0
for f in files:
    if fmt == "orc":
        r = orc.ORCFile(f)
        rows += r.nrows
        groups += r.nstripes
    else:
        m = pq.ParquetFile(f).metadata
        rows += m.num_rows
        groups += m.num_row_groups
secs = t1 - t0
mb = replayed * avg / 1e6
print(f"replayed {replayed:,} records (~{mb:,.0f} MB of JSON); written {rows:,} rows in {len(files)} objects, {groups} row groups/stripes, {sum(os.path.getsize(f) for f in files) / 1e6:,.1f} MB")
assert rows == replayed, f"{rows} rows read back, {replayed} replayed"
print(f"drain, restart to flush answered: {secs:.2f} s = {mb / secs:,.1f} MB/s ({replayed / secs:,.0f} records/s); peak RSS {peak / 1024:.0f} MiB; CPU {cpu:.2f} s ({cpu / secs:.2f} cores busy)")
PY
