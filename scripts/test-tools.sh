#!/usr/bin/env bash
# Installs what the end-to-end tests need, at pinned versions, into the tools cache:
#   $FIREHOSED_TOOLS (default ~/.cache/firehosed-tools)/venv  moto server, boto3, AWS CLI, cramjam, maturin
#   .../wheelhouse (what the Python package's tests install into a fresh venv)
#   .../s3s-fs, .../node (kinesalite), .../kinesis-mock, .../js-sdk (@aws-sdk/client-firehose), .../debian-bookworm (a container root), the WASM example
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
# The wheelhouse the Python package's tests install from into a fresh venv (offline, fast).
pkg_req="$here/tests/python-package-requirements.txt"
pkg_stamp="$tools/wheelhouse/.requirements.sha256"
pkg_want=$(sha256sum "$pkg_req" | cut -d' ' -f1)
if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$pkg_want" ]; then
  echo "test-tools: downloading the Python package tests' wheels into $tools/wheelhouse" >&2
  rm -rf "$tools/wheelhouse"
  "$tools/venv/bin/pip" download --quiet --disable-pip-version-check --dest "$tools/wheelhouse" -r "$pkg_req"
  echo "$pkg_want" > "$pkg_stamp"
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

# kinesis-mock (npm kinesis-local): a Kinesis server with enhanced fan-out (SubscribeToShard),
# for tests/e2e/kinesis_fan_out.rs and the subscription contract.
kinesis_mock_version=0.6.2
if [ "$(cat "$tools/kinesis-mock/.version" 2>/dev/null)" != "$kinesis_mock_version" ]; then
  echo "test-tools: installing kinesis-local $kinesis_mock_version into $tools/kinesis-mock" >&2
  rm -rf "$tools/kinesis-mock"
  mkdir -p "$tools/kinesis-mock"
  npm install --prefix "$tools/kinesis-mock" --no-audit --no-fund --silent "kinesis-local@$kinesis_mock_version"
  echo "$kinesis_mock_version" > "$tools/kinesis-mock/.version"
fi

# The AWS SDK for JavaScript v3's Firehose client: tests/e2e/security.rs signs with it.
js_sdk_version=3.1169.0
if [ "$(cat "$tools/js-sdk/.version" 2>/dev/null)" != "$js_sdk_version" ]; then
  echo "test-tools: installing @aws-sdk/client-firehose $js_sdk_version into $tools/js-sdk" >&2
  rm -rf "$tools/js-sdk"
  mkdir -p "$tools/js-sdk"
  npm install --prefix "$tools/js-sdk" --no-audit --no-fund --silent "@aws-sdk/client-firehose@$js_sdk_version"
  echo "$js_sdk_version" > "$tools/js-sdk/.version"
fi

# A Debian bookworm root file system for the test that boots systemd in a container and runs the
# packaged service under it (tests/e2e/systemd_container.rs): systemd-nspawn and debootstrap from
# Debian's packages, the tree built once into the cache (about 1 minute, 260 MB). Needs root;
# without it the test says how to skip it.
container="$tools/debian-bookworm"
if [ ! -f "$container/.complete" ]; then
  if [ "$(id -u)" = 0 ]; then
    if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
      echo "test-tools: installing systemd-container and debootstrap (Debian packages)" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq systemd-container debootstrap >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq systemd-container debootstrap >/dev/null; }
    fi
    echo "test-tools: building a Debian bookworm container root into $container" >&2
    rm -rf "$container"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,ca-certificates \
      bookworm "$container" http://deb.debian.org/debian >"$tools/debootstrap.log" 2>&1 \
      || { tail -n 20 "$tools/debootstrap.log" >&2; exit 1; }
    touch "$container/.complete"
  else
    echo "test-tools: not root: no container root for tests/e2e/systemd_container.rs" >&2
  fi
fi

# podman and runc (Debian's packages) for the test that builds and runs the OCI image
# (tests/e2e/container.rs). Needs root; without it the test says how to skip it.
if [ "$(id -u)" = 0 ] && { ! command -v podman >/dev/null || ! command -v runc >/dev/null; }; then
  echo "test-tools: installing podman and runc (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq podman runc >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq podman runc >/dev/null; }
fi

# The AssemblyScript transform of examples/wasm (AssemblyScript pinned in its package-lock.json),
# built once into the cache; tests/e2e/transform.rs runs it.
"$(dirname "$0")/build-wasm-example.sh" > /dev/null
echo "$tools"
