#!/usr/bin/env bash
# Builds the firehosed OCI image (packaging/container/Containerfile) with podman or buildah:
# the binary stripped, the shared libraries it links (as ldd lists them), CA certificates, the
# default configuration, /var/lib/firehosed owned by the image's user (65532; COPY --chown, so
# the build needs no root).
# usage: scripts/build-image.sh [--binary PATH] [--tag TAG]   (default: target/release/firehosed,
#        firehosed:<version>); prints the tag.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
binary="" tag=""
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  (cd "$here" && cargo build --release --quiet --bin firehosed)
  binary="$here/target/release/firehosed"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n1)
tag=${tag:-firehosed:$version}
ctx=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/bin" "$root/etc/firehosed" "$root/etc/ssl/certs" "$root/tmp" \
  "$ctx/state/state" "$ctx/state/s3"
objcopy --strip-debug --strip-unneeded "$binary" "$root/usr/bin/firehosed"
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
install -m 0644 "$here/packaging/container/firehosed.yaml" "$root/etc/firehosed/firehosed.yaml"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0::/:/sbin/nologin\nfirehosed:x:65532:65532::/var/lib/firehosed:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nfirehosed:x:65532:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
cp "$here/packaging/container/Containerfile" "$ctx/Containerfile"
if command -v podman >/dev/null; then
  podman build --quiet --tag "$tag" "$ctx" >&2
else
  buildah bud --quiet --tag "$tag" "$ctx" >&2
fi
echo "$tag"
