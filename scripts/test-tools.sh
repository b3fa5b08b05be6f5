#!/usr/bin/env bash
# Installs what the end-to-end tests need, at pinned versions, into the tools cache:
#   $FIREHOSED_TOOLS (default ~/.cache/firehosed-tools)/venv  moto server, boto3, AWS CLI, cramjam
# Idempotent: does nothing when the cache already holds these exact versions.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
mkdir -p "$tools"

req="$here/tests/requirements.txt"
stamp="$tools/venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$tools/venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-tools: installing Python tools into $tools/venv" >&2
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
# s3s-fs: a fast S3 server that keeps its data on disk (outage tests restart it; benchmarks).
s3s_version=0.14.1
if [ "$(cat "$tools/s3s-fs/.version" 2>/dev/null)" != "$s3s_version" ]; then
  echo "test-tools: installing s3s-fs $s3s_version into $tools/s3s-fs (about 2 minutes)" >&2
  rm -rf "$tools/s3s-fs"
  cargo install --quiet --locked --root "$tools/s3s-fs" --features binary "s3s-fs@$s3s_version"
  echo "$s3s_version" > "$tools/s3s-fs/.version"
fi
# kinesalite: a Kinesis server with correct split/merge routing and shard ends.
kinesalite_version=3.3.3
if [ "$(cat "$tools/node/.version" 2>/dev/null)" != "$kinesalite_version" ]; then
  echo "test-tools: installing kinesalite $kinesalite_version into $tools/node" >&2
  rm -rf "$tools/node"
  mkdir -p "$tools/node"
  npm install --prefix "$tools/node" --no-audit --no-fund --silent "kinesalite@$kinesalite_version"
  echo "$kinesalite_version" > "$tools/node/.version"
fi

# The AssemblyScript transform of examples/wasm (AssemblyScript pinned in its package-lock.json),
# built once into the cache; tests/transform.rs runs it.
"$(dirname "$0")/build-wasm-example.sh" > /dev/null
echo "$tools"
