#!/usr/bin/env bash
# Makes jetpack's qemu base for Linux hosts: a root file system from Debian's
# packages holding qemu-system-x86_64 (qemu-system-x86), exactly the shared
# libraries it loads, the firmware it opens for -kernel boots (seabios,
# qemu's option ROMs, ipxe's NIC ROMs), its TCG module, and busybox-static
# for a shell; and jetpack's chainloader (images/chainloader), with which
# qemu boots ELF64 images: /usr/share/jetpack/chainloader. Launched
# instances' pods are clones of it (issue 15).
#
#   make.sh OUTDIR      OUTDIR/qemu.tar.gz, then prints its size and sha256
#
# Reproducible: sorted tar with fixed mtime and owners, gzip without a name
# or time; two runs give the same sha256 as long as the host's packages are
# the same. Needs no root.
# Needs: qemu-system-x86 (with seabios and ipxe-qemu), busybox-static,
# binutils (as, ld: the chainloader), ldd (libc-bin), tar, gzip, sha256sum.
set -euo pipefail
umask 022
export LC_ALL=C

MTIME='2026-01-01 00:00Z'
here=$(cd "$(dirname "$0")" && pwd)
# Built from source by its own make.sh (reproducible: as and ld only).
CHAINLOADER_MAKE=$here/../chainloader/make.sh
CHAINLOADER=/usr/share/jetpack/chainloader
QEMU=/usr/bin/qemu-system-x86_64
BUSYBOX=/bin/busybox
MULTIARCH=x86_64-linux-gnu
# Modules qemu dlopen()s from /usr/lib/$MULTIARCH/qemu: TCG is one in
# Debian's build (it is loaded for -accel tcg, and with no -accel at all).
MODULES=(accel-tcg-x86_64.so)
# What qemu 7.2 opens for `-kernel` boots on pc and q35, KVM and TCG, as
# strace -f -e trace=openat showed (README.md): the BIOS and VGA BIOS, the
# multiboot and Linux loader option ROMs, the KVM vapic ROM, and the iPXE
# ROMs of the NICs a launch uses (e1000: pc's default NIC; e1000e: q35's;
# virtio: what jetpack launches with). qemu looks for them relative to its
# binary (/usr/bin/../share/qemu, ../share/seabios, ../lib/ipxe/qemu), so
# they keep their Debian paths.
FIRMWARE=(
    /usr/share/seabios/bios-256k.bin
    /usr/share/seabios/vgabios-stdvga.bin
    /usr/share/qemu/multiboot_dma.bin
    /usr/share/qemu/linuxboot_dma.bin
    /usr/share/qemu/kvmvapic.bin
    /usr/lib/ipxe/qemu/efi-e1000.rom
    /usr/lib/ipxe/qemu/efi-e1000e.rom
    /usr/lib/ipxe/qemu/efi-virtio.rom
)
PACKAGES=(qemu-system-x86 qemu-system-data seabios ipxe-qemu busybox-static libc6 binutils)

die() { echo "make.sh: $*" >&2; exit 1; }

TMPS=()
cleanup() { [ ${#TMPS[@]} -eq 0 ] || rm -rf -- "${TMPS[@]}"; }
trap cleanup EXIT

[ $# -eq 1 ] && [ -n "$1" ] && [ "${1#-}" = "$1" ] || { echo "usage: make.sh OUTDIR" >&2; exit 64; }
out=$1

[ -x "$QEMU" ] || die "$QEMU is missing: apt-get install qemu-system-x86"
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing: apt-get install busybox-static"
if command -v file >/dev/null && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
    die "$BUSYBOX is not statically linked: apt-get install busybox-static"
fi
for f in "${FIRMWARE[@]}" "${MODULES[@]/#//usr/lib/$MULTIARCH/qemu/}"; do
    [ -e "$f" ] || die "$f is missing (qemu-system-x86, seabios, ipxe-qemu)"
done
[ -x "$CHAINLOADER_MAKE" ] || die "$CHAINLOADER_MAKE is missing"
for tool in as ld ldd tar gzip sha256sum dpkg-query; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done

# Copies FILE to ROOT at the same path; when FILE is a symlink (a library's
# soname link, a ROM linked into place), the file it resolves to goes next to
# it under its own name, and FILE becomes a relative link to that name.
copy_resolved() {
    local root=$1 file=$2 mode=$3 real dir
    real=$(readlink -f -- "$file")
    dir=$(dirname -- "$file")
    mkdir -p -- "$root$dir"
    if [ "$(basename -- "$real")" = "$(basename -- "$file")" ]; then
        cp -- "$real" "$root$file"
        chmod "$mode" "$root$file"
    else
        cp -- "$real" "$root$dir/$(basename -- "$real")"
        chmod "$mode" "$root$dir/$(basename -- "$real")"
        ln -sfn -- "$(basename -- "$real")" "$root$file"
    fi
}

# The libraries ldd lists for each ELF (the loader included; the vdso has
# no path and is skipped), at the paths ldd gives.
copy_libraries() {
    local root=$1 lib
    shift
    while read -r lib; do
        copy_resolved "$root" "$lib" 0755
    done < <(for elf in "$@"; do ldd "$elf"; done | grep -o '/[^ ]*' | sort -u)
}

build_rootfs() {
    local root=$1 applet module
    chmod 0755 "$root"
    mkdir -p "$root"/{bin,usr/bin,etc,jetpack,dev,proc,tmp}
    chmod 1777 "$root/tmp"

    cp "$BUSYBOX" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    # Every applet, linked relative in /bin. The list is read whole (no
    # SIGPIPE for busybox under pipefail).
    local list
    list=$("$BUSYBOX" --list)
    for applet in $list; do
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done

    copy_resolved "$root" "$QEMU" 0755
    local elves=("$QEMU")
    for module in "${MODULES[@]}"; do
        copy_resolved "$root" "/usr/lib/$MULTIARCH/qemu/$module" 0644
        elves+=("/usr/lib/$MULTIARCH/qemu/$module")
    done
    copy_libraries "$root" "${elves[@]}"
    for f in "${FIRMWARE[@]}"; do
        copy_resolved "$root" "$f" 0644
    done

    mkdir -p "$root$(dirname "$CHAINLOADER")"
    "$CHAINLOADER_MAKE" "$root$CHAINLOADER"
    chmod 0644 "$root$CHAINLOADER"

    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    chmod 0644 "$root/etc/passwd" "$root/etc/group"
    # What went in, by package version (dpkg-query's order is the list's).
    dpkg-query -W -f '${Package} ${Version}\n' "${PACKAGES[@]}" | sort > "$root/jetpack/base-release"
    chmod 0644 "$root/jetpack/base-release"
}

root=$(mktemp -d)
TMPS+=("$root")
build_rootfs "$root"
mkdir -p -- "$out"
tmp=$(mktemp -p "$out" .qemu.tar.gz.XXXXXX)
TMPS+=("$tmp")
tar --format=gnu --sort=name --mtime="$MTIME" --owner=0 --group=0 --numeric-owner \
    -C "$root" -cf - . | gzip -9 -n > "$tmp"
chmod 0644 "$tmp"
mv -- "$tmp" "$out/qemu.tar.gz"
echo "$out/qemu.tar.gz: $(stat -c %s "$out/qemu.tar.gz") bytes, sha256 $(sha256sum "$out/qemu.tar.gz" | cut -d' ' -f1)"
