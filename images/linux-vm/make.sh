#!/bin/sh
# Builds the jetpack test VM: OUTDIR/vmlinuz and OUTDIR/initrd.gz, from
# Debian's cloud kernel and busybox-static (downloaded with apt-get
# download, unpacked with dpkg-deb, never installed) and a jetpack binary.
#
#   images/linux-vm/make.sh OUTDIR [JETPACK_BIN]
#
# JETPACK_BIN defaults to $CARGO_TARGET_DIR/release/jetpack, else
# target/release/jetpack. KERNEL_PKG pins the kernel package (default: the
# one linux-image-cloud-amd64 depends on now). CA_PEM=FILE puts FILE at
# /etc/jetpack/ca.pem, and the guest then verifies the hangar's
# certificate against it (--certs). The same inputs give the same bytes:
# fixed timestamps and owners, sorted archive, gzip -n.
set -eu

usage() {
	echo "usage: $0 OUTDIR [JETPACK_BIN]" >&2
	exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
jetpack=${2:-${CARGO_TARGET_DIR:-$repo/target}/release/jetpack}
[ -x "$jetpack" ] || {
	echo "$0: no jetpack binary at $jetpack (cargo build --release, or pass its path)" >&2
	exit 1
}
for tool in apt-get apt-cache dpkg-deb strip gzip python3 ldd; do
	command -v "$tool" >/dev/null || {
		echo "$0: needs $tool" >&2
		exit 1
	}
done

work=$(mktemp -d "${TMPDIR:-/tmp}/jetpack-linux-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get download drops privileges to _apt, which must be able to write.
chmod 755 "$work"

# linux-image-cloud-amd64 is a metapackage; the kernel is in the versioned
# package it depends on, which changes with Debian's updates: KERNEL_PKG
# pins one (e.g. linux-image-6.1.0-57-cloud-amd64) for the same bytes later.
kpkg=${KERNEL_PKG:-}
[ -n "$kpkg" ] || kpkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
[ -n "$kpkg" ] || {
	echo "$0: linux-image-cloud-amd64 depends on no versioned kernel (apt-get update?)" >&2
	exit 1
}
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" busybox-static >/dev/null)
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
kver=${kpkg#linux-image-}
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"

root="$work/root"
mkdir -p "$root/bin" "$root/lib/modules" "$root/etc/jetpack" "$root/proc" "$root/sys" \
	"$root/dev" "$root/tmp" "$root/www"
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 755 "$here/init" "$root/init"

# The network drivers and what they need, dependencies first: the
# `depends=` of each module's .modinfo (no modinfo/depmod on the host).
mods="$work/kernel/lib/modules/$kver/kernel"
: >"$root/lib/modules/order"
add_module() {
	# Locals: the function recurses.
	local name file deps dep
	name=$1
	grep -qx "$name.ko" "$root/lib/modules/order" && return 0
	file=$(find "$mods" -name "$name.ko" | head -n 1)
	[ -n "$file" ] || {
		echo "$0: kernel $kver has no module $name" >&2
		exit 1
	}
	deps=$(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | tr ',' ' ')
	for dep in $deps; do
		add_module "$dep"
	done
	cp "$file" "$root/lib/modules/$name.ko"
	echo "$name.ko" >>"$root/lib/modules/order"
}
for m in virtio_pci virtio_net; do
	add_module "$m"
done

# jetpack without its debug information (most of its size), and the shared
# libraries and loader ldd names, at the paths it names.
strip --strip-all -o "$root/bin/jetpack" "$jetpack"
for lib in $(ldd "$jetpack" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
# Where the loader is looked for (/lib64 → usr/lib64 on merged-/usr hosts).
if [ ! -e "$root/lib64/ld-linux-x86-64.so.2" ]; then
	mkdir -p "$root/lib64"
	cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
fi
if [ -n "${CA_PEM:-}" ]; then
	cp "$CA_PEM" "$root/etc/jetpack/ca.pem"
fi
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"

# A newc archive, written here rather than with cpio(1) so that inode
# numbers, owners and times are fixed and the bytes reproducible.
python3 - "$root" "$work/initrd" <<'PY'
import os, stat, sys
root, dest = sys.argv[1], sys.argv[2]
paths = []
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        paths.append(os.path.relpath(os.path.join(d, n), root))
paths.sort()
def entry(out, ino, name, mode, data, nlink):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * (-(110 + len(name_b)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))
with open(dest, "wb") as out:
    for ino, p in enumerate(paths, 1):
        full = os.path.join(root, p)
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            entry(out, ino, p, 0o120777, os.readlink(full).encode(), 1)
        elif stat.S_ISDIR(st.st_mode):
            entry(out, ino, p, 0o040755, b"", 2)
        else:
            perm = 0o755 if st.st_mode & 0o111 else 0o644
            with open(full, "rb") as f:
                entry(out, ino, p, 0o100000 | perm, f.read(), 1)
    entry(out, 0, "TRAILER!!!", 0, b"", 1)
PY
gzip -n -9 <"$work/initrd" >"$out/initrd.gz"

echo "kernel: $kpkg ($(wc -c <"$out/vmlinuz") bytes)"
echo "initrd: $(wc -c <"$out/initrd.gz") bytes gzipped, $(wc -c <"$work/initrd") unpacked"
echo "modules: $(tr '\n' ' ' <"$root/lib/modules/order")"
