#!/usr/bin/env bash
# CloudWatch Logs subscription documents through firehosed (bench/cloudwatch_logs.py: DOCS
# GZIP documents of 100 ~230-byte JSON log events, PutRecordBatch over 4 connections, then a
# flush) into one directory destination (UNCOMPRESSED, or $COMPRESSION), fsync'd spool. Rows, in one run: firehosed's
# decompression + message extraction; the same documents through a Lambda transform in the
# style of AWS's CloudWatch Logs processor blueprint (what users ran before Firehose had
# decompression), with the Python runner (0.5 MiB batches: about 4 MB of extracted events per
# response, under Lambda's 6 MB response limit, as that blueprint must keep); and Python's zlib + json on one core, the ceiling of
# that blueprint. Needs the test tools' Python (scripts/test-tools.sh) for nothing but speed.
# usage: [COMPRESSION=GZIP] bench/cloudwatch_logs.sh [docs=20000]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
docs=${1:-20000}
# The output's codec: UNCOMPRESSED by default, so that GZIP of the output (one core, about
# 100 MB/s here) does not hide the cost of decompression and extraction.
compression=${COMPRESSION:-UNCOMPRESSED}
cargo build --release --quiet --bin firehosed
repo=$(pwd)
python=${PYTHON:-python3}
bench_work cloudwatch-logs

run() {
  local name=$1 processing=$2
  rm -rf "$work/state" "$work/out"
  {
    load_config_head
    printf '    processing:\n%s\n' "$processing"
    cat <<YAML
    destinations:
      - directory: $work/out
        buffering: {size_mib: 64, interval_seconds: 60}
        compression: $compression
YAML
  } > "$work/c.yaml"
  start_firehosed "$work/c.yaml" "$work"
  printf '%-40s ' "$name"
  "$python" bench/cloudwatch_logs.py "$url" load "$docs" 100
  printf '%-40s %s\n' "" "peak RSS $(awk '/VmHWM/ {print int($2/1024) " MiB"}' /proc/$pid/status)"
  kill $pid; wait $pid 2>/dev/null || true
}

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; $docs documents x 100 events; output $compression"
run "decompression + extraction" "      decompression: GZIP
      cloudwatch_logs: {data_message_extraction: true}
      append_delimiter_to_record: true"
run "blueprint-style Lambda (python runner)" "      transform:
        subprocess: {command: ['$python', '$repo/runners/python/firehosed_runner.py', 'cloudwatch_logs_processor.lambda_handler'], working_directory: '$repo/bench/transforms'}
        buffer_size_mib: 0.5
        buffer_interval_seconds: 60"
printf '%-40s ' "python zlib + json, one core (ceiling)"
"$python" bench/cloudwatch_logs.py "" load "$docs" 100 --ceiling
