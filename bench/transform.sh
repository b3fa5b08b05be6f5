#!/usr/bin/env bash
# Transform throughput: the release firehosed, one UNCOMPRESSED directory destination (so the
# codec does not hide the transform's cost), fed by examples/loadgen.rs (PutRecordBatch of
# 500 x 1 KiB JSON records over 4 connections) for SECONDS, then flushed. The same run for: no
# transform, pass-through transforms as a raw-protocol Python child, an unmodified Lambda
# handler through the Python and the Node.js runners, and a WASM module (WAT pass-through).
# "delivered" counts the final flush: records through the whole pipeline per second.
# usage: bench/transform.sh [seconds=5]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-5}
cargo build --release --quiet --bin firehosed --example loadgen
repo=$(pwd)
python=${PYTHON:-python3}
bench_work transform

run() {
  local name=$1 transform=$2
  rm -rf "$work/state" "$work/out"
  {
    load_config_head
    if [ -n "$transform" ]; then
      printf '    processing:\n      transform:\n        %s\n        buffer_size_mib: 3\n        buffer_interval_seconds: 60\n' "$transform"
    fi
    cat <<YAML
    destinations:
      - directory: $work/out
        buffering: {size_mib: 64, interval_seconds: 60}
YAML
  } > "$work/c.yaml"
  start_firehosed "$work/c.yaml" "$work"
  printf '%-28s ' "$name"
  target/release/examples/loadgen "$url" load --connections 4 --seconds "$seconds" --pid "$pid" \
    | sed -n 's/^delivered (load + final flush): //p'
  kill $pid; wait $pid 2>/dev/null || true
}

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; $seconds s of load per row"
run "no transform" ""
run "python raw protocol" "subprocess: {command: ['$python', '$repo/tests/transforms/passthrough.py']}"
run "python runner (Lambda)" "subprocess: {command: ['$python', '$repo/runners/python/firehosed_runner.py', 'passthrough_lambda.lambda_handler'], working_directory: '$repo/bench/transforms'}"
run "node runner (Lambda)" "subprocess: {command: ['node', '$repo/runners/node/firehosed_runner.js', 'passthrough_lambda.handler'], working_directory: '$repo/bench/transforms'}"
run "wasm (passthrough.wat)" "wasm: {module: '$repo/tests/wasm/passthrough.wat'}"
