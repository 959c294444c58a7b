#!/usr/bin/env bash
# Checks the qemu base on a Debian host, as root (chroot, mount):
#  1. make.sh writes qemu.tar.gz (unless one is given);
#  2. extracted, its busybox shell runs in a chroot of it;
#  3. the test kernel (images/test-builder/kernel.S, assembled here with
#     sample inputs) boots in a chroot of it with nothing else from the host
#     but /dev/null and /dev/kvm (bind-mounted; no /proc, no /sys): TCG, and
#     KVM where /dev/kvm is; pc and q35; with a virtio NIC; it prints its
#     lines (the SMBIOS UUID given with -uuid among them) and exits 1
#     through isa-debug-exit;
#  4. the same kernel as an ELF64 (kernel64.ld, as an IncludeOS x86_64
#     image is) boots in it through the base's chainloader,
#     -kernel /usr/share/jetpack/chainloader -initrd IMAGE: the same lines,
#     and with -append idle it stays up.
# Ends with "N passed, N failed"; exits 1 if any check failed.
#
# Usage: verify.sh [QEMU.TAR.GZ]   (default: made by make.sh in a temp dir)
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
kernel_src=$here/../test-builder
UUID=11223344-5566-7788-99aa-bbccddeeff00
passed=0 failed=0

[ "$(id -u)" = 0 ] || { echo "verify.sh: needs root (chroot, mount)" >&2; exit 1; }
for tool in as ld chroot mount umount tar timeout; do
    command -v "$tool" >/dev/null || { echo "verify.sh: $tool is missing" >&2; exit 1; }
done

CHROOT=$(command -v chroot)
work=$(mktemp -d)
root=$work/root
MOUNTS=()
cleanup() {
    local i
    # Unmount in reverse order, then remove; never remove through a mount.
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount -- "${MOUNTS[i]}" 2>/dev/null || umount -l -- "${MOUNTS[i]}" 2>/dev/null || true
    done
    for m in "${MOUNTS[@]}"; do
        if mountpoint -q -- "$m" 2>/dev/null; then
            echo "verify.sh: $m is still mounted; leaving $work" >&2
            return
        fi
    done
    rm -rf -- "$work"
}
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

