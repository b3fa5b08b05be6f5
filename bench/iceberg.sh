#!/usr/bin/env bash
# Iceberg appends: ~1 KiB JSON events (examples/loadgen.rs, PutRecordBatch of 500 over several
# connections, spool fsync on) into one Iceberg table on the embedded sqlite catalog, a file://
# warehouse on the same disk. Prints records/s from acknowledgement to committed snapshot (the
# load and the final flush, which answers after the commit), the commit latency (p50/p99 of the
# daemon's "committed to the Iceberg table" lines), files and snapshots per minute; then
# pyiceberg appending as many of the same records (JSON -> Arrow -> table.append, one append per
# 64 MiB of records) to a table of its own, in the same run.
# usage: bench/iceberg.sh [connections=4] [seconds=20] [size_mib=64] [interval_seconds=60]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
connections=${1:-4}
seconds=${2:-20}
size_mib=${3:-64}
interval=${4:-60}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed --example loadgen
bench_work iceberg
uri="sqlite:///$work/catalog.db"
schema=$events_iceberg_schema
for t in events pyevents; do
  "$py" tests/py/iceberg_tool.py create --uri "$uri" --warehouse "file://$work/warehouse" \
    --table "db.$t" --schema "$schema" --partition '[]' > /dev/null
done
{
  load_config_head
  cat <<YAML
    destinations:
      - iceberg:
          catalog: {sql: {uri: "$uri"}}
          tables: [{database: db, table: events}]
        s3_backup: {directory: $work/errors}
        buffering: {size_mib: $size_mib, interval_seconds: $interval}
YAML
} > "$work/c.yaml"
export RUST_LOG=info
start_firehosed "$work/c.yaml" "$work"
echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; fsync on; buffering ${size_mib} MiB / ${interval} s"
target/release/examples/loadgen "$url" load --connections "$connections" --seconds "$seconds" --pid "$pid" | tee "$work/loadgen.txt"
grep -o 'commit_ms=[0-9]*' "$work/log" | cut -d= -f2 | sort -n > "$work/commits"
commits=$(wc -l < "$work/commits")
p50=$(awk -v n="$commits" 'NR == int((n + 1) / 2)' "$work/commits")
p99=$(awk -v n="$commits" 'NR == int(n * 0.99 + 0.999)' "$work/commits")
info=$("$py" tests/py/iceberg_tool.py info --uri "$uri" --table db.events)
snapshots=$(echo "$info" | "$py" -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
files=$(echo "$info" | "$py" -c 'import json,sys; s=json.load(sys.stdin)["snapshots"]; print(s[-1]["summary"].get("total-data-files", 0) if s else 0)')
rows=$(echo "$info" | "$py" -c 'import json,sys; s=json.load(sys.stdin)["snapshots"]; print(s[-1]["summary"].get("total-records", 0) if s else 0)')
minutes=$(awk -v s="$seconds" 'BEGIN { printf "%.2f", s / 60 }')
echo "table: rows=$rows snapshots=$snapshots data_files=$files in ${seconds}s load: $(awk -v n="$snapshots" -v m="$minutes" 'BEGIN { printf "%.1f", n / m }') snapshots/min"
echo "commits: $commits, commit latency p50=${p50}ms p99=${p99}ms"
# pyiceberg: the same records (at most 200,000: making them in Python is slow, and is not
# timed), one append per buffer's worth.
per_append=$(( size_mib * 1024 ))
"$py" bench/iceberg_pyiceberg.py "$uri" db.pyevents "$(( rows < 200000 ? rows : 200000 ))" "$per_append"
