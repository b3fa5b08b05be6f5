#!/usr/bin/env bash
# delivery: exactly_once next to at_least_once for a Kinesis source, in one run: a backlog of N
# ~1 KiB records in an 8-shard kinesalite stream, read from TRIM_HORIZON into a directory
# (UNCOMPRESSED, 8 MiB / 1 s buffers) by one instance with checkpoint files, then by two
# instances sharing a lease table (moto's DynamoDB; a fresh table and state per run, so each run
# reads the whole backlog). The modes alternate, two rounds each. Prints records/s delivered
# (backlog / time from the start to the last record on disk) and the objects written
# (exactly_once cuts objects per shard). Needs the test tools (scripts/test-tools.sh).
# usage: bench/exactly_once_kinesis.sh [records=80000]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-80000}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed
work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-eo-kinesis.XXXXXX")
pids=()
trap 'kill ${pids[@]:-} 2>/dev/null || true; rm -rf "$work"' EXIT
kinesis_backlog "$n"
echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; backlog: $n records of ~1 KiB in 8 shards (kinesalite), lease table on moto"
delivered() { find "$work"/$1-*/out -type f -exec cat {} + 2>/dev/null | wc -l; }
run() { # $1 = mode, $2 = instances (1: checkpoint files; 2: a lease table), $3 = round
  local tag="$1-$2-$3" start end i fleet=() leases objects
  for i in $(seq "$2"); do
    leases="        leases: {table: t-$tag, endpoint_url: '$dynamo', worker_id: w$i}"
    [ "$2" -eq 1 ] && leases=""
    mkdir -p "$work/$tag-$i"
    cat > "$work/$tag-$i/c.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $work/$tag-$i/state
delivery_streams:
  - name: fb
    source:
      kinesis_stream:
        stream_name: bench
        endpoint_url: '$kinesis'
        starting_position: TRIM_HORIZON
        discovery_interval_seconds: 1
$leases
    destinations:
      - directory: $work/$tag-1/out
        delivery: $1
        buffering: {size_mib: 8, interval_seconds: 1}
YAML
  done
  start=$(date +%s.%N)
  for i in $(seq "$2"); do
    target/release/firehosed run --config "$work/$tag-$i/c.yaml" > /dev/null 2> "$work/$tag-$i/log" & fleet+=($!); pids+=($!)
  done
  until [ "$(delivered "$tag")" -ge "$n" ]; do sleep 0.2; done
  end=$(date +%s.%N)
  objects=$(find "$work/$tag-1/out" -type f | wc -l)
  python3 -c "print(f'$1, $2 instance(s) ($( [ "$2" -eq 1 ] && echo 'checkpoint files' || echo 'lease table' )), round $3: {$n / ($end - $start):,.0f} records/s delivered, $objects objects')"
  kill "${fleet[@]}" 2>/dev/null || true; wait "${fleet[@]}" 2>/dev/null || true
}
for round in 1 2; do
  for size in 1 2; do
    run at_least_once "$size" "$round"
    run exactly_once "$size" "$round"
  done
done
