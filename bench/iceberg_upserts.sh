#!/usr/bin/env bash
# Iceberg row-level operations: ~1 KiB JSON events (examples/loadgen.rs, PutRecordBatch of 500
# over several connections, spool fsync on) with 10% updates and 2% deletes keyed by event_id,
# into an Iceberg table with unique_keys on the embedded sqlite catalog (a file:// warehouse on
# the same disk), then the same load into a table with append_only: true (every record an
# insert, the fast path), the same with the routing query (to tell the jq's cost from
# merge-on-read's) and pyiceberg's delete + upsert of the same change stream, in the same run.
# Prints records/s from acknowledgement to committed
# snapshot, the commit latency and the time DuckDB then takes to read each table. Then the
# upsert table at AWS's default buffering (5 MiB, 300 s) loaded in phases, to the cumulative
# seconds of load given: after each, its data and delete files and the time DuckDB takes to
# read it (at most read_timeout seconds), as delete files accumulate without compaction.
# usage: bench/iceberg_upserts.sh [connections=4] [seconds=20] ["2 4 8 16 40"] [read_timeout=120]
#        (SECTIONS="compare phases" by default; either alone runs that part)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
connections=${1:-4}
seconds=${2:-20}
phases=${3:-2 4 8 16 40}
read_timeout=${4:-120}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed --example loadgen
bench_work iceberg-upserts
uri="sqlite:///$work/catalog.db"
schema=$events_iceberg_schema
for t in upserts appends queried defaults pyupserts; do
  "$py" tests/py/iceberg_tool.py create --uri "$uri" --warehouse "file://$work/warehouse" \
    --table "db.$t" --schema "$schema" --partition '[]' > /dev/null
done
export RUST_LOG=info

# run TABLE MODE SIZE_MIB INTERVAL SECONDS: one daemon, one load; MODE is upsert or append_only.
run() {
  local table=$1 mode=$2 size=$3 interval=$4 secs=$5 keys
  case $mode in
    upsert) keys="unique_keys: [event_id]}]
          routing: {query: '{operation: .op}'}" ;;
    append_only) keys="}]
          append_only: true" ;;
    append_only_query) keys="}]
          routing: {query: '{operation: .op}'}
          append_only: true" ;;
  esac
  rm -rf "$work/state"
  {
    load_config_head
    cat <<YAML
    destinations:
      - iceberg:
          catalog: {sql: {uri: "$uri"}}
          tables: [{database: db, table: $table, $keys
        s3_backup: {directory: $work/errors}
        buffering: {size_mib: $size, interval_seconds: $interval}
YAML
  } > "$work/c.yaml"
  : > "$work/log"
  start_firehosed "$work/c.yaml" "$work"
  target/release/examples/loadgen "$url" load --connections "$connections" --seconds "$secs" \
    --pid "$pid" --updates 10 --deletes 2 | grep -E '^(connections|acknowledged|delivered)' || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  grep -o 'commit_ms=[0-9]*' "$work/log" | cut -d= -f2 | sort -n > "$work/commits"
  local n p50 p99
  n=$(wc -l < "$work/commits")
  p50=$(awk -v n="$n" 'NR == int((n + 1) / 2)' "$work/commits")
  p99=$(awk -v n="$n" 'NR == int(n * 0.99 + 0.999)' "$work/commits")
  echo "  $mode: $n commits, commit latency p50=${p50}ms p99=${p99}ms"
}

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; fsync on; 10% updates, 2% deletes"
sections=${SECTIONS:-compare phases}
if [[ $sections == *compare* ]]; then
  echo "== unique_keys (merge-on-read), 64 MiB / 60 s buffers"
  run upserts upsert 64 60 "$seconds"
  echo "== append_only, same load"
  run appends append_only 64 60 "$seconds"
  echo "== append_only with the routing query (the jq the operations come from), same load"
  run queried append_only_query 64 60 "$seconds"
  echo "== pyiceberg 0.12: delete + upsert (copy-on-write) per 65,536 records of the same stream"
  "$py" bench/iceberg_pyiceberg_upsert.py "$uri" db.pyupserts 200000 65536
  echo "  read unique_keys: $("$py" bench/iceberg_read.py "$uri" db.upserts "$read_timeout")"
  echo "  read append_only: $("$py" bench/iceberg_read.py "$uri" db.appends "$read_timeout")"
fi
[[ $sections == *phases* ]] || exit 0
echo "== unique_keys at AWS's default buffering (5 MiB / 300 s), delete files accumulating"
done_seconds=0
for until in $phases; do
  run defaults upsert 5 300 "$((until - done_seconds))" > /dev/null
  done_seconds=$until
  echo "after $until s of load: $("$py" bench/iceberg_read.py "$uri" db.defaults "$read_timeout")"
done
