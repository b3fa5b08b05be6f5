#!/usr/bin/env bash
# End-to-end load run: the release firehosed with one GZIP directory destination (spool fsync
# on, state and output on the same disk), fed by examples/loadgen.rs with PutRecordBatch calls
# of 500 x 1 KiB JSON records over several connections. Prints records/s, MB/s, p50/p99
# latency, peak RSS, and gzip's speed on the same data on one core (the ceiling).
# COMPRESSION=UNCOMPRESSED (or any other codec) changes the destination's codec: uncompressed,
# the acknowledgement path is what is measured. FIREHOSED_BIN runs another build. NO_PEERS=1
# leaves out the boto3 comparison.
# usage: [COMPRESSION=..] [FIREHOSED_BIN=path] [NO_PEERS=1] bench/load.sh [connections=4] [seconds=20]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
connections=${1:-4}
seconds=${2:-20}
cargo build --release --quiet --bin firehosed --example loadgen
bench_work load
{
  load_config_head
  cat <<YAML
    destinations:
      - directory: $work/out
        compression: ${COMPRESSION:-GZIP}
        buffering: {size_mib: 64, interval_seconds: 60}
YAML
} > "$work/c.yaml"
start_firehosed "$work/c.yaml" "$work"
echo "firehosed ${FIREHOSED_BIN:-$(git rev-parse --short HEAD 2>/dev/null)} on $(nproc) cores; fsync on; ${COMPRESSION:-GZIP}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/examples/loadgen "$url" load --connections "$connections" --seconds "$seconds" --pid "$pid"
echo "objects: $(find "$work/out" -type f | wc -l), $(du -sh "$work/out" | cut -f1)"
[ -z "${NO_PEERS:-}" ] || exit 0

# The same boto3 client against firehosed and against moto's Firehose (what test suites use
# instead), in this run. Needs the test tools (scripts/test-tools.sh).
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
if [ -x "$tools/venv/bin/python" ]; then
  echo "boto3 client, $connections threads, 10 s:"
  printf "  firehosed:      "; "$tools/venv/bin/python" bench/boto3_load.py "$url" load --threads "$connections" --seconds 10
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" > /dev/null 2>&1 &
  moto=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  printf "  moto Firehose:  "; "$tools/venv/bin/python" bench/boto3_load.py "http://127.0.0.1:$port" load --threads "$connections" --seconds 10 --create-on-moto bench
  kill $moto
fi
