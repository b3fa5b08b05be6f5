#!/usr/bin/env bash
# Peak RSS of firehosed while a 128 MiB buffer fills (issue: staging keeps memory flat).
# usage: bench/rss.sh [path/to/firehosed]   (default: target/release/firehosed)
# Sends ~127 MiB of 1 KiB JSON lines through plain ingest (8 MiB bodies) into one
# 128 MiB buffer per codec, then reads VmHWM from /proc.
set -euo pipefail
bin=${1:-target/release/firehosed}
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
python3 - "$work/body" <<'PY'
import sys
line = '{"payload":"' + "m" * 1000 + '"}\n'
open(sys.argv[1], "w").write(line * (8 * 1024 * 1024 // len(line)))
PY
printf "%-14s %10s %12s %12s\n" codec buffered_MiB baseline_MiB peak_RSS_MiB
for codec in UNCOMPRESSED GZIP ZIP Snappy HADOOP_SNAPPY; do
  cat > "$work/c.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $work/state-$codec
delivery_streams:
  - name: mem
    source: {direct_put: {}}
    destinations:
      - directory: $work/out-$codec
        buffering: {size_mib: 128, interval_seconds: 900}
        compression: $codec
YAML
  "$bin" run --config "$work/c.yaml" > "$work/out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  addr=$(sed -n 's/.*listening on //p' "$work/out")
  base=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)
  sent=0
  for _ in $(seq 15); do
    curl -sf -o /dev/null --data-binary @"$work/body" "$addr/v1/streams/mem/records"
    sent=$((sent + $(stat -c %s "$work/body")))
  done
  peak=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  printf "%-14s %10d %12d %12d\n" "$codec" $((sent / 1048576)) "$base" "$peak"
done
