#!/usr/bin/env bash
# The Python package's figures (BENCHMARKS.md, "The Python package"): the wheel's size, start to
# ready and a whole test's time for firehosed next to moto's server and mock_aws, one run.
# usage: bench/python_start.sh [RUNS]   (default 20; builds the release wheel first)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tools=${FIREHOSED_TOOLS:-$("$here/scripts/test-tools.sh")}
wheel=$("$here/scripts/build-wheel.sh")
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-index --find-links "$tools/wheelhouse" \
  -r "$here/tests/python-package-requirements.txt" "$wheel"
echo "wheel: $(basename "$wheel"), $(du -m "$wheel" | cut -f1) MB; installed binary $(du -m "$venv/bin/firehosed" | cut -f1) MB"
echo "$(nproc) cores, $(uname -r); $("$venv/bin/firehosed" --version)"
"$venv/bin/python" "$here/bench/python_start.py" "${1:-20}"
