#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz 0.13.2 on the nightly toolchain, libFuzzer with
# AddressSanitizer) for SECONDS each, two at a time, then prints one markdown row per target:
# executions, executions/s, coverage (edges) and features, corpus size, peak RSS, findings.
# A hang is an input that runs over 10 s; memory is capped at 2 GiB RSS and 512 MiB per malloc.
# Working corpora go to fuzz/corpus/ (not committed); fuzz/seeds/ is read as well.
# usage: scripts/fuzz.sh [seconds=600] [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(api_request plain_split sigv4 config_yaml kpl deaggregate parquet jq deflate_join)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
cargo +nightly fuzz build >&2
mkdir -p fuzz/logs
run() {
  local t=$1
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 > "fuzz/logs/$t.log" 2>&1 || true
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [ -n "${targets[i+1]:-}" ] && run "${targets[i+1]}" &
  wait
done
echo "| target | executions | exec/s | coverage (edges) | features | corpus | peak RSS | crashes / hangs / OOM |"
echo "|---|---|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
  log="fuzz/logs/$t.log"
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  findings=$(find "fuzz/artifacts/$t" -type f | wc -l)
  echo "| \`$t\` | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $cov | $ft | $corp | $(stat peak_rss_mb) MB | $findings |"
done
