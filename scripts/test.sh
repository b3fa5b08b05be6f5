#!/usr/bin/env bash
# Runs every test: installs the pinned test tools (scripts/test-tools.sh), then the whole
# suite (unit and end-to-end) with cargo-nextest when it is installed, else cargo test, then
# the Python package's tests and the example pytest suite (scripts/test-python-package.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
FIREHOSED_TOOLS=$(scripts/test-tools.sh)
export FIREHOSED_TOOLS
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@" || status=$?
else
  cargo test --workspace --all-targets --no-fail-fast "$@" || status=$?
fi
# The Python package (its wheel built from the debug build above) and the example pytest suite;
# a focused run (arguments given) leaves them out.
if [ $# -eq 0 ]; then
  scripts/test-python-package.sh || status=$?
fi
exit "$status"
