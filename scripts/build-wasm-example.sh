#!/usr/bin/env bash
# Builds the AssemblyScript transform of examples/wasm into the tools cache and prints the path
# of its transform.wasm on stdout (npm's output goes to stderr):
#   ${FIREHOSED_TOOLS:-~/.cache/firehosed-tools}/wasm-example/build/transform.wasm
# Copies the example's sources there, then npm ci && npm run build (about 10 s with a warm npm
# cache). Does nothing when the cache already holds a build of these exact sources; safe to run
# concurrently (flock). Needs Node.js 20+ and npm.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src="$here/examples/wasm"
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
dest="$tools/wasm-example"
wasm="$dest/build/transform.wasm"
mkdir -p "$tools"

if command -v flock >/dev/null; then
  exec 9>"$tools/.wasm-example.lock"
  flock 9
fi

files=(package.json package-lock.json)
while IFS= read -r f; do files+=("$f"); done < <(cd "$src" && find assembly -type f | LC_ALL=C sort)
want=$(cd "$src" && sha256sum "${files[@]}" | sha256sum | cut -d' ' -f1)
stamp="$dest/.sources.sha256"
if [ -f "$wasm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$wasm"
  exit 0
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "build-wasm-example: AssemblyScript needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

echo "build-wasm-example: building examples/wasm into $dest" >&2
mkdir -p "$dest"
rm -rf "$dest/assembly" "$dest/build" "$stamp"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
cp -R "$src/assembly" "$dest/assembly"
(
  cd "$dest"
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
) >&2
[ -f "$wasm" ] || { echo "build-wasm-example: npm run build did not produce $wasm" >&2; exit 1; }
echo "$want" > "$stamp"
echo "$wasm"
