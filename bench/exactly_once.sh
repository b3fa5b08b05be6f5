#!/usr/bin/env bash
# delivery: exactly_once next to at_least_once, in one run: the release firehosed with one GZIP
# S3 destination (s3s-fs on this machine, 8 MiB objects so the journal is written often) fed by
# examples/loadgen.rs (PutRecordBatch, 500 x 1 KiB JSON records, 4 connections) for N seconds,
# then a flush. Prints, per mode and round (the modes alternate, two rounds each), loadgen's
# records/s acknowledged and delivered (acknowledged records over the load plus the final flush),
# and the objects written. Needs the test tools (scripts/test-tools.sh).
# usage: bench/exactly_once.sh [seconds=15]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-15}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
cargo build --release --quiet --bin firehosed --example loadgen
bench_work exactly-once
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
s3port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/s3"
"$tools/s3s-fs/bin/s3s-fs" --host 127.0.0.1 --port "$s3port" --access-key test --secret-key test "$work/s3" > /dev/null 2>&1 &
s3pid=$!
trap 'kill $pid $s3pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$s3port) 2>/dev/null && break; sleep 0.1; done
s3="http://127.0.0.1:$s3port"
echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores, s3s-fs, fsync on, ${seconds} s of load per run"
run() { # $1 = mode, $2 = round
  local bucket="b-${1//_/-}-$2" objects
  "$tools/venv/bin/python" tests/py/s3tool.py "$s3" create-bucket "$bucket"
  rm -rf "$work/state"
  {
    echo "aws: {endpoint_url: '$s3', force_path_style: true}"
    load_config_head
    cat <<YAML
    destinations:
      - s3: {bucket: $bucket}
        delivery: $1
        compression: GZIP
        buffering: {size_mib: 8, interval_seconds: 60}
YAML
  } > "$work/c.yaml"
  start_firehosed "$work/c.yaml" "$work"
  target/release/examples/loadgen "$url" load --connections 4 --seconds "$seconds" --pid "$pid" > "$work/loadgen.out"
  objects=$("$tools/venv/bin/python" tests/py/s3tool.py "$s3" list "$bucket" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  echo "$1 round $2 ($objects objects):"
  grep -E "^(acknowledged|delivered|connections)" "$work/loadgen.out" | sed 's/^/  /'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
for round in 1 2; do
  run at_least_once "$round"
  run exactly_once "$round"
done
