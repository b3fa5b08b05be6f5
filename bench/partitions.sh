#!/usr/bin/env bash
# Dynamic partitioning cost: the release firehosed with one GZIP directory destination, fed by
# examples/loadgen.rs (PutRecordBatch of 500 x 1 KiB JSON records, 4 connections) for SECONDS,
# then flushed; the same run without partitioning, and with a two-key jq extraction
# ({action: .action, b: (.event_id % 125)}: 500 active partitions, AWS's default limit).
# Prints delivered records/s, peak RSS, the objects and their compression ratio for each.
# usage: bench/partitions.sh [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-10}
cargo build --release --quiet --bin firehosed --example loadgen
bench_work partitions

run() {
  local name=$1 processing=$2 destination=$3
  rm -rf "$work/state" "$work/out"
  {
    load_config_head
    cat <<YAML
    processing: {append_delimiter_to_record: false$processing}
    destinations:
      - directory: $work/out
        compression: GZIP
        buffering: {size_mib: 64, interval_seconds: 60}
$destination
YAML
  } > "$work/c.yaml"
  start_firehosed "$work/c.yaml" "$work"
  printf '%-34s ' "$name"
  target/release/examples/loadgen "$url" load --connections 4 --seconds "$seconds" --pid "$pid" \
    | sed -n 's/^delivered (load + final flush): //p' | tr '\n' ' '
  # The compression ratio: object bytes over the records' bytes (decompressed, errors too).
  local stored raw
  stored=$(find "$work/out" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  raw=$(find "$work/out" -type f -exec cat {} + | gzip -dc | wc -c)
  echo "objects=$(find "$work/out" -type f | wc -l) bytes=$stored of $raw ratio=$(awk -v s="$stored" -v r="$raw" 'BEGIN {printf "%.4f", s / r}')"
  kill $pid; wait $pid 2>/dev/null || true
}

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; $seconds s of load per row"
run "no partitioning" "" "        prefix: 'plain/'"
run "jq: 2 keys, 500 partitions" \
  ", metadata_extraction: {query: '{action: .action, b: (.event_id % 125)}'}" \
  "        prefix: 'action=!{partitionKeyFromQuery:action}/b=!{partitionKeyFromQuery:b}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'
        dynamic_partitioning: {enabled: true}"
