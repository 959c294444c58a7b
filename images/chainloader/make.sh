#!/bin/sh
# Builds jetpack's chainloader (README.md) from chainloader.S with binutils.
#
#   make.sh OUT      writes the chainloader, a multiboot ELF32, to OUT
#
# Reproducible: as and ld put no time or host path in it (the source is
# assembled by its relative name), so two runs give the same sha256.
# Needs: binutils (as, ld).
set -eu
export LC_ALL=C

[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: make.sh OUT" >&2; exit 64; }
for tool in as ld; do
    command -v "$tool" >/dev/null || { echo "make.sh: $tool is missing: apt-get install binutils" >&2; exit 1; }
done
here=$(cd "$(dirname "$0")" && pwd)
case "$1" in
    /*) out=$1 ;;
    *) out=$(pwd)/$1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
(cd "$here" && as --32 -o "$tmp/chainloader.o" chainloader.S)
ld -m elf_i386 --build-id=none --no-warn-rwx-segments -T "$here/chainloader.ld" -o "$tmp/chainloader" "$tmp/chainloader.o"
chmod 0644 "$tmp/chainloader"
mv -f -- "$tmp/chainloader" "$out"
