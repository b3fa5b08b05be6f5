#!/usr/bin/env bash
# The acknowledgement path's CPU: the release firehosed (fsync spool, one UNCOMPRESSED
# directory destination with 128 MiB buffers, so past the spool records are only copied) takes
# SECONDS of examples/loadgen.rs (PutRecordBatch of 500 x 1 KiB JSON records, 4 connections)
# under `perf record -e cpu-clock` (software clock: this machine's perf has no hardware
# counters). Prints the daemon's CPU-seconds per GB acknowledged (its utime + stime over the
# load, from /proc) and the top functions of the profile. FIREHOSED_BIN compares two builds.
# With TOOL=callgrind the daemon runs under valgrind instead (about 50x slower, so far fewer
# records): instructions per GB acknowledged, which repeat run to run whatever else the machine
# does, and the top functions by instructions (CG_OUT=file keeps the profile).
# SIGV4=1 signs every request (and the daemon verifies it).
# usage: [TOOL=callgrind] [SIGV4=1] [CG_OUT=file] [FIREHOSED_BIN=path] bench/ack_profile.sh [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-10}
command -v perf > /dev/null || { echo "perf is missing (apt-get install linux-perf)"; exit 1; }
if [ -n "${FIREHOSED_BIN:-}" ]; then cargo build --release --quiet --example loadgen
else cargo build --release --quiet --bin firehosed --example loadgen; fi
bench_work ack-profile
# SIGV4=1: every request signed, and verified by the daemon against a credentials file.
signing=()
{
  load_config_head
  cat <<YAML
    destinations:
      - directory: $work/out
        buffering: {size_mib: 128, interval_seconds: 900}
YAML
  if [ -n "${SIGV4:-}" ]; then
    bench_auth
    signing=(--sigv4 AKIDBENCH:bench-secret)
  fi
} > "$work/c.yaml"
if [ "${TOOL:-perf}" = callgrind ]; then
  : > "$work/stdout"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "${FIREHOSED_BIN:-target/release/firehosed}" run --config "$work/c.yaml" > "$work/stdout" 2> "$work/log" &
  pid=$!
  for _ in $(seq 600); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/.*listening on //p' "$work/stdout")
  target/release/examples/loadgen "$url" load --connections 4 --seconds "$seconds" "${signing[@]}" > "$work/loadgen.out"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  records=$(sed -n 's/.* records=\([0-9]*\) .*/\1/p' "$work/loadgen.out")
  total=$(callgrind_annotate "$work/cg.out" 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
  echo "callgrind: $records records acknowledged (with start-up and shutdown): $(python3 -c "import sys; print(f'{int(sys.argv[1]) / (int(sys.argv[2]) * 1024 / 1e9) / 1e9:.1f}')" "$total" "$records") G instructions per GB"
  # CG_OUT=file keeps the profile (callgrind_annotate --tree=caller file: who calls what).
  [ -z "${CG_OUT:-}" ] || cp "$work/cg.out" "$CG_OUT"
  callgrind_annotate "$work/cg.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -25
  exit 0
fi
start_firehosed "$work/c.yaml" "$work"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
echo "firehosed ${FIREHOSED_BIN:-$(git rev-parse --short HEAD 2>/dev/null)} on $(nproc) cores; $seconds s of load; load average $(cut -d' ' -f1-3 /proc/loadavg)"
perf record -e cpu-clock -F 999 -p "$pid" -o "$work/perf.data" > /dev/null 2>&1 &
perfpid=$!
sleep 0.5
before=$(cpu)
target/release/examples/loadgen "$url" load --connections 4 --seconds "$seconds" "${signing[@]}" > "$work/loadgen.out"
after=$(cpu)
kill -INT $perfpid; wait $perfpid 2>/dev/null || true
grep -E "^(acknowledged|connections)" "$work/loadgen.out"
records=$(sed -n 's/.* records=\([0-9]*\) .*/\1/p' "$work/loadgen.out")
# The load's records are 1 KiB (loadgen --size 1024).
python3 -c "import sys; cpu, gb = (int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]), int(sys.argv[4]) * 1024 / 1e9; print(f'daemon CPU: {cpu:.2f} s for {gb:.2f} GB acknowledged (and flushed) = {cpu / gb:.2f} CPU-s/GB')" "$before" "$after" "$hz" "$records"
echo "top functions (share of the daemon's samples):"
perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -25
