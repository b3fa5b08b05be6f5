#!/usr/bin/env bash
# The long chaos profile (issue 37): tests/e2e/chaos with one seed for SECONDS of faults (default
# an hour), a fault every GAP_MS on average, then the drain and the invariant checker. The
# report (faults by kind, records acknowledged / lost / duplicated per destination, peak and
# final RSS, open files, threads and state_dir size per daemon) is printed and appended to
# REPORT. The same seed replays the same schedule. Runs the debug test build (the one CI
# checks); needs the test tools (scripts/test-tools.sh).
# usage: bench/chaos.sh [SEED=random] [SECONDS=3600] [REPORT=chaos-report.md] [GAP_MS=5000]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-$(( (RANDOM << 15) | RANDOM ))}
seconds=${2:-3600}
report=${3:-chaos-report.md}
gap=${4:-5000}
export FIREHOSED_TOOLS=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
echo "chaos: seed $seed, $seconds s of faults, one every ${gap} ms on average; report -> $report"
FIREHOSED_CHAOS_SEED=$seed FIREHOSED_CHAOS_SECONDS=$seconds FIREHOSED_CHAOS_GAP_MS=$gap \
  FIREHOSED_CHAOS_REPORT=$(realpath -m "$report") \
  cargo nextest run --all-targets --run-ignored only --no-capture \
  -E 'test(=chaos::chaos_from_the_environment)'
