#!/usr/bin/env bash
# Kinesis fleet benchmark: a backlog of N ~1 KiB records in an 8-shard kinesalite stream, read
# from TRIM_HORIZON by 1, then 2, then 3 firehosed instances sharing it through a lease table
# (moto's DynamoDB; a fresh table per run, so each run reads the whole backlog), all on this
# machine, each delivering to its own UNCOMPRESSED directory. Prints records/s delivered in total
# (backlog / time from the first start to the last record on disk) for each fleet size, then
# kills one instance of the 3 with -9 and prints how long until its shards are owned by the
# others and until a record put into each of them at the kill is delivered (failover_seconds
# 10, the default; buffering interval 1 s). Needs the test tools (scripts/test-tools.sh).
# usage: bench/fleet.sh [records=40000]   (BENCHMARKS.md: 160000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-40000}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed
work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-fleet.XXXXXX")
pids=()
trap 'kill ${pids[@]:-} 2>/dev/null || true; rm -rf "$work"' EXIT
kinesis_backlog "$n"
echo "backlog: $n records of ~1 KiB in 8 shards (kinesalite 3.3.3), lease table on moto 5.2.5; $(nproc) cores"
delivered() { find "$work"/run$1-*/out -type f -exec cat {} + 2>/dev/null | wc -l; }
run() { # $1 = instances (0: one instance without a lease table, checkpoints in its file)
  local size=$1 start first end i fleet=() leases label
  start=$(date +%s.%N)
  for i in $(seq "$(( size > 0 ? size : 1 ))"); do
    leases="        leases: {table: bench-$size, endpoint_url: '$dynamo', worker_id: w$i}"
    [ "$size" -eq 0 ] && leases=""
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
$leases
    destinations:
      - directory: $work/run$size-$i/out
        buffering: {size_mib: 8, interval_seconds: 1}
YAML
    target/release/firehosed run --config "$work/run$size-$i/c.yaml" > /dev/null 2> "$work/run$size-$i/log" & fleet+=($!); pids+=($!)
  done
  while [ "$(delivered "$size")" -eq 0 ]; do sleep 0.05; done
  first=$(date +%s.%N)
  while [ "$(delivered "$size")" -lt "$n" ]; do sleep 0.25; done
  end=$(date +%s.%N)
  label="$size instance(s) sharing a lease table"; [ "$size" -eq 0 ] && label="1 instance, no lease table"
  python3 -c "print(f'$label: {$n} records in {$end - $start:.1f} s = {$n / ($end - $start):,.0f} records/s delivered; first object on disk after {$first - $start:.1f} s, then {$n / ($end - $first):,.0f} records/s')"
  if [ "$size" -eq 3 ]; then
    # Wait for the even split (3/3/2), then kill -9 w2 and time the takeover.
    until "$py" tests/py/lease_tool.py "$dynamo" scan bench-3 | python3 -c 'import json,sys,collections; c=collections.Counter(i.get("leaseOwner") for i in json.load(sys.stdin)); sys.exit(0 if sorted(c.values())==[2,3,3] and None not in c else 1)'; do sleep 0.5; done
    kill -9 "${fleet[1]}"; killed=$(date +%s.%N)
    # One record into every shard right after the kill: the dead instance's shards resume when
    # their records are on disk at one of the survivors.
    "$py" - "$kinesis" <<'PY'
import sys, boto3
k = boto3.client("kinesis", endpoint_url=sys.argv[1], region_name="us-east-1")
for s in k.list_shards(StreamName="bench")["Shards"]:
    k.put_record(StreamName="bench", Data=f'{{"resume":"{s["ShardId"]}"}}\n'.encode(),
                 PartitionKey="r", ExplicitHashKey=s["HashKeyRange"]["StartingHashKey"])
PY
    until "$py" tests/py/lease_tool.py "$dynamo" scan bench-3 | python3 -c 'import json,sys; sys.exit(1 if any(i.get("leaseOwner")=="w2" for i in json.load(sys.stdin)) else 0)'; do sleep 0.1; done
    owned=$(date +%s.%N)
    until [ "$(find "$work"/run3-*/out -type f -exec cat {} + | grep -c '"resume"')" -ge 8 ]; do sleep 0.1; done
    resumed=$(date +%s.%N)
    python3 -c "print(f'kill -9 of one of 3 (failover_seconds 10): its shards owned by the others after {$owned - $killed:.1f} s, reading again (a record put into each shard at the kill is on disk) after {$resumed - $killed:.1f} s')"
  fi
  kill "${fleet[@]}" 2>/dev/null || true; wait "${fleet[@]}" 2>/dev/null || true
}
# The ceiling kinesalite sets: 8 Python threads, one per shard, GetRecords from TRIM_HORIZON.
"$py" - "$kinesis" "$n" <<'PY'
import sys, time, boto3, threading
endpoint, n = sys.argv[1], int(sys.argv[2])
k = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
shards = [s["ShardId"] for s in k.list_shards(StreamName="bench")["Shards"]]
got = [0] * len(shards)
def read(i):
    c = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    it = c.get_shard_iterator(StreamName="bench", ShardId=shards[i], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    while True:
        r = c.get_records(ShardIterator=it, Limit=10000)
        got[i] += len(r["Records"])
        if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            return
        it = r["NextShardIterator"]
start = time.time()
ts = [threading.Thread(target=read, args=(i,)) for i in range(len(shards))]
for t in ts: t.start()
for t in ts: t.join()
took = time.time() - start
print(f"kinesalite alone (8 boto3 threads reading, nothing delivered): {sum(got)} records in {took:.1f} s = {sum(got) / took:,.0f} records/s")
PY
run 0; run 1; run 2; run 3
