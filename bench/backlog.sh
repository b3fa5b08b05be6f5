#!/usr/bin/env bash
# Backlog drain of one GZIP destination: records already acknowledged in the spool, then
# delivery started. The release firehosed (fsync spool, one GZIP directory destination, 128
# MiB / 900 s buffers: the drain is firehosed's work alone, no S3 server sharing the cores)
# acknowledges SECONDS of wrk load (NDJSON bodies of 100 realistic ~1 KiB events,
# bench/peers/post.lua) and is killed with SIGKILL; what it had not yet written (all of it
# unless an object filled its 128 MiB) is replayed from the spool when it is started again on
# the same state, and a flush returns once all is written. The drain rate is the replayed bytes
# over the time from the restart to the flush's answer. In the same run, on the same bytes:
# one-core level 6 with C zlib (Python's), zlib-rs and libdeflate on the whole input
# (firehosed's two libraries, examples/gzip_stream.rs), and one stream of each against the
# objects written (the ratio cost of parallel blocks).
# Needs wrk.
# COMPRESSION=ZIP drains into ZIP objects instead (one entry each, deflated the same way).
# usage: [COMPRESSION=ZIP] bench/backlog.sh [seconds=4]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-4}
compression=${COMPRESSION:-GZIP}
case $compression in GZIP) ext=gz ;; ZIP) ext=zip ;; *) echo "COMPRESSION is GZIP or ZIP"; exit 1 ;; esac
command -v wrk > /dev/null || { echo "wrk is missing (apt-get install wrk)"; exit 1; }
# The same build as the other scripts (an example in the build changes the features)
cargo build --release --quiet --bin firehosed --example loadgen --example gzip_stream
bench_work backlog

python3 bench/parquet/make_events.py "$work/events.ndjson" "$work/schema.json" 51200 > /dev/null
awk '{print} NR % 100 == 0 {print ""}' "$work/events.ndjson" > "$work/bodies"
export BODIES=$work/bodies
{
  load_config_head
  cat <<YAML
    destinations:
      - directory: $work/out
        compression: $compression
        buffering: {size_mib: 128, interval_seconds: 900}
YAML
} > "$work/c.yaml"

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; $compression; $seconds s of wrk load, then kill -9 and a restart; load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_firehosed "$work/c.yaml" "$work"
wrk -t2 -c16 -d"${seconds}s" -s bench/peers/post.lua "$url/v1/streams/load/records" > "$work/wrk.out"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
# Objects that sealed at 128 MiB during the load may be written already: the drain is what the
# restart writes, so those go (their records are replayed too unless their cursor was saved).
rm -rf "$work/out"; mkdir -p "$work/out"
t0=$(date +%s.%N)
start_firehosed "$work/c.yaml" "$work"
curl -sf -X POST "$url/v1/streams/load/flush" > /dev/null
t1=$(date +%s.%N)
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
replayed=$(sed -n 's/.*records=\([0-9]*\).*replaying.*/\1/p; s/.*replaying.*records=\([0-9]*\).*/\1/p' "$work/log" | head -1)
if [ "$compression" = ZIP ]; then
  find "$work/out" -name '*.zip' -print0 | sort -z | xargs -0 -n1 unzip -p > "$work/raw"
else
  find "$work/out" -name '*.gz' -print0 | sort -z | xargs -0 cat | gzip -dc > "$work/raw"
fi
zlib_rs=$(target/release/examples/gzip_stream < "$work/raw")
python3 - "$work/raw" "$work/out" "$t0" "$t1" "${replayed:-0}" "$zlib_rs" "$ext" <<'PY'
import os, re, sys, time, zlib
raw_path, root, t0, t1, replayed, zlib_rs, ext = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
objects = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith("." + ext)]
raw = open(raw_path, "rb").read()
compressed = sum(os.path.getsize(p) for p in objects)
secs = t1 - t0
# One core, C zlib level 6 (Python's zlib), the same bytes.
c = zlib.compressobj(6, zlib.DEFLATED, 31)
start = time.perf_counter()
one_c = len(c.compress(raw)) + len(c.flush())
c_rate = len(raw) / (time.perf_counter() - start)
rs = dict(re.findall(r"(\w+)=([\d.]+)", zlib_rs))
one_rs, rs_rate = int(rs["out"]), float(rs["MB_per_s"]) * 1e6
one_ld, ld_rate = int(rs["libdeflate_out"]), float(rs["libdeflate_MB_per_s"]) * 1e6
print(f"replayed {replayed:,} records, {len(raw) / 1e6:,.1f} MB, written as {len(objects)} objects")
print(f"drain, restart to flush answered: {secs:.2f} s = {len(raw) / 1e6 / secs:,.1f} MB/s ({replayed / secs:,.0f} records/s)")
print(f"one core, level 6, same bytes: C zlib {c_rate / 1e6:,.1f} MB/s, zlib-rs {rs_rate / 1e6:,.1f} MB/s, libdeflate (whole input) {ld_rate / 1e6:,.1f} MB/s")
print(f"drain / one core: {len(raw) / secs / c_rate:.2f}x C zlib, {len(raw) / secs / rs_rate:.2f}x zlib-rs, {len(raw) / secs / ld_rate:.2f}x libdeflate")
print(f"compressed: {compressed:,} bytes; one zlib-rs stream {one_rs:,} ({(compressed / one_rs - 1) * 100:+.2f}%), one C zlib stream {one_c:,} ({(compressed / one_c - 1) * 100:+.2f}%), one libdeflate stream {one_ld:,} ({(compressed / one_ld - 1) * 100:+.2f}%)")
PY
