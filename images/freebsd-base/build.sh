#!/bin/sh
# Builds a FreeBSD base for pods from a release's base.txz: fetched from
# download.freebsd.org (or the archive, for releases past their end of life),
# checked against the sha256 in the release's MANIFEST, and written as a root
# file system tarball for `jetpack base import`, with /jetpack/base-release
# saying what it is (like images/busybox/build.sh).
#
# Usage: images/freebsd-base/build.sh OUTPUT.tar[.gz|.xz|.zst]
# Env:   RELEASE   release to fetch (default: this host's, e.g. 14.1-RELEASE)
#        ARCH      MACHINE/MACHINE_ARCH (default: this host's, e.g. amd64/amd64)
#        DISTSITE  where releases/ is (default: https://download.freebsd.org,
#                  then http://ftp-archive.freebsd.org/pub/FreeBSD-Archive/old-releases)
#        BASE_TXZ  a base.txz already at hand (still checked against MANIFEST)
# Needs: fetch(1) or curl, bsdtar (FreeBSD's tar; libarchive-tools elsewhere),
#        sha256(1) or sha256sum.
set -eu

out=${1:?usage: $0 OUTPUT.tar[.gz|.xz|.zst]}
case "$out" in
    *.tar|*.tar.gz|*.tgz|*.tar.xz|*.txz|*.tar.zst|*.tzst) ;;
    *) echo "$0: OUTPUT must end in .tar, .tar.gz, .tar.xz or .tar.zst" >&2; exit 1 ;;
esac

if [ "$(uname -s)" = FreeBSD ]; then
    release=${RELEASE:-$(freebsd-version -u | sed 's/-p[0-9]*$//')}
    arch=${ARCH:-$(uname -m)/$(uname -p)}
    bsdtar=tar
else
    release=${RELEASE:?on a host other than FreeBSD, set RELEASE (e.g. 14.1-RELEASE)}
    arch=${ARCH:-amd64/amd64}
    bsdtar=bsdtar
fi
case "$release" in
    [0-9]*.[0-9]*-RELEASE|[0-9]*.[0-9]*-BETA[0-9]*|[0-9]*.[0-9]*-RC[0-9]*) ;;
    *) echo "$0: $release is not a release (only releases have a MANIFEST to check against)" >&2; exit 1 ;;
esac
command -v "$bsdtar" >/dev/null 2>&1 || { echo "$0: $bsdtar not found" >&2; exit 1; }

download() { # URL FILE
    if command -v fetch >/dev/null 2>&1; then
        fetch -q -o "$2" "$1"
    else
        curl -fsSL -o "$2" "$1"
    fi
}

sha256_of() {
    if command -v sha256 >/dev/null 2>&1; then
        sha256 -q "$1"
    else
        sha256sum "$1" | cut -d' ' -f1
    fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

sites=${DISTSITE:-"https://download.freebsd.org http://ftp-archive.freebsd.org/pub/FreeBSD-Archive/old-releases"}
site=
for s in $sites; do
    if download "$s/releases/$arch/$release/MANIFEST" "$work/MANIFEST" 2>/dev/null; then
        site=$s
        break
    fi
done
[ -n "$site" ] || { echo "$0: no MANIFEST for $release ($arch) at: $sites" >&2; exit 1; }

# MANIFEST: name, sha256, file count, set, description, default (tab-separated).
expected=$(awk -F'\t' '$1 == "base.txz" { print $2 }' "$work/MANIFEST")
case "$expected" in
    [0-9a-f]*) [ ${#expected} -eq 64 ] || expected= ;;
    *) expected= ;;
esac
[ -n "$expected" ] || { echo "$0: no sha256 for base.txz in $site/releases/$arch/$release/MANIFEST" >&2; exit 1; }

if [ -n "${BASE_TXZ:-}" ]; then
    # Absolute: bsdtar opens @archive after its -C below.
    case "$BASE_TXZ" in
        /*) base=$BASE_TXZ ;;
        *) base="$PWD/$BASE_TXZ" ;;
    esac
else
    base="$work/base.txz"
    echo "fetching $site/releases/$arch/$release/base.txz" >&2
    download "$site/releases/$arch/$release/base.txz" "$base"
fi
actual=$(sha256_of "$base")
if [ "$actual" != "$expected" ]; then
    echo "$0: $base: sha256 is $actual, MANIFEST says $expected" >&2
    exit 1
fi

mkdir -p "$work/stamp/jetpack"
echo "FreeBSD $release $arch base.txz sha256:$expected" > "$work/stamp/jetpack/base-release"

tmp="$out.partial.$$"
trap 'rm -rf "$work" "$tmp"' EXIT INT TERM
# bsdtar copies base.txz's entries as they are (@archive) after the stamp;
# -a compresses by OUTPUT's suffix.
"$bsdtar" -a -c -f "$tmp" --uid 0 --gid 0 -C "$work/stamp" jetpack "@$base"
mv "$tmp" "$out"
echo "$out"
