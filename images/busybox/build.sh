#!/bin/sh
# Builds a small base: a root file system with a static busybox (a shell and
# coreutils), /etc/passwd and group, and the directories a pod expects.
# Usage: images/busybox/build.sh OUTPUT.tar[.gz|.xz|.zst]
# Needs: a static busybox (Debian: busybox-static; FreeBSD: see
# images/freebsd-base/build.sh for a base made from base.txz instead), tar.
set -eu

out=${1:?usage: $0 OUTPUT.tar[.gz|.xz|.zst]}
busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || { echo "$0: no busybox found (install busybox-static)" >&2; exit 1; }
if command -v file >/dev/null 2>&1 && ! file -L "$busybox" | grep -q 'statically linked'; then
    echo "$0: $busybox is not statically linked (install busybox-static)" >&2
    exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" \
         "$root/root" "$root/tmp" "$root/proc" "$root/dev" "$root/var/tmp" "$root/jetpack"
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
# One link per applet, relative so that it resolves inside any root.
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] && continue
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo "busybox $("$busybox" | head -n1 | cut -d' ' -f2)" > "$root/jetpack/base-release"

case "$out" in
    *.tar.gz|*.tgz) compress=gzip ;;
    *.tar.xz|*.txz) compress=xz ;;
    *.tar.zst|*.tzst) compress=zstd ;;
    *.tar) compress=cat ;;
    *) echo "$0: OUTPUT must end in .tar, .tar.gz, .tar.xz or .tar.zst" >&2; exit 1 ;;
esac
tmp="$out.partial.$$"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . | $compress > "$tmp"
mv "$tmp" "$out"
echo "$out"
