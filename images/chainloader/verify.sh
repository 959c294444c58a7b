#!/usr/bin/env bash
# Checks the chainloader (README.md) on a Debian host:
#  1. make.sh twice gives the same sha256;
#  2. the test kernel (images/test-builder/kernel.S with sample inputs) is
#     assembled both ways: ELF32 (kernel.ld) and ELF64 (kernel64.ld);
#  3. the ELF64 one boots through the chainloader under qemu (TCG, and KVM
#     where /dev/kvm is writable; -machine pc and q35): its two lines, the
#     uuid being the -uuid given as IncludeOS prints it, then exit status 1
#     through isa-debug-exit; with -append idle it stays up (and the
#     multiboot info it got is read back through qemu's monitor); once more
#     with jetpack's own argv shape (-nodefaults, -initrd "IMAGE ARGS");
#  4. the refusals, each its error line and exit status: no module, the
#     ELF32 kernel, a text file, a truncated ELF64, segments below 1 MiB
#     and over the chainloader.
# qemu runs under `timeout`; output is waited for, never slept for.
# Ends with "N passed, N failed"; exits 1 if any check failed.
#
# Usage: verify.sh [WORKDIR]   (default: a temporary folder, removed after)
# Needs: binutils, qemu-system-x86 (7.2 or later), coreutils.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
builder=$(cd "$here/../test-builder" && pwd)
passed=0 failed=0

