#!/usr/bin/env bash
# Runs every test: installs the pinned test tools (scripts/test-tools.sh), then the whole
# suite (unit and end-to-end) with cargo-nextest when it is installed, else cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
FIREHOSED_TOOLS=$(scripts/test-tools.sh)
export FIREHOSED_TOOLS
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi
