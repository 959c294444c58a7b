#!/usr/bin/env bash
# Checks the test builder end to end on a Debian host, as root (chroot):
#  1. make.sh twice gives byte-identical outputs;
#  2. /jetpack/build in a chroot of the rootfs makes an ELF from sample
#     inputs, and rejects missing inputs and other services;
#  3. the ELF boots under QEMU (TCG, and KVM where /dev/kvm is) and prints
#     its line; objcopy gives config.json and nacl.txt back byte for byte;
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
boot() { # boot NAME QEMU-ARGS...
    local name=$1 status=0
    shift
    timeout 20 qemu-system-x86_64 "$@" -kernel "$image" -display none -serial stdio \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot -m 64 \
        </dev/null >"$work/serial-$name.out" 2>"$work/serial-$name.err" || status=$?
    echo "qemu ($name) exit status $status, serial: $(cat "$work/serial-$name.out")"
    check "qemu ($name) exits 1 through isa-debug-exit" test "$status" = 1
    check "qemu ($name) prints the line" grep -qxF -- "$want" "$work/serial-$name.out"
}
boot tcg -accel tcg
if [ -w /dev/kvm ]; then boot kvm -accel kvm; else echo "skip: no /dev/kvm"; fi

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
