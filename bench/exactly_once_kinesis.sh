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
n=${1:-80000}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed
work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-eo-kinesis.XXXXXX")
pids=()
trap 'kill ${pids[@]:-} 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }
kport=$(free_port); NODE_PATH="$tools/node/node_modules" node tests/py/kinesalite.js "$kport" > /dev/null & pids+=($!)
dport=$(free_port); "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$dport" > /dev/null 2>&1 & pids+=($!)
wait_port "$kport"; wait_port "$dport"
kinesis="http://127.0.0.1:$kport"; dynamo="http://127.0.0.1:$dport"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
"$py" tests/py/kinesis_tool.py "$kinesis" create bench 8
"$py" -c 'import sys, boto3; boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1").list_tables()' "$dynamo"
"$py" - "$kinesis" "$n" <<'PY'
import sys, boto3
endpoint, n = sys.argv[1], int(sys.argv[2])
k = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
pad = "x" * 990
for i in range(0, n, 500):
    recs = [{"Data": (f'{{"i":{j},"p":"{pad}"}}'[:1023] + "\n").encode(), "PartitionKey": f"k{j % 97}"} for j in range(i, min(n, i + 500))]
    r = k.put_records(StreamName="bench", Records=recs)
    assert r["FailedRecordCount"] == 0
PY
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
