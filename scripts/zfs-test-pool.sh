#!/bin/sh
# Starts zfs-fuse if no ZFS answers and makes (or re-imports) a pool on a
# sparse file, for tests and benchmarks. Idempotent.
# Usage: scripts/zfs-test-pool.sh [POOL [IMAGE [SIZE]]]
set -eu
pool=${1:-jptest}
image=${2:-/var/tmp/jetpack-test-pool.img}
size=${3:-2G}

if ! zpool list -H -o name >/dev/null 2>&1; then
    command -v zfs-fuse >/dev/null || { echo "$0: no ZFS and no zfs-fuse (apt-get install zfs-fuse)" >&2; exit 1; }
    # A pid file left by a daemon that is gone (a reboot, a crash, a start
    # attempted by the package's postinst) makes zfs-fuse refuse to start.
    pidfile=/run/zfs-fuse.pid
    if [ -f "$pidfile" ] && [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" != zfs-fuse ]; then
        rm -f "$pidfile"
    fi
    zfs-fuse --pidfile "$pidfile" || echo "$0: zfs-fuse exited with $?" >&2
    tries=0
    until zpool list -H -o name >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || { echo "$0: zfs-fuse did not start" >&2; exit 1; }
        sleep 0.1
    done
fi
zpool list -H -o name "$pool" >/dev/null 2>&1 && exit 0
if [ -f "$image" ] && zpool import -d "$(dirname "$image")" "$pool" >/dev/null 2>&1; then
    exit 0
fi
rm -f "$image"
truncate -s "$size" "$image"
zpool create -m none "$pool" "$image"
