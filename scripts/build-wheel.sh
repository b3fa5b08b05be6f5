#!/usr/bin/env bash
# Writes the firehosed wheel for this platform: the release binary, stripped, with the Python
# helpers of python/ (firehosed.testing, the pytest plugin). `pip install` takes it on a machine
# without Rust (same OS and architecture, glibc at least the wheel's manylinux tag).
# usage: scripts/build-wheel.sh [OUT_DIR]     (default target/wheels; prints the wheel's path)
# maturin (pinned) comes from the test tools' venv when it is there, else a venv in target/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/target/wheels}
maturin="${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}/venv/bin/maturin"
if [ ! -x "$maturin" ]; then
  venv="$here/target/maturin-venv"
  [ -x "$venv/bin/maturin" ] || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check maturin==1.16.0
  }
  maturin="$venv/bin/maturin"
fi
mkdir -p "$out"
(cd "$here/python" && "$maturin" build --quiet --release --out "$out") >&2
ls -t "$out"/firehosed-*.whl | head -n1
