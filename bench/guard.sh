#!/usr/bin/env bash
# The regression guard (issue 38): a short profile, under two minutes on the project's 2-core
# machine, that prints the speed ratios the third pass set as targets, each next to its target
# and to the figure BENCHMARKS.md recorded. Run it before a release, on a quiet machine; it is
# not part of CI's pass/fail (timings on shared machines are noisy: a ratio under its target
# here is a reason to run the full benchmark named beside it, not a verdict).
#   1. JSON -> Parquet converter, all cores / pyarrow on all cores    (bench/parquet.sh)
#   2. Parquet backlog drain, two cores / one core                   (bench/conversion_backlog.sh)
#   3. UNCOMPRESSED Direct PUT acknowledged, records/s               (bench/load.sh)
#      against BASELINE_BIN (another build, run back to back) if given, else the recorded figure.
# usage: [BASELINE_BIN=path/to/old/firehosed] bench/guard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(scripts/test-tools.sh)
py="$tools/venv/bin/python"
cargo build --release --quiet --bin firehosed --example json2parquet --example loadgen
start=$(date +%s)
ratio() { "$py" -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
row() { printf "%-44s %8s %8s %10s\n" "$@"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-guard.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "firehosed $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" bench/parquet/make_events.py "$work/events.ndjson" "$work/schema.json" 100000 > /dev/null
mbs() { "$@" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["mb_per_s"])'; }
best() { "$py" -c "import sys; print(max(map(float, sys.argv[1:])))" "$@"; }
fh=$(best "$(mbs target/release/examples/json2parquet "$work/schema.json" "$work/events.ndjson" "$work/fh.parquet")" \
  "$(mbs target/release/examples/json2parquet "$work/schema.json" "$work/events.ndjson" "$work/fh.parquet")")
pa=$(best "$(mbs "$py" bench/parquet/pyarrow_convert.py "$work/events.ndjson" "$work/pa.parquet" all parquet)" \
  "$(mbs "$py" bench/parquet/pyarrow_convert.py "$work/events.ndjson" "$work/pa.parquet" all parquet)")

drain() { PIN=$1 bench/conversion_backlog.sh 3 2>&1 | sed -n 's/.* = \([0-9.,]*\) MB\/s.*/\1/p' | tr -d ,; }
one=$(drain 0); two=$(drain 0,1)

ack() { COMPRESSION=UNCOMPRESSED NO_PEERS=1 FIREHOSED_BIN=$1 bench/load.sh 4 8 2>&1 | sed -n 's/^acknowledged: records_per_s=\([0-9]*\).*p99_ms=\([0-9.]*\).*/\1 \2/p'; }
read -r now p99 <<< "$(ack target/release/firehosed)"
if [ -n "${BASELINE_BIN:-}" ]; then
  read -r base base_p99 <<< "$(ack "$BASELINE_BIN")"
  against="$BASELINE_BIN, p99 $base_p99 ms"
else
  # BENCHMARKS.md, "The acknowledgement path": the build before issue 38 on a quiet day.
  base=222000; against="recorded 222k records/s (the build before issue 38)"
fi

echo
row "ratio" "now" "target" "recorded"
row "Parquet converter / pyarrow, all cores" "$(ratio "$fh" "$pa")" "1.30" "1.41"
row "Parquet backlog drain, 2 cores / 1 core" "$(ratio "$two" "$one")" "1.70" "1.50-1.89"
row "UNCOMPRESSED acknowledged / baseline" "$(ratio "$now" "$base")" "1.35" "1.38-1.51"
echo
echo "converter $fh MB/s, pyarrow $pa MB/s; drain $one MB/s on one core, $two on two;"
echo "acknowledged $now records/s (p99 $p99 ms) against $against"
echo "guard took $(( $(date +%s) - start )) s"
