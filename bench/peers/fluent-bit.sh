#!/usr/bin/env bash
# firehosed next to Fluent Bit (in_http -> out_s3, gzip), the peer people run on a VM for this
# job, on the same load in one run: wrk POSTs NDJSON bodies of 100 realistic ~1 KiB JSON events
# (bench/parquet/make_events.py; 512 distinct bodies, cycled) over 16 connections for SECONDS,
# then each is stopped the way it delivers what it holds: firehosed by a flush then SIGTERM,
# Fluent Bit by SIGTERM (it uploads its buffers on exit; Grace 120 s). Both write GZIP objects of
# up to 64 MiB / 60 s to the same s3s-fs. Per target it prints records/s acknowledged (2xx
# answers x 100), records/s delivered (records counted in the objects, over the time from the
# load's start to the target's exit), CPU-seconds per GB delivered and peak RSS (the target's
# own rusage), and wrk's p99 latency. Then the kill -9 row: 4 connections of numbered records,
# SIGKILL after 10 s, a restart on the same state, a clean stop, and the acknowledged records
# found in no object.
#
# Fluent Bit comes from FLUENT_BIT=/path/to/fluent-bit (bench/README.md says how to build it
# from its source release); without it, firehosed runs alone and the script says so.
# Needs wrk (Debian package wrk) and the test tools (scripts/test-tools.sh: s3s-fs).
# usage: [FLUENT_BIT=...] bench/peers/fluent-bit.sh [seconds=20]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
seconds=${1:-20}
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
command -v wrk > /dev/null || { echo "wrk is missing (apt-get install wrk)"; exit 1; }
# The same build as the other scripts (an example in the build changes the features)
cargo build --release --quiet --bin firehosed --example loadgen
bench_work peers
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }

s3port=$(free_port)
mkdir -p "$work/s3"
"$tools/s3s-fs/bin/s3s-fs" --host 127.0.0.1 --port "$s3port" --access-key test --secret-key test "$work/s3" > /dev/null 2>&1 &
s3pid=$!
target_pid=
trap 'kill $target_pid $s3pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
wait_port "$s3port"
s3="http://127.0.0.1:$s3port"

# The records: 51,200 events, as bodies of 100 lines separated by an empty line.
python3 bench/parquet/make_events.py "$work/events.ndjson" "$work/schema.json" 51200 > /dev/null
awk '{print} NR % 100 == 0 {print ""}' "$work/events.ndjson" > "$work/bodies"
export BODIES=$work/bodies
record_bytes=$(python3 -c 'import os,sys; p=sys.argv[1]; print(os.path.getsize(p) / sum(1 for _ in open(p)))' "$work/events.ndjson")

firehosed_config() { # $1 = bucket, $2 = state folder
  cat <<YAML
aws: {endpoint_url: '$s3', force_path_style: true}
listen: 127.0.0.1:0
state_dir: $2
spool: {max_size_mib: 4096, fsync: true}
delivery_streams:
  - name: load
    source: {direct_put: {}}
    # Plain ingest takes a record per line without its newline: put it back, as Fluent Bit's
    # objects have one record per line.
    processing: {append_delimiter_to_record: true}
    destinations:
      - s3: {bucket: $1}
        prefix: firehosed/
        compression: GZIP
        buffering: {size_mib: 64, interval_seconds: 60}
YAML
}

fluent_bit_config() { # $1 = bucket, $2 = port, $3 = memory|filesystem, $4 = state folder
  cat <<CONF
[SERVICE]
    Flush        1
    Grace        120
    Log_Level    warn
    storage.path $4/storage
    storage.sync normal
[INPUT]
    Name            http
    Listen          127.0.0.1
    Port            $2
    buffer_max_size 4M
    storage.type    $3
[OUTPUT]
    Name            s3
    Match           *
    bucket          $1
    region          us-east-1
    endpoint        $s3
    total_file_size 64M
    upload_timeout  60s
    use_put_object  On
    compression     gzip
    json_date_key   false
    store_dir       $4/s3
    s3_key_format   /fluent-bit/%Y/%m/%d/%H%M%S-\$UUID.gz
CONF
}