own_work=
if [ $# -ge 1 ]; then
    work=$(mkdir -p "$1" && cd "$1" && pwd)
else
    work=$(mktemp -d)
    own_work=1
fi
cleanup() { [ -z "$own_work" ] || rm -rf -- "$work"; }
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

# ---- 1. reproducible
"$here/make.sh" "$work/chainloader"
"$here/make.sh" "$work/chainloader.2"
sum_a=$(sha256sum < "$work/chainloader" | cut -d' ' -f1)
sum_b=$(sha256sum < "$work/chainloader.2" | cut -d' ' -f1)
echo "chainloader: $(stat -c %s "$work/chainloader") bytes, sha256 $sum_a"
check "two runs of make.sh give the same sha256" test "$sum_a" = "$sum_b"
chainloader=$work/chainloader

# ---- 2. the test kernels. kernel.S .incbin's the build's inputs by their
# paths in the builder's pod; here they are in $work/in.
mkdir -p "$work/in"
printf 'Iface eth0 {\n  index: 0,\n  address: 10.0.0.42\n}\n// test: elf64\n' > "$work/in/nacl.txt"
printf '%s' '{"uplink":{"url":"https://10.0.0.1:9090","token":"abc"}}' > "$work/in/config.json"
printf '%s' Starbase > "$work/in/service"
sed -e "s|\"/build/in/|\"$work/in/|" -e "s|\"/tmp/jetpack-service\"|\"$work/in/service\"|" \
    "$builder/kernel.S" > "$work/kernel.S"
as --32 -o "$work/kernel32.o" "$work/kernel.S"
ld -m elf_i386 --no-warn-rwx-segments -T "$builder/kernel.ld" -o "$work/kernel32" "$work/kernel32.o"
as --64 -o "$work/kernel64.o" "$work/kernel.S"
ld -m elf_x86_64 --no-warn-rwx-segments -T "$builder/kernel64.ld" -o "$work/kernel64" "$work/kernel64.o"
elf_header() { readelf -h "$1" | sed -n "s/^ *$2: *//p"; }
check "kernel64 is ELF64" test "$(elf_header "$work/kernel64" Class)" = ELF64
check "kernel64 is x86-64" test "$(elf_header "$work/kernel64" Machine)" = "Advanced Micro Devices X86-64"
check "kernel32 is ELF32" test "$(elf_header "$work/kernel32" Class)" = ELF32
check "kernel64 loads at 1 MiB" \
    test "$(readelf -lW "$work/kernel64" | awk '$1 == "LOAD" { print $4; exit }')" = 0x0000000000100000
mb_offset=$(od -A d -t x4 -w4 -v "$work/kernel64" | awk '$2 == "1badb002" { print $1; exit }')
check "kernel64's multiboot header is within its first 8 KiB" test -n "$mb_offset" -a "${mb_offset:-8192}" -lt 8192
check "the same 32-bit code in both" cmp -s \
    <(objcopy -O binary -j .text "$work/kernel32" /dev/stdout) \
    <(objcopy -O binary -j .text "$work/kernel64" /dev/stdout)

# Refused modules: a text file, a truncated ELF64, segments below 1 MiB
# and over the chainloader (the same object linked elsewhere).
printf 'not a kernel\n' > "$work/text"
head -c 100 "$work/kernel64" > "$work/truncated"
for at in low:0x80000 high:0x1fff000; do
    sed "s/\. = 0x100000;/. = ${at#*:};/" "$builder/kernel64.ld" > "$work/kernel64-${at%%:*}.ld"
    ld -m elf_x86_64 --no-warn-rwx-segments -T "$work/kernel64-${at%%:*}.ld" \
        -o "$work/kernel64-${at%%:*}" "$work/kernel64.o"
done

# ---- 3. boot
want="jetpack test kernel: service=Starbase config=$(cat "$work/in/config.json")"
UUID=11223344-5566-7788-99aa-bbccddeeff00
# IncludeOS's id for it: the 16 bytes as the SMBIOS table holds them, the
# first three fields little-endian.
smbios_id() { # smbios_id UUID
    local h=${1//-/}
    echo "${h:6:2}${h:4:2}${h:2:2}${h:0:2}${h:10:2}${h:8:2}${h:14:2}${h:12:2}${h:16:16}"
}
want_uuid="jetpack test kernel: uuid=$(smbios_id "$UUID")"
QEMU_ARGS=(-display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04
    -no-reboot -m 64 -uuid "$UUID" -kernel "$chainloader")

# qemu NAME ACCEL-ARGS... -- MORE-ARGS...: runs qemu to its end (at most
# 30 s); $status, serial output in $work/serial-NAME.out.
qemu() {
    local name=$1
    shift
    status=0
    timeout 30 qemu-system-x86_64 "${QEMU_ARGS[@]}" "$@" \
        </dev/null >"$work/serial-$name.out" 2>"$work/serial-$name.err" || status=$?
    echo "qemu ($name) exit status $status, serial: $(cat "$work/serial-$name.out")"
}
boot() { # boot NAME QEMU-ARGS...
    local name=$1
    shift
    qemu "$name" "$@" -initrd "$work/kernel64" -append "x=1 y"
    check "qemu ($name) exits 1 through isa-debug-exit" test "$status" = 1
    check "qemu ($name) prints the line" grep -qxF -- "$want" "$work/serial-$name.out"
    check "qemu ($name) prints the SMBIOS UUID as IncludeOS does" \
        grep -qxF -- "$want_uuid" "$work/serial-$name.out"
}
# With -append idle the kernel stays up after its lines: read the serial
# output until the uuid line (at most 30 s), then it must neither exit nor
# print more within a second; then it is stopped, by its pid.
# While it is up, the multiboot info the chainloader made for it is read
# through qemu's monitor (on a pair of FIFOs): the flags (mem_*, cmdline,
# mmap, boot_loader_name), where each part is, a memory map.
boot_idle() { # boot_idle NAME QEMU-ARGS...
    local name=$1 line seen= state qemu_pid fd mon_in mon_out info=
    shift
    rm -f "$work/mon-$name.in" "$work/mon-$name.out"
    mkfifo "$work/mon-$name.in" "$work/mon-$name.out"
    exec {fd}< <(exec timeout 60 qemu-system-x86_64 "${QEMU_ARGS[@]}" "$@" \
        -monitor "pipe:$work/mon-$name" \
        -initrd "$work/kernel64" -append "a idle b" </dev/null 2>"$work/serial-$name.err")
    qemu_pid=$!
    # Read-write opens: neither waits for the other end.
    exec {mon_in}<>"$work/mon-$name.in" {mon_out}<>"$work/mon-$name.out"
    while read -r -t 30 -u "$fd" line; do
        [ "$line" = "$want_uuid" ] && { seen=1; break; }
    done
    if read -r -t 1 -u "$fd" line; then state="printed more: $line"
    elif [ $? -gt 128 ]; then state=running
    else state=exited; fi
    if [ "$state" = running ]; then
        printf 'xp /20wx 0x7000\n' >&"$mon_in"
        # Four words a line: the info's first 80 bytes, the last at 0x7040.
        while read -r -t 10 -u "$mon_out" line; do
            line=${line%$'\r'}
            case "$line" in 00000000000070[0-4]0:*) info+=" ${line#*:}" ;; esac
            case "$line" in 0000000000007040:*) break ;; esac
        done
    fi
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    exec {fd}<&- {mon_in}>&- {mon_out}<&-
    echo "qemu ($name, -append idle): ${seen:+printed its lines, }$state"
    echo "qemu ($name, -append idle): multiboot info at 0x7000:$info"
    check "qemu ($name, -append idle) prints the uuid line" test -n "$seen"
    check "qemu ($name, -append idle) stays up" test "$state" = running
    # shellcheck disable=SC2206
    local w=($info)
    check "qemu ($name): info flags mem, cmdline, mmap, loader name (0x245)" test "${w[0]:-}" = 0x00000245
    check "qemu ($name): info mem_lower 639 KiB, mem_upper > 60 MiB" \
        test "$((${w[1]:-0}))" = 639 -a "$((${w[2]:-0}))" -gt $((60 * 1024))
    check "qemu ($name): info cmdline at 0x8000" test "${w[4]:-}" = 0x00008000
    check "qemu ($name): info mmap at 0x7100, a whole number of 24-byte entries" \
        test "${w[12]:-}" = 0x00007100 -a "$((${w[11]:-0}))" -gt 0 -a "$((${w[11]:-0} % 24))" = 0
    check "qemu ($name): info boot_loader_name at 0x6100" test "${w[16]:-}" = 0x00006100
}
TCG=(-accel tcg -cpu max)
KVM=(-accel kvm -cpu kvm64,+rdrand,+rdseed)
boot tcg "${TCG[@]}"
boot tcg-q35 "${TCG[@]}" -machine q35
boot_idle tcg "${TCG[@]}"
# jetpack's own argv shape (src/hypervisor/qemu.rs): no defaults, the
# console a chardev, and the module's string "IMAGE ARGS" as vmrunner
# gives it (the chainloader passes its own command line on; the module's
# arguments are ignored).
name=jetpack-argv
status=0
timeout 30 qemu-system-x86_64 -no-user-config -nodefaults "${TCG[@]}" -m 64 -smp 1 \
    -uuid "$UUID" -display none -chardev stdio,id=console,signal=off \
    -serial chardev:console -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$chainloader" -append "x=1 y" -initrd "$work/kernel64 x=1 y" \
    </dev/null >"$work/serial-$name.out" 2>"$work/serial-$name.err" || status=$?
