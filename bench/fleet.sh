#!/usr/bin/env bash
# Kinesis fleet benchmark: a backlog of N ~1 KiB records in an 8-shard kinesalite stream, read
# from TRIM_HORIZON by 1, then 2, then 3 firehosed instances sharing it through a lease table
# (moto's DynamoDB; a fresh table per run, so each run reads the whole backlog), all on this
# machine, each delivering to its own UNCOMPRESSED directory. Prints records/s delivered in total
# (backlog / time from the first start to the last record on disk) for each fleet size, then
# kills one instance of the 3 with -9 and prints how long until its shards are owned by the
# others (failover_seconds 10, the default). Needs the test tools (scripts/test-tools.sh).
# usage: bench/fleet.sh [records=40000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-40000}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed
work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-fleet.XXXXXX")
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
echo "backlog: $n records of ~1 KiB in 8 shards (kinesalite 3.3.3), lease table on moto 5.2.5; $(nproc) cores"
delivered() { cat "$work"/run$1-*/out/* 2>/dev/null | wc -l; }
run() { # $1 = instances
  local size=$1 start end i fleet=()
  start=$(date +%s.%N)
  for i in $(seq "$size"); do
    mkdir -p "$work/run$size-$i"
    cat > "$work/run$size-$i/c.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $work/run$size-$i/state
delivery_streams:
  - name: fb
    source:
      kinesis_stream:
        stream_name: bench
        endpoint_url: '$kinesis'
        starting_position: TRIM_HORIZON
        discovery_interval_seconds: 1
        leases: {table: bench-$size, endpoint_url: '$dynamo', worker_id: w$i}
    destinations:
      - directory: $work/run$size-$i/out
        buffering: {size_mib: 8, interval_seconds: 1}
YAML
    target/release/firehosed run --config "$work/run$size-$i/c.yaml" > /dev/null 2> "$work/run$size-$i/log" & fleet+=($!); pids+=($!)
  done
  while [ "$(delivered "$size")" -lt "$n" ]; do sleep 0.1; done
  end=$(date +%s.%N)
  python3 -c "print(f'{$size} instance(s): {$n} records in {$end - $start:.1f} s = {$n / ($end - $start):,.0f} records/s delivered')"
  if [ "$size" -eq 3 ]; then
    # Wait for the even split (3/3/2), then kill -9 w2 and time the takeover.
    until "$py" tests/py/lease_tool.py "$dynamo" scan bench-3 | python3 -c 'import json,sys,collections; c=collections.Counter(i.get("leaseOwner") for i in json.load(sys.stdin)); sys.exit(0 if sorted(c.values())==[2,3,3] and None not in c else 1)'; do sleep 0.5; done
    kill -9 "${fleet[1]}"; killed=$(date +%s.%N)
    until "$py" tests/py/lease_tool.py "$dynamo" scan bench-3 | python3 -c 'import json,sys; sys.exit(1 if any(i.get("leaseOwner")=="w2" for i in json.load(sys.stdin)) else 0)'; do sleep 0.1; done
    python3 -c "print(f'kill -9 of one of 3: its shards owned by the others after {$(date +%s.%N) - $killed:.1f} s (failover_seconds 10)')"
  fi
  kill "${fleet[@]}" 2>/dev/null || true; wait "${fleet[@]}" 2>/dev/null || true
}
run 1; run 2; run 3
