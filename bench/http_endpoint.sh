#!/usr/bin/env bash
# HTTP endpoint delivery: N ~1 KiB JSON records into firehosed by plain ingest (fsync'd spool,
# 4 connections), then a flush, delivered to a local receiver (bench/http_endpoint.py,
# answering as AWS's specification says) in 5 MiB requests, with content_encoding NONE and
# GZIP. Two receivers: `decode` parses every request (JSON, base64) as a real one would;
# `count` only gunzips and counts, so that firehosed's own cost shows. In the same run, for
# each: the receiver's ceiling, the same records in 5 MiB requests built ahead and POSTed one
# at a time by Python (what one destination can at best get through that receiver).
# usage: bench/http_endpoint.sh [records=300000]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-300000}
python=${PYTHON:-python3}
cargo build --release --quiet --bin firehosed
bench_work http-endpoint
receiver=
trap 'kill $pid $receiver 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
start_receiver() {
  [ -n "$receiver" ] && kill $receiver && wait $receiver 2>/dev/null || true
  rm -f "$work/port"
  "$python" bench/http_endpoint.py receiver "$work/port" "$1" &
  receiver=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
  port=$(cat "$work/port")
}
stats() { curl -s "http://127.0.0.1:$port/stats"; }

run() {
  local encoding=$1
  rm -rf "$work/state" "$work/backup"
  {
    load_config_head
    cat <<YAML
    destinations:
      - http_endpoint: {url: "http://127.0.0.1:$port/", content_encoding: $encoding}
        s3_backup: {directory: $work/backup}
        buffering: {size_mib: 5, interval_seconds: 60}
YAML
  } > "$work/c.yaml"
  start_firehosed "$work/c.yaml" "$work"
  local before after
  before=$(stats)
  printf '%-34s ' "firehosed, $encoding, $mode"
  "$python" bench/http_endpoint.py load "$url" "$n"
  after=$(stats)
  printf '%-34s %s; peak RSS %s\n' "" "receiver: $before -> $after" \
    "$(awk '/VmHWM/ {print int($2/1024) " MiB"}' /proc/$pid/status)"
  kill $pid; wait $pid 2>/dev/null || true
}

echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; $n records of ~1 KiB"
for mode in decode count; do
  start_receiver $mode
  run NONE
  run GZIP
  for gz in no yes; do
    printf '%-34s ' "receiver ceiling, gzip=$gz, $mode"
    "$python" bench/http_endpoint.py ceiling "http://127.0.0.1:$port/" "$n" "$gz"
  done
done
