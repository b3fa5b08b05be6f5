#!/usr/bin/env bash
# Peak RSS of firehosed while a 128 MiB buffer fills (issue: staging keeps memory flat).
# usage: bench/rss.sh [path/to/firehosed]   (default: target/release/firehosed)
# Sends ~119 MiB of 1 KiB JSON lines through plain ingest (8 MiB bodies) into one
# 128 MiB buffer per codec (and one converted to Parquet, one to ORC), flushes, then reads VmHWM
# from /proc.
set -euo pipefail
bin=${1:-target/release/firehosed}
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
python3 - "$work/body" <<'PY'
import sys
line = '{"payload":"' + "m" * 1000 + '"}\n'
open(sys.argv[1], "w").write(line * (8 * 1024 * 1024 // len(line)))
# Parquet: distinct random payloads, so dictionaries and snappy do not shrink the rows away.
import random
rng = random.Random(1)
with open(sys.argv[1] + ".varied", "w") as f:
    for _ in range(8 * 1024 * 1024 // 1014):
        f.write('{"payload":"' + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1000)) + '"}\n')
PY
printf "%-14s %10s %12s %12s\n" codec buffered_MiB baseline_MiB peak_RSS_MiB
for codec in UNCOMPRESSED GZIP ZIP Snappy HADOOP_SNAPPY PARQUET ORC; do
  body=$work/body; compression=$codec; conversion=""
  if [ "$codec" = PARQUET ]; then
    # JSON -> Parquet (SNAPPY pages) into one 128 MiB buffer: rows go out in row groups.
    body=$work/body.varied; compression=UNCOMPRESSED
    conversion="data_format_conversion: {schema: {columns: [{name: payload, type: string}]}}"
  fi
  if [ "$codec" = ORC ]; then
    # JSON -> ORC (SNAPPY) into one 128 MiB buffer: rows go out in stripes.
    body=$work/body.varied; compression=UNCOMPRESSED
    conversion="data_format_conversion: {schema: {columns: [{name: payload, type: string}]}, output: {orc: {}}}"
  fi
  cat > "$work/c.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $work/state-$codec
delivery_streams:
  - name: mem
    source: {direct_put: {}}
    destinations:
      - directory: $work/out-$codec
        buffering: {size_mib: 128, interval_seconds: 900}
        compression: $compression
        $conversion
YAML
  "$bin" run --config "$work/c.yaml" > "$work/out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  addr=$(sed -n 's/.*listening on //p' "$work/out")
  base=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)
  sent=0
  for _ in $(seq 15); do
    curl -sf -o /dev/null --data-binary @"$body" "$addr/v1/streams/mem/records"
    sent=$((sent + $(stat -c %s "$body")))
  done
  curl -sf -o /dev/null -X POST "$addr/v1/streams/mem/flush"
  peak=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  printf "%-14s %10d %12d %12d\n" "$codec" $((sent / 1048576)) "$base" "$peak"
done
