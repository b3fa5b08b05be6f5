#!/usr/bin/env bash
# Connections cannot exhaust the daemon: 5,000 idle connections, 5,000 with half a request
# head and 1,000 announcing 8 MiB bodies and sending 7 bytes, held for 70 s against the release
# firehosed (server defaults but max_connections, raised so that all 11,000 are held and the
# timeouts, not the cap, close them), while a valid request is timed every 0.2 s. Prints the
# valid calls' latency, what the server closed and when, and the daemon's RSS during and
# after. FIREHOSED_BIN=path runs another build (one without the `server` key gets none).
# usage: bench/connections.sh [seconds=70]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
seconds=${1:-70}
[ -n "${FIREHOSED_BIN:-}" ] || cargo build --release --quiet --bin firehosed
ulimit -n "$(ulimit -Hn)"  # 11,000 held connections need that many descriptors on each side
bench_work connections
server="server: {max_connections: 20000}"
[ -n "${NO_SERVER_KEY:-}" ] && server=""
cat > "$work/c.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $work/state
$server
delivery_streams:
  - name: load
    source: {direct_put: {}}
    destinations: [{directory: $work/out}]
YAML
start_firehosed "$work/c.yaml" "$work"
python3 bench/connections.py "$url" "$pid" --seconds "$seconds"
