#!/usr/bin/env bash
# Makes the test builder: a root file system from Debian's busybox-static
# and binutils (as, ld and the libraries they load), with the builder
# manifest and entry points of this folder. Writes OUTDIR/test-builder.tar.gz
# and its manifest beside it, OUTDIR/test-builder.json: a `local` bob
# provider directory. Reproducible: the same inputs give the same sha256.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: make.sh OUTDIR}
for tool in /bin/busybox as ld ldd tar gzip; do
    command -v "$tool" >/dev/null || { echo "make.sh: $tool is missing (apt-get install busybox-static binutils)" >&2; exit 1; }
done
/bin/busybox --list | grep -qx awk || { echo "make.sh: /bin/busybox has no awk applet (install busybox-static)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
mkdir -p "$root"/{bin,usr/bin,tmp,etc,jetpack,build/in,build/out}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in sh awk cat mkdir rm ls echo printf grep sed tr wc head test [ cp mv sleep true false env od cut basename dirname expr ln; do
    ln -s busybox "$root/bin/$applet"
done
# The real binaries behind Debian's as and ld symlinks, and every library
# they load, at the same absolute paths.
for tool in as ld; do
    real=$(readlink -f "$(command -v "$tool")")
    cp "$real" "$root/usr/bin/$tool"
    for lib in $(ldd "$real" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
done
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
cp "$here/kernel.S" "$here/kernel.ld" "$here/builder.json" "$root/jetpack/"
install -m 0755 "$here/build" "$here/validate" "$root/jetpack/"

mkdir -p "$out"
tar --sort=name --mtime='2026-01-01 00:00Z' --owner=0 --group=0 --numeric-owner \
    -C "$root" -cf - . | gzip -n > "$out/test-builder.tar.gz.part"
mv "$out/test-builder.tar.gz.part" "$out/test-builder.tar.gz"
cp "$here/builder.json" "$out/test-builder.json"
echo "$out/test-builder.tar.gz"
