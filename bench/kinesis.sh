#!/usr/bin/env bash
# Kinesis source benchmark: a backlog of N 1 KiB records in a 4-shard kinesalite stream; first a
# bare GetRecords loop drains it (the server's ceiling), then firehosed delivers the same backlog
# from TRIM_HORIZON to an UNCOMPRESSED directory. Prints records/s and firehosed's CPU-seconds
# per GB. Needs the test tools (scripts/test-tools.sh).
# usage: bench/kinesis.sh [records=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed --example kinesis_bare
work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-kbench.XXXXXX")
trap 'kill $kpid $pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NODE_PATH="$tools/node/node_modules" node tests/py/kinesalite.js "$port" > /dev/null &
kpid=$!
endpoint="http://127.0.0.1:$port"
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
"$py" tests/py/kinesis_tool.py "$endpoint" create bench 4
"$py" - "$endpoint" "$n" <<'PY'
import sys, boto3
endpoint, n = sys.argv[1], int(sys.argv[2])
k = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
pad = "x" * 990
for i in range(0, n, 500):
    recs = [{"Data": f'{{"i":{j},"p":"{pad}"}}'[:1024].encode(), "PartitionKey": f"k{j % 97}"} for j in range(i, min(n, i + 500))]
    r = k.put_records(StreamName="bench", Records=recs)
    assert r["FailedRecordCount"] == 0
PY
echo "backlog: $n records of ~1 KiB in 4 shards (kinesalite 3.3.3)"
target/release/examples/kinesis_bare "$endpoint" bench
cat > "$work/c.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $work/state
delivery_streams:
  - name: kb
    source:
      kinesis_stream: {stream_name: bench, endpoint_url: '$endpoint', starting_position: TRIM_HORIZON}
    destinations:
      - directory: $work/out
        buffering: {size_mib: 64, interval_seconds: 900}
YAML
start=$(date +%s.%N)
target/release/firehosed run --config "$work/c.yaml" > "$work/stdout" 2> "$work/log" &
pid=$!
for _ in $(seq 200); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/.*listening on //p' "$work/stdout")
while :; do
  read=$(curl -s "$url/metrics" | awk '/^firehose_data_read_from_kinesis_stream_records_total/ {s+=$2} END {print s+0}')
  [ "$read" -ge "$n" ] && break
  sleep 0.2
done
curl -sf -X POST "$url/v1/streams/kb/flush" > /dev/null
end=$(date +%s.%N)
ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
hz=$(getconf CLK_TCK)
bytes=$(du -sb "$work/out" | cut -f1)
python3 - "$start" "$end" "$ticks" "$hz" "$bytes" "$n" <<'PY'
import sys
start, end, ticks, hz, nbytes, n = map(float, sys.argv[1:])
secs = end - start
cpu = ticks / hz
print(f"firehosed (read + deliver, from start to flushed): records={int(n)} seconds={secs:.1f} "
      f"records_per_s={n / secs:.0f} MB_per_s={nbytes / secs / 1e6:.1f} cpu_seconds={cpu:.2f} "
      f"cpu_seconds_per_GB={cpu / (nbytes / 1e9):.1f}")
PY