echo "qemu ($name) exit status $status, serial: $(cat "$work/serial-$name.out")"
check "qemu ($name) exits 1 through isa-debug-exit" test "$status" = 1
check "qemu ($name) prints the line" grep -qxF -- "$want" "$work/serial-$name.out"
check "qemu ($name) prints the SMBIOS UUID" grep -qxF -- "$want_uuid" "$work/serial-$name.out"
if [ -w /dev/kvm ]; then
    boot kvm "${KVM[@]}"
    boot kvm-q35 "${KVM[@]}" -machine q35
    boot_idle kvm "${KVM[@]}"
    boot_idle kvm-q35 "${KVM[@]}" -machine q35
else
    echo "skip: no writable /dev/kvm"
fi

# ---- 4. refusals
refuse() { # refuse NAME STATUS LINE QEMU-ARGS...
    local name=$1 want_status=$2 want_line=$3
    shift 3
    qemu "$name" "${TCG[@]}" "$@"
    check "$name: exit status $want_status" test "$status" = "$want_status"
    check "$name: prints its error line" grep -qxF -- "$want_line" "$work/serial-$name.out"
}
E="jetpack chainloader: error:"
refuse no-module 3 "$E no module: boot with -kernel chainloader -initrd IMAGE"
refuse elf32 5 "$E module 0 is not an ELF64 x86-64 executable" -initrd "$work/kernel32"
refuse text 5 "$E module 0 is not an ELF64 x86-64 executable" -initrd "$work/text"
refuse truncated 9 "$E module 0 is a malformed ELF64: program headers outside the file" \
    -initrd "$work/truncated"
memsz=$(readelf -lW "$work/kernel64" | awk '$1 == "LOAD" { print $6; exit }')
refuse below-1mib 7 "$E module 0: segment 0x00080000-0x$(printf %08x $((0x80000 + memsz))) lands below 1 MiB" \
    -initrd "$work/kernel64-low"
refuse over-chainloader 7 "$E module 0: segment 0x01fff000-0x$(printf %08x $((0x1fff000 + memsz))) does not end below the chainloader at 0x02000000" \
    -initrd "$work/kernel64-high"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
