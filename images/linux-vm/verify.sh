#!/bin/sh
# Checks the jetpack test VM end to end: a real `jetpack serve` on
# loopback, the VM booted under qemu with user networking laid out as
# jetpack's launch lays out a tap (guest 10.0.0.42/24, gateway 10.0.0.1;
# slirp maps 10.0.0.1 to the host's loopback, so the guest reaches the
# hangar there), and for each accelerator:
#   - the console prints `jetpack test vm: id=ID`, ID being what
#     src/hypervisor/smbios.rs says an instance launched with -uuid reports
#     (computed here independently, with Python's uuid.bytes_le);
#   - /v1/instances lists ID as connected;
#   - the guest's httpd answers through a hostfwd with a page naming ID.
#
#   images/linux-vm/verify.sh [OUTDIR]
#
# Without OUTDIR (or with an empty one) the VM is built there (or in a
# temporary folder) with make.sh. JETPACK_BIN: the jetpack binary, for both
# the server and the VM (default as make.sh's). ACCELS: which of "tcg kvm"
# to run (kvm is skipped without a usable /dev/kvm, or on kvm-pvm).
# TIMEOUT: seconds from qemu's start that a boot's waits may take (default
# 120). Prints `N passed, N failed`; exit 1 on a failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
jetpack=${JETPACK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/jetpack}
accels=${ACCELS:-tcg kvm}
limit=${TIMEOUT:-120}
passed=0
failed=0

ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL: $*"
}
now_ms() { date +%s%3N; }
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d "${TMPDIR:-/tmp}/jetpack-vm-verify.XXXXXX")
server_pid=""
qemu_pid=""
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out=${1:-$work/vm}
if [ ! -s "$out/vmlinuz" ] || [ ! -s "$out/initrd.gz" ]; then
	echo "building the VM in $out"
	if "$here/make.sh" "$out" "$jetpack"; then
		ok "make.sh built $out"
	else
		bad "make.sh failed"
		echo "$passed passed, $failed failed"
		exit 1
	fi
fi

# A server as tests/common/server.rs starts one: its own folder, the dir
# driver, loopback only, TLS on (a self-signed certificate it makes).
api=$(free_port)
uplink=$(free_port)
conf="$work/jetpack.conf"
echo "# jetpack test VM check" >"$conf"
chmod 600 "$conf"
n=$$
set -- --config "$conf" \
	-o "root.zfs.mountpoint=$work/root" -o datasets.driver=dir \
	-o "jail.interface=jpv$n" -o "jail.namePrefix=jpv$n-" \
	-o server.listen=127.0.0.1 -o "server.port=$api" -o "uplink.port=$uplink"
"$jetpack" "$@" serve >/dev/null 2>"$work/serve.log" &
server_pid=$!

pw_file="$work/jetpack/admin.password"
deadline=$(($(date +%s) + 30))
until [ -s "$pw_file" ] && curl -sk -o /dev/null "https://127.0.0.1:$api/"; do
	if ! kill -0 "$server_pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
		bad "jetpack serve did not start: $(tail -5 "$work/serve.log")"
		echo "$passed passed, $failed failed"
		exit 1
	fi
	sleep 0.1
done
pw=$(cat "$pw_file")
api_get() { curl -sk -u "admin:$pw" "https://127.0.0.1:$api$1"; }
token=$(api_get /v1/uplinks | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["token"])')
if [ -n "$token" ]; then
	ok "jetpack serve on :$api, hangar on :$uplink"
else
	bad "no uplink token from /v1/uplinks"
fi

# The instance's status in /v1/instances, or nothing.
status_of() {
	api_get /v1/instances | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if i.get("id") == sys.argv[1]:
        print(i.get("status", ""))
' "$1" 2>/dev/null
}

