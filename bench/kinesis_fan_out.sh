#!/usr/bin/env bash
# Enhanced fan-out next to polling (put-to-reader latency, a one-shard backlog's records/s), on
# kinesis-mock over TLS/HTTP/2; what each figure means is in bench/kinesis_fan_out.py.
# Needs the test tools (scripts/test-tools.sh). usage: bench/kinesis_fan_out.sh [N=20000] [SAMPLES=40]
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
cargo build --release --quiet --bin firehosed
"$tools/venv/bin/python" bench/kinesis_fan_out.py "${FIREHOSED_BIN:-target/release/firehosed}" "$@"
