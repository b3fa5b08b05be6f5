#!/usr/bin/env bash
# The Python package's tests (scripts/test.sh runs this after the Rust suite): builds the wheel
# from the debug build the suite already made (maturin, profile dev: only the binary is linked
# again, stripped), installs it into a fresh venv with nothing else but the pinned test
# requirements (offline, from the tools cache's wheelhouse), then runs the example suite
# (examples/pytest, on two pytest-xdist workers) and the package's own tests (python/tests).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tools=${FIREHOSED_TOOLS:-$("$here/scripts/test-tools.sh")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$here/python" && "$tools/venv/bin/maturin" build --quiet --profile dev --out "$work/wheels") >&2
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
  --find-links "$tools/wheelhouse" -r "$here/tests/python-package-requirements.txt" "$work"/wheels/firehosed-*.whl
ls -l "$work"/wheels/ >&2
# The suite as a user runs it: from its folder, the plugin found through its entry point.
(cd "$here/examples/pytest" && "$work/venv/bin/python" -m pytest -p no:cacheprovider -n 2 -q)
(cd "$here/python/tests" && "$work/venv/bin/python" -m pytest -p no:cacheprovider -q)