# boot ACCEL VMDIR LABEL
boot() {
	accel=$1
	vm=$2
	label=$3
	case "$accel" in
	kvm)
		if [ ! -w /dev/kvm ]; then
			echo "skip: kvm (no usable /dev/kvm)"
			return
		fi
		# kvm-pvm (software "KVM" of some nested hosts) cannot emulate what
		# a stock kernel runs (cmpxchg16b, xrstor, int3: "KVM internal
		# error. Suberror: 1"), and crawls through the decompressor first.
		if [ -d /sys/module/kvm_pvm ] && [ -z "${FORCE_KVM:-}" ]; then
			echo "skip: kvm (this host's KVM is kvm-pvm, which cannot boot a stock Linux kernel; FORCE_KVM=1 tries anyway)"
			return
		fi
		# As jetpack's qemu driver: -cpu host/max abort on nested hosts.
		cpu="kvm64,+rdrand,+rdseed"
		;;
	*) cpu=max ;;
	esac
	uuid=$(cat /proc/sys/kernel/random/uuid)
	want=$(python3 -c 'import sys, uuid; print(uuid.UUID(sys.argv[1]).bytes_le.hex())' "$uuid")
	http=$(free_port)
	console="$work/console-$label.log"
	: >"$console"
	start=$(now_ms)
	qemu-system-x86_64 -nodefaults -no-user-config -display none \
		-accel "$accel" -cpu "$cpu" -m 256 -uuid "$uuid" \
		-chardev "file,id=console,path=$console" -serial chardev:console -no-reboot \
		-kernel "$vm/vmlinuz" -initrd "$vm/initrd.gz" \
		-append "console=ttyS0 quiet jetpack.uplink=https://10.0.0.1:$uplink jetpack.token=$token" \
		-netdev "user,id=n0,net=10.0.0.0/24,host=10.0.0.1,hostfwd=tcp:127.0.0.1:$http-10.0.0.42:80" \
		-device virtio-net-pci,netdev=n0,romfile= \
		>"$work/qemu-$label.log" 2>&1 </dev/null &
	qemu_pid=$!
	deadline=$(($(date +%s) + limit))
	# qemu pauses, not exits, on a KVM internal error: stop waiting then.
	alive() {
		kill -0 "$qemu_pid" 2>/dev/null && ! grep -q "KVM internal error" "$work/qemu-$label.log"
	}

	line="jetpack test vm: id=$want"
	until grep -aq "^$line" "$console"; do
		if ! alive || [ "$(date +%s)" -ge "$deadline" ]; then
			break
		fi
		sleep 0.1
	done
	if grep -aq "^$line" "$console"; then
		ok "$label: console says id=$want for -uuid $uuid ($(($(now_ms) - start)) ms)"
	else
		bad "$label: no '$line' on the console: $(grep -a 'jetpack test vm' "$console" | head -3) $(tail -c 300 "$work/qemu-$label.log")"
	fi

	until [ "$(status_of "$want")" = connected ]; do
		if ! alive || [ "$(date +%s)" -ge "$deadline" ]; then
			break
		fi
		sleep 0.2
	done
	if [ "$(status_of "$want")" = connected ]; then
		ok "$label: $want connected in /v1/instances, $(($(now_ms) - start)) ms after qemu started"
	else
		bad "$label: $want not connected (status '$(status_of "$want")'); console: $(grep -a 'jetpack\|sim' "$console" | tail -5)"
	fi

	case "$label" in
	*-verified-tls)
		if grep -aq "verifying the hangar's certificate" "$console"; then
			ok "$label: the guest verified the hangar's certificate (--certs)"
		else
			bad "$label: the guest did not say it verifies the certificate"
		fi
		;;
	esac

	page=""
	until page=$(curl -s -m 2 "http://127.0.0.1:$http/") && [ -n "$page" ]; do
		if ! alive || [ "$(date +%s)" -ge "$deadline" ]; then
			break
		fi
		sleep 0.2
	done
	case "$page" in
	*"id=$want"*) ok "$label: httpd answers through the hostfwd: $page" ;;
	*) bad "$label: httpd page '$page' does not name $want" ;;
	esac

	kill "$qemu_pid" 2>/dev/null
	wait "$qemu_pid" 2>/dev/null
	qemu_pid=""
}

for accel in $accels; do
	boot "$accel" "$out" "$accel"
done

# The guest told to trust the hangar's certificate (and so verifying it):
# the VM rebuilt with CA_PEM, booted once, with the first accelerator.
first=${accels%% *}
if [ -n "$first" ] && [ -s "$work/jetpack/hangar-cert.pem" ]; then
	if CA_PEM="$work/jetpack/hangar-cert.pem" "$here/make.sh" "$work/vm-ca" "$jetpack" >/dev/null; then
		boot "$first" "$work/vm-ca" "$first-verified-tls"
	else
		bad "make.sh with CA_PEM failed"
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
