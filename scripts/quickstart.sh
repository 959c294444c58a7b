#!/usr/bin/env bash
# From a fresh machine to a pod: builds jetpack, initialises it with the
# embedded defaults (dir driver unless a pool for root.zfs exists, SQLite
# under /var/jetpack), imports the busybox test base and runs a pod in it.
# Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ -f /etc/debian_version ] && ! command -v busybox >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static iproute2 xz-utils
fi
cargo build --release --locked
jetpack=target/release/jetpack
images=/var/jetpack-images
mkdir -p "$images"
[ -f "$images/busybox.tar.xz" ] || images/busybox/build.sh "$images/busybox.tar.xz"
"$jetpack" init
"$jetpack" base show busybox >/dev/null 2>&1 || "$jetpack" base import "$images/busybox.tar.xz" --name busybox
"$jetpack" base list
"$jetpack" pod run --rm busybox -- /bin/echo hi