# start NAME BUCKET STATE [memory|filesystem]: starts the target under measure.py; sets
# $target_pid (the target itself), $wrapper and $url.
start() {
  local name=$1 bucket=$2 state=$3 mode=${4:-}
  mkdir -p "$state"
  if [ "$name" = firehosed ]; then
    firehosed_config "$bucket" "$state" > "$work/$name.yaml"
    : > "$work/stdout"
    python3 bench/peers/measure.py "$work/usage" -- target/release/firehosed run --config "$work/$name.yaml" > "$work/stdout" 2> "$work/log" &
    wrapper=$!
    for _ in $(seq 300); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.05; done
    url="$(sed -n 's/.*listening on //p' "$work/stdout")/v1/streams/load/records"
  else
    local port
    port=$(free_port)
    fluent_bit_config "$bucket" "$port" "$mode" "$state" > "$work/$name.conf"
    python3 bench/peers/measure.py "$work/usage" -- "$FLUENT_BIT" -c "$work/$name.conf" > "$work/log" 2>&1 &
    wrapper=$!
    wait_port "$port"
    url="http://127.0.0.1:$port/"
  fi
  for _ in $(seq 100); do [ -s "$work/usage.pid" ] && break; sleep 0.05; done
  target_pid=$(cat "$work/usage.pid")
}

# stop NAME: delivers what the target holds and waits for it to exit.
stop() {
  if [ "$1" = firehosed ]; then
    curl -sf -X POST "${url%/records}/flush" > /dev/null || echo "  (flush failed)"
  fi
  kill -TERM "$target_pid"
  wait "$wrapper" 2>/dev/null || true
  target_pid=
}

# throughput NAME [MODE]: the wrk run, then the drain; one result line.
throughput() {
  local name=$1 mode=${2:-} bucket label
  bucket="b-$(date +%s%N)"
  label=$name${mode:+ ($mode)}
  mkdir -p "$work/s3/$bucket"
  rm -f "$work/usage" "$work/usage.pid"
  start "$name" "$bucket" "$work/state-$bucket" "$mode"
  local t0 t1
  t0=$(date +%s.%N)
  wrk -t2 -c16 -d"${seconds}s" --latency -s bench/peers/post.lua "$url" > "$work/wrk.out"
  stop "$name"
  t1=$(date +%s.%N)
  python3 - "$label" "$t0" "$t1" "$seconds" "$record_bytes" "$work/wrk.out" "$work/usage" \
    "$(python3 bench/peers/count_objects.py "$work/s3/$bucket")" <<'PY'
import re, sys
label, t0, t1, secs, rec_bytes, wrk_out, usage, counted = sys.argv[1:]
w = dict(re.findall(r"(\w+)=(\d+)", [l for l in open(wrk_out) if l.startswith("wrk:")][0]))
u = dict(re.findall(r"(\w+)=([\d.]+)", open(usage).read()))
c = dict(re.findall(r"(\w+)=(\d+)", counted))
acked = (int(w["requests"]) - int(w["failed"])) * 100
delivered = int(c["records"])
gb = delivered * float(rec_bytes) / 1e9
cpu = float(u["cpu_s"])
print(f"{label:24} acknowledged {acked / float(secs):>9,.0f}/s  delivered {delivered / (float(t1) - float(t0)):>9,.0f}/s"
      f" ({delivered:,} of {acked:,}; {c['objects']} objects)  CPU {cpu / gb if gb else 0:5.1f} s/GB"
      f"  peak RSS {float(u['peak_rss_mib']):7.1f} MiB  p99 {int(w['p99_us']) / 1000:7.1f} ms"
      f"  (rejected {w['failed']}, timeouts {w['timeouts']})")
PY
}

# crash NAME [MODE]: acknowledged records missing after a kill -9 and a restart.
crash() {
  local name=$1 mode=${2:-} bucket label state
  bucket="c-$(date +%s%N)"
  label=$name${mode:+ ($mode)}
  state="$work/state-$bucket"
  mkdir -p "$work/s3/$bucket"
  rm -f "$work/usage" "$work/usage.pid"
  start "$name" "$bucket" "$state" "$mode"
  python3 bench/peers/crash_load.py "$url" "$target_pid" 10 "$work/acked" > /dev/null
  wait "$wrapper" 2>/dev/null || true
  rm -f "$work/usage" "$work/usage.pid"
  start "$name" "$bucket" "$state" "$mode"
  sleep 5
  stop "$name"
  printf '%-24s kill -9 after 10 s, restart, stop: %s\n' "$label" \
    "$(python3 bench/peers/count_objects.py "$work/s3/$bucket" --missing "$work/acked")"
}

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; ${seconds} s of wrk (2 threads, 16 connections) per row; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${FLUENT_BIT:-}" ]; then
  echo "FLUENT_BIT is not set: firehosed alone (bench/README.md: building Fluent Bit)"
else
  echo "Fluent Bit: $("$FLUENT_BIT" --version | head -1)"
fi
throughput firehosed
if [ -n "${FLUENT_BIT:-}" ]; then
  throughput fluent-bit memory
  throughput fluent-bit filesystem
fi
crash firehosed
if [ -n "${FLUENT_BIT:-}" ]; then
  crash fluent-bit memory
  crash fluent-bit filesystem
fi
