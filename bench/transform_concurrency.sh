#!/usr/bin/env bash
# transform.concurrency against a slow transform: a raw-protocol Python pass-through that takes
# DELAY_MS (default 50: a remote Lambda's latency) per invocation, 1 MiB batches (AWS's default
# buffer), one UNCOMPRESSED directory destination. examples/loadgen.rs acknowledges SECONDS of
# 1 KiB records (PutRecordBatch of 500 over 4 connections), then flushes: the records/s
# "delivered (load + final flush)" is what the transform lets through. The same records and
# transform at each concurrency, in one run.
# usage: bench/transform_concurrency.sh [seconds=2] [concurrencies="1 2 4 8"]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-2}
levels=${2:-1 2 4 8}
delay=${DELAY_MS:-50}
cargo build --release --quiet --bin firehosed --example loadgen
repo=$(pwd)
python=${PYTHON:-python3}
bench_work transform-concurrency

run() {
  local concurrency=$1
  rm -rf "$work/state" "$work/out"
  {
    load_config_head
    cat <<YAML
    processing:
      transform:
        subprocess: {command: ['$python', '$repo/bench/transforms/slow_passthrough.py', '$delay']}
        buffer_size_mib: 1
        buffer_interval_seconds: 60
        concurrency: $concurrency
    destinations:
      - directory: $work/out
        buffering: {size_mib: 64, interval_seconds: 60}
YAML
  } > "$work/c.yaml"
  start_firehosed "$work/c.yaml" "$work"
  printf 'concurrency %-3s ' "$concurrency"
  target/release/examples/loadgen "$url" load --connections 4 --seconds "$seconds" --pid "$pid" \
    | sed -n 's/^delivered (load + final flush): //p'
  kill $pid; wait $pid 2>/dev/null || true
}

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; ${delay} ms per invocation; $seconds s of load per row; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $levels; do run "$c"; done
