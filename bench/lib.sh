# Shared by the bench/*.sh load runs: start the release firehosed (or $FIREHOSED_BIN, to compare
# two builds in one run) on a config and wait until it listens. Sets $pid and $url.
# Usage: start_firehosed CONFIG WORKDIR
start_firehosed() {
  local config=$1 work=$2
  : > "$work/stdout"
  "${FIREHOSED_BIN:-target/release/firehosed}" run --config "$config" > "$work/stdout" 2> "$work/log" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/.*listening on //p' "$work/stdout")
}

# bench_work NAME: a scratch folder in $work, removed on exit with the daemon ($pid) stopped.
bench_work() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-$1.XXXXXX")
  pid=
  # The daemon drains on SIGTERM: wait for it, or it writes into the folder being removed.
  trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
}

# load_config_head: the load runs' configuration up to the stream's keys: state in $work, spool
# fsync on, one Direct PUT stream "load". The caller appends processing and destinations.
load_config_head() {
  cat <<YAML
listen: 127.0.0.1:0
state_dir: $work/state
spool: {max_size_mib: 4096, fsync: true}
delivery_streams:
  - name: load
    source: {direct_put: {}}
YAML
}
