# Shared by the bench/*.sh load runs: start the release firehosed (or $FIREHOSED_BIN, to compare
# two builds in one run) on a config and wait until it listens. Sets $pid and $url.
# Usage: start_firehosed CONFIG WORKDIR
start_firehosed() {
  local config=$1 work=$2
  : > "$work/stdout"
  "${FIREHOSED_BIN:-target/release/firehosed}" run --config "$config" > "$work/stdout" 2> "$work/log" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/.*listening on //p' "$work/stdout")
}

# bench_work NAME: a scratch folder in $work, removed on exit with the daemon ($pid) stopped.
bench_work() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-$1.XXXXXX")
  pid=
  # The daemon drains on SIGTERM: wait for it, or it writes into the folder being removed.
  trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
}

# load_config_head: the load runs' configuration up to the stream's keys: state in $work, spool
# fsync on, one Direct PUT stream "load". The caller appends processing and destinations.
load_config_head() {
  cat <<YAML
listen: 127.0.0.1:0
state_dir: $work/state
spool: {max_size_mib: 4096, fsync: true}
delivery_streams:
  - name: load
    source: {direct_put: {}}
YAML
}

# kinesis_backlog N: kinesalite and moto's DynamoDB started on free ports ($pids gets their
# pids; $kinesis and $dynamo their endpoints), a stream "bench" of 8 shards holding N ~1 KiB
# JSON records. Needs $tools and $py (the test tools' Python).
kinesis_backlog() {
  local n=$1 kport dport
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }
  kport=$(free_port); NODE_PATH="$tools/node/node_modules" node tests/py/kinesalite.js "$kport" > /dev/null & pids+=($!)
  dport=$(free_port); "$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$dport" > /dev/null 2>&1 & pids+=($!)
  wait_port "$kport"; wait_port "$dport"
  kinesis="http://127.0.0.1:$kport"; dynamo="http://127.0.0.1:$dport"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  "$py" tests/py/kinesis_tool.py "$kinesis" create bench 8
  # moto loads its DynamoDB backend on the first call (seconds): not part of any run.
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
}

# The Iceberg schema of benches/common/records.rs's events (bench/iceberg*.sh).
events_iceberg_schema='{"type":"struct","schema-id":0,"fields":[
 {"id":1,"name":"event_id","required":false,"type":"long"},
 {"id":2,"name":"user","required":false,"type":"string"},
 {"id":3,"name":"action","required":false,"type":"string"},
 {"id":4,"name":"ts","required":false,"type":"timestamptz"},
 {"id":5,"name":"amount","required":false,"type":"double"},
 {"id":6,"name":"pad","required":false,"type":"string"}]}'

# bench_auth: the credentials file of the bench's one key (AKIDBENCH, signed with by
# `loadgen --sigv4 AKIDBENCH:bench-secret`) in $work, and the `auth:` block that lets it do
# anything, on stdout.
bench_auth() {
  printf '[producer]\naws_access_key_id = AKIDBENCH\naws_secret_access_key = bench-secret\n' > "$work/credentials"
  chmod 600 "$work/credentials"
  cat <<YAML
auth:
  credentials_file: $work/credentials
  policies:
    producer:
      Version: "2012-10-17"
      Statement: [{Effect: Allow, Action: "firehose:*", Resource: "*"}]
YAML
}
