#!/usr/bin/env bash
# PutRecordBatch with SigV4 verification and TLS on, next to both off, in one run: the release
# firehosed on the load config of bench/load.sh (spool fsync on, GZIP directory destination),
# fed by examples/loadgen.rs (500 x 1 KiB records per call, keep-alive connections), which
# signs each request as the AWS SDKs do and speaks TLS (rustls) when the daemon does. The
# variants alternate, ROUNDS times each, so that the machine's load falls on all alike.
# FIREHOSED_BIN runs another build, COMPRESSION another codec (UNCOMPRESSED: the acknowledgement
# path alone), VARIANTS a subset ("plain sigv4").
# usage: [FIREHOSED_BIN=..] [COMPRESSION=..] [VARIANTS=..] bench/secure_load.sh [connections=4] [seconds=15] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
connections=${1:-4}
seconds=${2:-15}
rounds=${3:-2}
if [ -n "${FIREHOSED_BIN:-}" ]; then cargo build --release --quiet --example loadgen
else cargo build --release --quiet --bin firehosed --example loadgen; fi
bench_work secure
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
"$tools/venv/bin/python" tests/py/sigv4_boto3.py certs "$work" server
variant_config() {  # plain | sigv4 | tls | both
  load_config_head | sed "s|^state_dir: .*|state_dir: $work/state-$1|"
  cat <<YAML
    destinations:
      - directory: $work/out-$1
        compression: ${COMPRESSION:-GZIP}
        buffering: {size_mib: 64, interval_seconds: 60}
YAML
  case $1 in sigv4|both) bench_auth ;; esac
  case $1 in tls|both) echo "tls: {cert_file: $work/server.crt, key_file: $work/server.key}" ;; esac
}
echo "firehosed ${FIREHOSED_BIN:-$(git rev-parse --short HEAD 2>/dev/null)} on $(nproc) cores; fsync on; $connections connections, ${seconds} s per run"
for round in $(seq "$rounds"); do
  for v in ${VARIANTS:-plain both sigv4 tls}; do
    variant_config "$v" > "$work/$v.yaml"
    start_firehosed "$work/$v.yaml" "$work"
    extra=()
    case $v in sigv4|both) extra+=(--sigv4 AKIDBENCH:bench-secret) ;; esac
    case $v in tls|both) extra+=(--ca "$work/ca.pem") ;; esac
    printf "round %s %-6s " "$round" "$v"
    target/release/examples/loadgen "$url" load --connections "$connections" --seconds "$seconds" \
      --pid "$pid" "${extra[@]}" | sed -n 's/^acknowledged: //p'
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$work/state-$v" "$work/out-$v"
  done
done
