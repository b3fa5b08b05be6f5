#!/usr/bin/env bash
# End-to-end load with format conversion: the release firehosed, Direct PUT -> spool (fsync on)
# -> JSON -> Parquet (SNAPPY, 128 MiB buffers, AWS's defaults) -> directory, fed by
# examples/loadgen.rs (PutRecordBatch of 500 x 1 KiB JSON records over several connections).
# Prints what loadgen measures (its "ceiling" line is gzip's speed, not Parquet's), the objects
# written and the daemon's peak RSS.
# usage: bench/parquet_load.sh [connections=4] [seconds=20]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
connections=${1:-4}
seconds=${2:-20}
cargo build --release --quiet --bin firehosed --example loadgen
bench_work pqload
{
  load_config_head
  cat <<YAML
    destinations:
      - directory: $work/out
        buffering: {size_mib: 128, interval_seconds: 60}
        data_format_conversion:
          schema:
            columns:
              - {name: event_id, type: bigint}
              - {name: user, type: string}
              - {name: action, type: string}
              - {name: ts, type: timestamp}
              - {name: amount, type: 'decimal(10,2)'}
              - {name: pad, type: string}
YAML
} > "$work/c.yaml"
start_firehosed "$work/c.yaml" "$work"
echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; fsync on; JSON -> Parquet"
target/release/examples/loadgen "$url" load --connections "$connections" --seconds "$seconds" --pid "$pid"
echo "objects: $(find "$work/out" -name '*.parquet' | wc -l) Parquet, $(du -sh "$work/out" | cut -f1); error records: $(find "$work/out" -path '*failed*' -type f | xargs -r cat | wc -l)"
