#!/usr/bin/env bash
# Checks the test builder end to end on a Debian host, as root (chroot):
#  1. make.sh twice gives byte-identical outputs;
#  2. /jetpack/build in a chroot of the rootfs makes an ELF from sample
#     inputs, and rejects missing inputs and other services;
#  3. the ELF boots under QEMU (TCG, and KVM where /dev/kvm is; pc and q35)
#     and prints its line, then the SMBIOS UUID given with -uuid the way
#     IncludeOS prints it; with -append idle it stays up; objcopy gives
#     config.json and nacl.txt back byte for byte; a NaCl with
#     "// test: elf64" gives an ELF64 x86-64 file, which boots through the
#     chainloader (../chainloader) with the same lines;
#  4. /jetpack/validate gives samples/*.expected for samples/*.nacl;
#  5. make.sh --oci gives a layout skopeo reads, and that round-trips through
#     Debian's docker-registry on 127.0.0.1:5055 (skipped if not installed).
# Ends with "N passed, N failed"; exits 1 if any check failed.
#
# Usage: verify.sh [WORKDIR]   (default: a temporary folder, removed after)
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
PATH_IN_POD=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
TAG=v0.1.0-test
PORT=5055
passed=0 failed=0
registry_pid=

own_work=
if [ $# -ge 1 ]; then
    work=$1
    mkdir -p "$work"
else
    work=$(mktemp -d)
    own_work=1
fi
cleanup() {
    # Only the registry this script started, by its pid.
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    [ -z "$own_work" ] || rm -rf -- "$work"
}
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

# Runs ARGV in the rootfs the way a pod would: clean env, cwd /.
in_root() {
    (cd "$root" && env -i PATH="$PATH_IN_POD" chroot "$root" "$@")
}

# ---- 1. reproducible
"$here/make.sh" "$work/a" >/dev/null
"$here/make.sh" "$work/b" >/dev/null
sum_a=$(cd "$work/a" && sha256sum test-builder.tar.gz test-builder.json)
sum_b=$(cd "$work/b" && sha256sum test-builder.tar.gz test-builder.json)
echo "$sum_a"
check "two runs of make.sh give the same sha256" test "$sum_a" = "$sum_b"
check "test-builder.json is the base's /jetpack/builder.json" \
    cmp -s <(tar -xzOf "$work/a/test-builder.tar.gz" ./jetpack/builder.json) "$work/a/test-builder.json"
echo "tarball: $(stat -c %s "$work/a/test-builder.tar.gz") bytes"

# ---- 2. build in a chroot
root="$work/root"
rm -rf "$root"
mkdir -p "$root"
tar -xzf "$work/a/test-builder.tar.gz" -C "$root"
cat > "$root/build/in/nacl.txt" <<'NACL'
Iface eth0 {
  index: 0,
  address: 10.0.0.42,
  netmask: 255.255.255.0
}
eth0.gateway: 10.0.0.1
NACL
printf '%s' '{"uplink":{"url":"https://10.0.0.1:9090","token":"abc","tag":"t1","verify":true}}' \
    > "$root/build/in/config.json"
printf '%s' '{"service":"Starbase","name":"myimage","tag":"t1"}' > "$root/build/in/build.json"
check "/jetpack/build exits 0" in_root /jetpack/build
image="$root/build/out/myimage"
check "one output, named after build.json" test "$(ls "$root/build/out")" = myimage
check "the output is an ELF" test "$(head -c 4 "$image" | od -An -c | tr -d ' ')" = '177ELF'

objcopy -O binary --only-section=.config "$image" "$work/config.out"
check ".config is config.json byte for byte" cmp -s "$work/config.out" "$root/build/in/config.json"
objcopy -O binary --only-section=.nacl "$image" "$work/nacl.out"
check ".nacl is nacl.txt byte for byte" cmp -s "$work/nacl.out" "$root/build/in/nacl.txt"

# ---- 3. boot
want="jetpack test kernel: service=Starbase config=$(cat "$root/build/in/config.json")"
UUID=11223344-5566-7788-99aa-bbccddeeff00
# IncludeOS's id for it: the 16 bytes as the SMBIOS table holds them, %02x
# each; SMBIOS 2.6+ (and so qemu) stores the first three fields little-endian.
smbios_id() { # smbios_id UUID
    local h=${1//-/}
    echo "${h:6:2}${h:4:2}${h:2:2}${h:0:2}${h:10:2}${h:8:2}${h:14:2}${h:12:2}${h:16:16}"
}
want_uuid="jetpack test kernel: uuid=$(smbios_id "$UUID")"
QEMU_ARGS=(-kernel "$image" -display none -serial stdio
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot -m 64 -uuid "$UUID")
boot() { # boot NAME QEMU-ARGS...
    local name=$1 status=0
    shift
    timeout 20 qemu-system-x86_64 "$@" "${QEMU_ARGS[@]}" \
        </dev/null >"$work/serial-$name.out" 2>"$work/serial-$name.err" || status=$?
    echo "qemu ($name) exit status $status, serial: $(cat "$work/serial-$name.out")"
    check "qemu ($name) exits 1 through isa-debug-exit" test "$status" = 1
    check "qemu ($name) prints the line" grep -qxF -- "$want" "$work/serial-$name.out"
    check "qemu ($name) prints the SMBIOS UUID as IncludeOS does" \
        grep -qxF -- "$want_uuid" "$work/serial-$name.out"
}
# With -append idle the kernel stays up after its lines: read the serial
# output until the uuid line, then it must neither exit nor print more
# within a second; then it is stopped.
boot_idle() { # boot_idle NAME QEMU-ARGS...
    local name=$1 line seen= state qemu_pid fd
    shift
    exec {fd}< <(exec timeout 30 qemu-system-x86_64 "$@" "${QEMU_ARGS[@]}" -append idle \
        </dev/null 2>"$work/serial-$name.err")
    qemu_pid=$!
    while read -r -t 20 -u "$fd" line; do
        [ "$line" = "$want_uuid" ] && { seen=1; break; }
    done
    if read -r -t 1 -u "$fd" line; then state="printed more: $line"
    elif [ $? -gt 128 ]; then state=running
    else state=exited; fi
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    exec {fd}<&-
    echo "qemu ($name, -append idle): ${seen:+printed its lines, }$state"
    check "qemu ($name, -append idle) prints the uuid line" test -n "$seen"
    check "qemu ($name, -append idle) stays up" test "$state" = running
}
boot tcg -accel tcg
boot tcg-q35 -accel tcg -machine q35
boot_idle tcg -accel tcg
if [ -w /dev/kvm ]; then
    boot kvm -accel kvm
    boot kvm-q35 -accel kvm -machine q35
    boot_idle kvm -accel kvm
else
    echo "skip: no /dev/kvm"
fi

# ---- "// test: elf64": the same kernel as an ELF64 x86-64 file, which
# boots through the chainloader (images/chainloader) and prints the same
# lines; qemu's -kernel alone refuses it.
cp "$root/build/in/nacl.txt" "$work/nacl.txt"
printf '// test: elf64\n' >> "$root/build/in/nacl.txt"
printf '%s' '{"service":"Starbase","name":"myimage64","tag":"t1"}' > "$root/build/in/build.json"
check "/jetpack/build (elf64) exits 0" in_root /jetpack/build
image64="$root/build/out/myimage64"
check "elf64: the output is an ELF64 x86-64 executable" \
    test "$(readelf -h "$image64" | sed -n 's/^ *\(Class\|Machine\|Type\): *//p' | tr '\n' '|')" \
        = "ELF64|EXEC (Executable file)|Advanced Micro Devices X86-64|"
objcopy -O binary --only-section=.config "$image64" "$work/config64.out"
check "elf64: .config is config.json byte for byte" cmp -s "$work/config64.out" "$root/build/in/config.json"
"$here/../chainloader/make.sh" "$work/chainloader"
boot64() { # boot64 NAME QEMU-ARGS...
    local name=$1 status=0
    shift
    timeout 30 qemu-system-x86_64 "$@" -kernel "$work/chainloader" -initrd "$image64" \
        -display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -no-reboot -m 64 -uuid "$UUID" </dev/null >"$work/serial-$name.out" \
        2>"$work/serial-$name.err" || status=$?
    echo "qemu ($name) exit status $status, serial: $(cat "$work/serial-$name.out")"
    check "qemu ($name) exits 1 through isa-debug-exit" test "$status" = 1
    check "qemu ($name) prints the line" grep -qxF -- "$want" "$work/serial-$name.out"
    check "qemu ($name) prints the SMBIOS UUID" grep -qxF -- "$want_uuid" "$work/serial-$name.out"
}
boot64 elf64-tcg -accel tcg -cpu max
if [ -w /dev/kvm ]; then
    boot64 elf64-kvm-q35 -accel kvm -cpu kvm64 -machine q35
fi
status=0
timeout 30 qemu-system-x86_64 -kernel "$image64" -display none -no-reboot -m 64 \
    </dev/null >/dev/null 2>"$work/elf64-direct.err" || status=$?
check "elf64: qemu -kernel alone refuses it" grep -q 'Cannot load x86-64 image' "$work/elf64-direct.err"
mv "$work/nacl.txt" "$root/build/in/nacl.txt"
rm -f "$root/build/out/myimage64"

# ---- the build's refusals
mv "$root/build/in/nacl.txt" "$work/nacl.txt"
rm -f "$root/build/out/"*
status=0; in_root /jetpack/build >/dev/null 2>&1 || status=$?
check "missing nacl.txt: exit 2" test "$status" = 2
mv "$work/nacl.txt" "$root/build/in/nacl.txt"
printf '%s' '{"service":"Webserver","name":"x","tag":null}' > "$root/build/in/build.json"
status=0; in_root /jetpack/build >/dev/null 2>&1 || status=$?
check "other service: exit 3" test "$status" = 3
check "nothing written on failure" test -z "$(ls "$root/build/out")"

# ---- 4. validate
for sample in "$here"/samples/*.nacl; do
    name=$(basename "$sample" .nacl)
    cp "$sample" "$root/build/in/nacl.txt"
    status=0
    in_root /jetpack/validate >"$work/validate-$name.out" || status=$?
    expect=0
    [ -s "$here/samples/$name.expected" ] && expect=1
    check "validate $name: output" cmp -s "$work/validate-$name.out" "$here/samples/$name.expected"
    check "validate $name: exit $expect" test "$status" = "$expect"
done

# ---- 5. OCI layout, registry round trip
layout="$work/oci"
rm -rf "$layout"
"$here/make.sh" --oci "$layout" "$TAG"
quiet() { "$@" >/dev/null; }
check "skopeo inspect oci:" quiet skopeo inspect "oci:$layout:$TAG"
labels=$(skopeo inspect --config "oci:$layout:$TAG" | jq -c '.config.Labels')
echo "labels: $labels"
check "label-schema labels" test "$(jq -r '."org.label-schema.name"' <<<"$labels")" = jetpack/test-builder
check "io.jetpack.services" test "$(jq -r '."io.jetpack.services"' <<<"$labels")" = Starbase
check "the layer is the local tarball" \
    test -f "$layout/blobs/sha256/$(sha256sum "$work/a/test-builder.tar.gz" | cut -d' ' -f1)"

if command -v docker-registry >/dev/null; then
    mkdir -p "$work/registry"
    sed "s|REGISTRY_ROOT|$work/registry|" "$here/registry.yml.sample" > "$work/registry.yml"
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    registry_pid=$!
    for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break
        sleep 0.2
    done
    dest="docker://127.0.0.1:$PORT/jetpack/test-builder:$TAG"
    check "skopeo copy to the registry" \
        skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$TAG" "$dest"
    tags=$(curl -fsS "http://127.0.0.1:$PORT/v2/jetpack/test-builder/tags/list" || true)
    echo "tags/list: $tags"
    check "the registry lists $TAG" test "$(jq -r '.tags[]?' <<<"$tags")" = "$TAG"
    check "skopeo copy back from the registry" \
        skopeo copy --quiet --src-tls-verify=false "$dest" "oci:$work/back:$TAG"
    check "same layer back" \
        test -f "$work/back/blobs/sha256/$(sha256sum "$work/a/test-builder.tar.gz" | cut -d' ' -f1)"
    kill "$registry_pid"
    wait "$registry_pid" 2>/dev/null || true
    registry_pid=
else
    echo "skip: docker-registry is not installed"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
