#!/usr/bin/env bash
# Type-checks the whole crate (lib, bin, tests, benches) for
# x86_64-unknown-freebsd from a Linux host, with the FreeBSD-only features on.
# Needs Debian's rustc-web, cargo-web and rust-web-src: a rustc whose std
# sources can be built for FreeBSD with -Zbuild-std (DESIGN.md, "Testing
# facilities on these machines"). Nothing is linked, so no FreeBSD libraries
# are needed; zfs-core-sys's build script still asks pkg-config for
# libzfs_core, which a stub .pc file answers.
#
# Usage: scripts/check-freebsd.sh [extra cargo check arguments]
# Env:   FREEBSD_RUSTC, FREEBSD_CARGO (default /usr/bin/rustc, /usr/bin/cargo;
#        not RUSTC and CARGO, which cargo itself sets for the processes it runs),
#        CLIPPY=0 to skip clippy even when a matching clippy-driver exists.
set -euo pipefail

cd "$(dirname "$0")/.."

rustc=${FREEBSD_RUSTC:-/usr/bin/rustc}
cargo=${FREEBSD_CARGO:-/usr/bin/cargo}
target=x86_64-unknown-freebsd
features=zfs,freebsd-integration

for tool in "$rustc" "$cargo"; do
    if [ ! -x "$tool" ]; then
        echo "$0: $tool not found (apt-get install rustc-web cargo-web rust-web-src)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/libzfs_core.pc" <<'PC'
Name: libzfs_core
Description: stub for type-checking jetpack for FreeBSD (nothing is linked)
Version: 2.2.0
Libs: -lzfs_core -lnvpair
Cflags:
PC

export RUSTC_BOOTSTRAP=1
export RUSTC="$rustc"
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_PATH="$tmp"
# Its own target dir: the host build (rustup's toolchain) and this one would
# otherwise rebuild each other's artifacts.
export CARGO_TARGET_DIR=target/freebsd

common=(-Zbuild-std=std,panic_abort,test --target "$target" --all-targets --features "$features")

echo "check: $("$rustc" --version), target $target, features $features" >&2
"$cargo" check "${common[@]}" "$@"

# Clippy only with a clippy-driver of the very same compiler version: a
# different one cannot use the std built above.
if [ "${CLIPPY:-1}" != 0 ] && command -v clippy-driver >/dev/null 2>&1; then
    want=$("$rustc" --version | cut -d' ' -f2)
    have=$(clippy-driver --rustc --version 2>/dev/null | cut -d' ' -f2 || true)
    if [ "$want" = "$have" ]; then
        echo "clippy: $(clippy-driver --version)" >&2
        RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver) "$cargo" check "${common[@]}" "$@"
    else
        echo "clippy: skipped for $target (clippy-driver is for rustc ${have:-?}, not $want)" >&2
    fi
fi
