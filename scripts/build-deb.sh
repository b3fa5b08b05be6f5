#!/usr/bin/env bash
# Builds firehosed_<version>_<arch>.deb: the binary, the systemd unit, a default config and
# environment file under /etc/firehosed (conffiles), the transform runners, the docs; the
# postinst creates the `firehosed` system user. Needs dpkg-deb (Debian, Ubuntu) and binutils.
# The binary is stripped (the release build keeps line tables: 399 MB, stripped about 52 MB);
# its debug information goes into firehosed-dbgsym_<version>_<arch>.deb beside it, as
# /usr/lib/debug/.build-id/NN/REST.debug (Debian's -dbgsym layout: gdb and perf find it).
# Prints the main package's path on stdout, the -dbgsym's on stderr.
# usage: scripts/build-deb.sh [--binary PATH] [--out DIR]
#   default binary: target/release/firehosed (built here when missing)
#   DEB_COMPRESSION=none|gzip|xz (default xz) chooses dpkg-deb's compressor.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
binary="" out="$here/target/deb"
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  (cd "$here" && cargo build --release --quiet --bin firehosed)
  binary="$here/target/release/firehosed"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
pkg=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-deb.XXXXXX")
dbg=$(mktemp -d "${TMPDIR:-/tmp}/firehosed-dbgsym.XXXXXX")
trap 'rm -rf "$pkg" "$dbg"' EXIT
build_id=$(readelf -n "$binary" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p' | head -n1)
if [ -z "$build_id" ]; then echo "build-deb: $binary has no GNU build ID" >&2; exit 1; fi
debug_file="$dbg/usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug"
mkdir -p "$(dirname "$debug_file")" "$pkg/usr/bin"
objcopy --only-keep-debug --compress-debug-sections "$binary" "$debug_file"
chmod 0644 "$debug_file"
objcopy --strip-debug --strip-unneeded "$binary" "$pkg/usr/bin/firehosed"
chmod 0755 "$pkg/usr/bin/firehosed"
install -D -m 0644 "$here/systemd/firehosed.service" "$pkg/lib/systemd/system/firehosed.service"
install -D -m 0640 "$here/packaging/firehosed.yaml" "$pkg/etc/firehosed/firehosed.yaml"
install -D -m 0640 "$here/systemd/firehosed.env" "$pkg/etc/firehosed/firehosed.env"
install -D -m 0644 "$here/README.md" "$pkg/usr/share/doc/firehosed/README.md"
cp -r "$here/docs" "$pkg/usr/share/doc/firehosed/docs"
mkdir -p "$pkg/usr/share/firehosed"
cp -r "$here/runners" "$pkg/usr/share/firehosed/runners"
mkdir -p "$pkg/DEBIAN"
install -m 0755 "$here"/packaging/debian/postinst "$here"/packaging/debian/prerm \
  "$here"/packaging/debian/postrm "$pkg/DEBIAN/"
printf '/etc/firehosed/firehosed.yaml\n/etc/firehosed/firehosed.env\n' > "$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: firehosed
Version: $version
Architecture: $arch
Maintainer: firehosed developers <firehosed@localhost>
Installed-Size: $size
Depends: libc6, adduser | passwd
Section: net
Priority: optional
Description: Amazon Data Firehose on a VM you own
 The Firehose API (PutRecord, PutRecordBatch) and Kinesis Data Streams sources, buffering,
 compression, dynamic partitioning, Lambda-contract transforms and Parquet conversion,
 delivered to S3 or a local directory, with durable acknowledgements.
CONTROL
mkdir -p "$out"
deb="$out/firehosed_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$pkg" "$deb" >/dev/null
mkdir -p "$dbg/DEBIAN"
cat > "$dbg/DEBIAN/control" <<CONTROL
Package: firehosed-dbgsym
Source: firehosed
Version: $version
Architecture: $arch
Maintainer: firehosed developers <firehosed@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$dbg" | cut -f1)
Depends: firehosed (= $version)
Section: debug
Priority: optional
Auto-Built-Package: debug-symbols
Build-Ids: $build_id
Description: debug symbols for firehosed
CONTROL
dbgsym="$out/firehosed-dbgsym_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$dbg" "$dbgsym" >/dev/null
echo "$dbgsym" >&2
echo "$deb"