# ---- 1. the tarball
if [ $# -ge 1 ]; then
    tarball=$1
else
    "$here/make.sh" "$work/out"
    tarball=$work/out/qemu.tar.gz
fi
echo "base: $tarball, $(stat -c %s "$tarball") bytes, sha256 $(sha256sum "$tarball" | cut -d' ' -f1)"
mkdir -p "$root"
tar -xzf "$tarball" -C "$root"
sed 's/^/base-release: /' "$root/jetpack/base-release"

# ---- 2. a shell
in_root() { (cd "$root" && env -i PATH=/usr/bin:/bin "$CHROOT" "$root" "$@"); }
check "busybox sh runs in the base" test "$(in_root /bin/sh -c 'echo shell')" = shell

# ---- 3. the test kernel boots in it
# kernel.S .incbin's the build's inputs at absolute paths; a copy of it here
# points them at sample files instead.
mkdir -p "$work/kernel"
printf 'Iface eth0 {\n  index: 0\n}\n' > "$work/kernel/nacl.txt"
printf '%s' '{"uplink":{"url":"https://10.0.0.1:9090","token":"abc"}}' > "$work/kernel/config.json"
printf 'Starbase' > "$work/kernel/service"
sed -e "s|\"/build/in/nacl.txt\"|\"$work/kernel/nacl.txt\"|" \
    -e "s|\"/build/in/config.json\"|\"$work/kernel/config.json\"|" \
    -e "s|\"/tmp/jetpack-service\"|\"$work/kernel/service\"|" \
    "$kernel_src/kernel.S" > "$work/kernel/kernel.S"
as --32 -o "$work/kernel/kernel.o" "$work/kernel/kernel.S"
ld -m elf_i386 --no-warn-rwx-segments -T "$kernel_src/kernel.ld" \
    -o "$root/tmp/kernel.elf" "$work/kernel/kernel.o"
as --64 -o "$work/kernel/kernel64.o" "$work/kernel/kernel.S"
ld -m elf_x86_64 --no-warn-rwx-segments -T "$kernel_src/kernel64.ld" \
    -o "$root/tmp/kernel64.elf" "$work/kernel/kernel64.o"

# The devices qemu needs: /dev/null for its stdin, /dev/kvm for KVM.
for dev in null kvm; do
    [ -e "/dev/$dev" ] || continue
    touch "$root/dev/$dev"
    mount --bind "/dev/$dev" "$root/dev/$dev"
    MOUNTS+=("$root/dev/$dev")
done

h=${UUID//-/}
want_uuid="jetpack test kernel: uuid=${h:6:2}${h:4:2}${h:2:2}${h:0:2}${h:10:2}${h:8:2}${h:14:2}${h:12:2}${h:16:16}"
want="jetpack test kernel: service=Starbase config=$(cat "$work/kernel/config.json")"
boot() { # boot NAME QEMU-ARGS...
    local name=$1 status=0
    shift
    (cd "$root" && env -i PATH=/usr/bin:/bin timeout 30 "$CHROOT" "$root" \
        /usr/bin/qemu-system-x86_64 "$@" "${KERNEL[@]}" -display none \
        -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot \
        -m 64 -uuid "$UUID" </dev/null >"$work/serial-$name.out" 2>"$work/serial-$name.err") ||
        status=$?
    echo "qemu ($name) in the base: exit status $status, serial:"
    sed 's/^/    /' "$work/serial-$name.out"
    [ ! -s "$work/serial-$name.err" ] || sed 's/^/    stderr: /' "$work/serial-$name.err"
    check "qemu ($name) exits 1 through isa-debug-exit" test "$status" = 1
    check "qemu ($name) prints the kernel's line" grep -qxF -- "$want" "$work/serial-$name.out"
    check "qemu ($name) prints the SMBIOS UUID" grep -qxF -- "$want_uuid" "$work/serial-$name.out"
}
KERNEL=(-kernel /tmp/kernel.elf)
boot tcg-pc -accel tcg -machine pc
boot tcg-q35 -accel tcg -machine q35
boot tcg-virtio -accel tcg -nic none -device virtio-net-pci,netdev=n0 -netdev user,id=n0
if [ -w /dev/kvm ]; then
    boot kvm-pc -accel kvm -machine pc
    boot kvm-q35 -accel kvm -machine q35
    boot kvm-virtio -accel kvm -nic none -device virtio-net-pci,netdev=n0 -netdev user,id=n0
else
    echo "skip: /dev/kvm is not writable here"
fi

# ---- 4. the ELF64 kernel through the base's chainloader
check "the base has /usr/share/jetpack/chainloader" test -f "$root/usr/share/jetpack/chainloader"
KERNEL=(-kernel /usr/share/jetpack/chainloader -initrd /tmp/kernel64.elf -append "a b")
boot chainloader-tcg-pc -accel tcg -cpu max -machine pc
boot chainloader-tcg-q35 -accel tcg -cpu max -machine q35
if [ -w /dev/kvm ]; then
    boot chainloader-kvm-pc -accel kvm -cpu kvm64,+rdrand,+rdseed -machine pc
    boot chainloader-kvm-q35 -accel kvm -cpu kvm64,+rdrand,+rdseed -machine q35
fi
# -append idle: up after its lines. Read until the uuid line (at most 30
# s), then it must neither exit nor print more within a second; then it is
# stopped, by its pid.
idle_accel=(-accel tcg -cpu max)
[ ! -w /dev/kvm ] || idle_accel=(-accel kvm -cpu kvm64,+rdrand,+rdseed)
exec {fd}< <(cd "$root" && exec env -i PATH=/usr/bin:/bin timeout 60 "$CHROOT" "$root" \
    /usr/bin/qemu-system-x86_64 "${idle_accel[@]}" -kernel /usr/share/jetpack/chainloader \
    -initrd /tmp/kernel64.elf -append idle -display none -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot -m 64 -uuid "$UUID" \
    </dev/null 2>"$work/serial-idle.err")
qemu_pid=$!
seen=
while read -r -t 30 -u "$fd" line; do
    [ "$line" = "$want_uuid" ] && { seen=1; break; }
done
if read -r -t 1 -u "$fd" line; then state="printed more: $line"
elif [ $? -gt 128 ]; then state=running
else state=exited; fi
kill "$qemu_pid" 2>/dev/null || true
wait "$qemu_pid" 2>/dev/null || true
exec {fd}<&-
echo "qemu (chainloader, -append idle, ${idle_accel[1]}) in the base: ${seen:+printed its lines, }$state"
check "qemu (chainloader, -append idle) prints the uuid line" test -n "$seen"
check "qemu (chainloader, -append idle) stays up" test "$state" = running

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
