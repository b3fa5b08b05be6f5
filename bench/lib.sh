# Shared by the bench/*.sh load runs: start the release firehosed on a config and wait until it
# listens. Sets $pid and $url. Usage: start_firehosed CONFIG WORKDIR
start_firehosed() {
  local config=$1 work=$2
  : > "$work/stdout"
  target/release/firehosed run --config "$config" > "$work/stdout" 2> "$work/log" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$work/stdout" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/.*listening on //p' "$work/stdout")
}
