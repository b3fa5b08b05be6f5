#!/usr/bin/env bash
# What a test suite waits for, firehosed (release) next to moto's Firehose in the same run:
# start-up, CreateDeliveryStream -> ACTIVE, a PutRecord round trip; for firehosed also a SIGHUP
# reload and the drain on SIGTERM. Medians in milliseconds (bench/operations.py).
# usage: bench/operations.sh [runs=5]
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(scripts/test-tools.sh)
cargo build --release --quiet --bin firehosed
"$tools/venv/bin/python" bench/operations.py target/release/firehosed "$tools/venv/bin/moto_server" --runs "${1:-5}"
