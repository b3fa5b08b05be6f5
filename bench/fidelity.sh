#!/usr/bin/env bash
# The same boto3 control-plane scenario (tests/py/aws_fidelity.py) against firehosed and
# against moto's Firehose (what test suites use instead), side by side: each check of AWS's
# documented behaviour, which endpoint meets it, and each endpoint's responses that fall
# outside AWS's own service model (the pinned botocore's output shapes). Both endpoints get
# an S3 bucket from one moto server. Needs the test tools (scripts/test-tools.sh).
# usage: bench/fidelity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
tools=${FIREHOSED_TOOLS:-$HOME/.cache/firehosed-tools}
py=$tools/venv/bin/python
[ -n "${FIREHOSED_BIN:-}" ] || cargo build --release --quiet --bin firehosed
bench_work fidelity
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto=$!
trap 'kill $pid $moto 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
moto_url="http://127.0.0.1:$port"
"$py" - "$moto_url" <<'PY'
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
             aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket="lake")
PY
cat > "$work/f.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $work/state
aws: {region: us-east-1, account_id: '123456789012', endpoint_url: '$moto_url', force_path_style: true}
lambda_functions:
  echo-event:
    subprocess: {command: ['$py', '$PWD/runners/python/firehosed_runner.py', 'echo_event.handler'], working_directory: '$PWD/tests/transforms'}
delivery_streams: []
YAML
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
start_firehosed "$work/f.yaml" "$work"
"$py" tests/py/aws_fidelity.py "$url" lake > "$work/firehosed.json"
"$py" tests/py/aws_fidelity.py "$moto_url" lake > "$work/moto.json"
"$py" - "$work/firehosed.json" "$work/moto.json" <<'PY'
import json, sys
f, m = (json.load(open(p)) for p in sys.argv[1:3])
mark = lambda c: "yes" if c and c["ok"] else "**no**"
print("| AWS's documented behaviour | firehosed | moto |")
print("|---|---|---|")
for name in f["checks"]:
    print(f"| {name} | {mark(f['checks'].get(name))} | {mark(m['checks'].get(name))} |")
for label, r in (("firehosed", f), ("moto", m)):
    ok = sum(1 for c in r["checks"].values() if c["ok"])
    distinct = sorted(set(r["model_violations"]))
    print(f"\n{label}: {ok} of {len(f['checks'])} as AWS; {len(r['model_violations'])} response members outside AWS's model ({len(distinct)} distinct)")
    for v in distinct[:15]:
        print(f"  - {v}")
print("\nwhere they differ (expected -> got):")
for label, r in (("firehosed", f), ("moto", m)):
    for name, c in r["checks"].items():
        if not c["ok"]:
            print(f"  {label}: {name}: {json.dumps(c['expected'])} -> {json.dumps(c['got'])}")
PY
