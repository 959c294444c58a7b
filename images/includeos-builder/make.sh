#!/usr/bin/env bash
# The recipe for a real IncludeOS builder for jetpack (see README.md beside
# this file). NOT RUN in jetpack's CI: it needs a FreeBSD host (route
# "native") or Docker Hub and a container tool (route "overlay"), and the
# network either way. What was and was not tried is in README.md.
#
#   make.sh native  OUTDIR [IOS_TAG]  a FreeBSD base with IncludeOS built in:
#                                     OUTDIR/includeos-builder-VERSION.tar.xz,
#                                     its manifest beside it (.json, a `local`
#                                     provider) and OUTDIR/index.json (`http`)
#   make.sh overlay OUTDIR SRC_IMAGE  a build context (Dockerfile + jetpack/)
#                                     adding /jetpack/ to a Linux image such as
#                                     includeos/builder:TAG (for `oci`)
#   make.sh scripts OUTDIR native|overlay
#                                     only the entry points, to read or check
#
# Env (native): FREEBSD_RELEASE (default: the host's), IOS_REPO (default:
#   upstream), JOBS (default: hw.ncpu), PKGS (the pkg(8) packages to add).
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
IOS_REPO=${IOS_REPO:-https://github.com/includeos/IncludeOS.git}
# The v0.13-era tree: cmake/post.service.cmake there embeds the service's
# config.json as section .config and runs NaCl.py on its nacl.txt (check
# this for any other tag you pick; older ones have neither).
IOS_TAG_DEFAULT=v0.13.0
# Build dependencies of IncludeOS v0.12..v0.13 (etc/install_build_requirements.sh
# lists their Ubuntu names): clang/llvm, cmake, nasm, python with pystache and
# the antlr4 runtime for NaCl.py, git, GNU make. NaCl.py of that era is
# Python 2 (print statements, iteritems): python27 may no longer be in the
# FreeBSD package set; then it has to come from an older ports tree or be
# built from source, which this recipe does not do.
PKGS=${PKGS:-"llvm15 cmake nasm gmake git-lite bash python27 py27-pip ca_root_nss"}

die() { echo "make.sh: $*" >&2; exit 1; }
usage() {
    echo "usage: make.sh native OUTDIR [IOS_TAG] | overlay OUTDIR SRC_IMAGE | scripts OUTDIR native|overlay" >&2
    exit 64
}

TMPS=()
MOUNTS=()
cleanup() {
    local i
    # Unmount in reverse order; only what this script mounted.
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[$i]}" 2>/dev/null || true
    done
    [ ${#TMPS[@]} -eq 0 ] || rm -rf -- "${TMPS[@]}"
}
trap cleanup EXIT

# ---------------------------------------------------------------- entry points

# The manifest jetpack reads from the base (src/build/manifest.rs).
write_manifest() { # FILE NAME VERSION VCS_REF BUILD_DATE VENDOR
    printf '{"name": "%s", "version": "%s", "vcsRef": "%s", "buildDate": "%s", "vendor": "%s", "services": ["Starbase"], "build": ["/jetpack/build"], "validate": ["/jetpack/validate"]}\n' \
        "$2" "$3" "$4" "$5" "$6" > "$1"
}

# /jetpack/build: Starbase's sources with the build's nacl.txt and
# config.json in place of its own, cmake + make, the ELF to /build/out.
# ENV_SETUP is shell run first (the compilers and the IncludeOS prefix
# differ between the two routes).
write_build() { # FILE ENV_SETUP STARBASE_SRC
    {
        echo '#!/bin/sh'
        echo '# jetpack build entry point for IncludeOS Starbase (made by'
        echo '# images/includeos-builder/make.sh). Contract: /build/in -> one ELF in /build/out.'
        echo 'set -eu'
        printf '%s\n' "$2"
        printf 'STARBASE_SRC=%s\n' "$3"
        cat <<'BUILD'
for f in nacl.txt config.json; do
    [ -f "/build/in/$f" ] || { echo "build: missing /build/in/$f" >&2; exit 2; }
done
# build.json is one flat object; sed reads a string field of it.
param() {
    [ -f /build/in/build.json ] || return 0
    tr -d '\n' < /build/in/build.json |
        sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"\\\\]*\)\".*/\1/p"
}
service=$(param service)
name=$(param name)
[ -n "$service" ] || service=Starbase
[ "$service" = Starbase ] || { echo "build: this builder builds Starbase, not '$service'" >&2; exit 3; }
case "$name" in ''|.*|*[!A-Za-z0-9._-]*) name=image.elf ;; esac

work=$(mktemp -d /tmp/starbase.XXXXXX)
cp -R "$STARBASE_SRC/." "$work/"
# post.service.cmake picks both up from the service's source dir.
cp /build/in/nacl.txt "$work/nacl.txt"
cp /build/in/config.json "$work/config.json"
mkdir "$work/build"
cd "$work/build"
echo "configuring Starbase (IncludeOS $(cat /jetpack/includeos-version 2>/dev/null || echo unknown))"
cmake -DCMAKE_BUILD_TYPE=Release ..
echo "compiling and linking"
make -j"$JOBS"
# post.service.cmake writes the binary's name here.
binary=$(cat binary.txt)
[ -f "$binary" ] || { echo "build: cmake said $binary but there is no such file" >&2; exit 1; }
cp "$binary" "/build/out/$name"
echo "built /build/out/$name ($(wc -c < "/build/out/$name") bytes)"
BUILD
    } > "$1"
    chmod 0755 "$1"
}

# /jetpack/validate: IncludeOS's own NaCl transpiler. NaCl.py reports its
# errors with sys.exit("line L:C message") (stderr, status 1); ANTLR's
# syntax errors go to stderr as "line L:C message" too, but leave the
# status 0, so the verdict is "any such line, or a non-zero status".
write_validate() { # FILE ENV_SETUP
    {
        echo '#!/bin/sh'
        echo '# jetpack validate entry point: NaCl.py on /build/in/nacl.txt (made by'
        echo '# images/includeos-builder/make.sh). Prints "line L:C message"; exit 0 valid, 1 invalid.'
        printf '%s\n' "$2"
        cat <<'VALIDATE'
nacl=/build/in/nacl.txt
[ -f "$nacl" ] || { echo "validate: missing $nacl" >&2; exit 2; }
if ! grep -q '[^[:space:]]' "$nacl"; then
    echo "line 1:0 Empty NaCl"
    exit 1
fi
out=/tmp/nacl-validate.$$
status=0
"$PYTHON" "$INCLUDEOS_PREFIX/includeos/nacl/NaCl.py" /tmp/nacl_content.$$.cpp \
    < "$nacl" > "$out" 2>&1 || status=$?
rm -f /tmp/nacl_content.$$.cpp
grep -E '^line [0-9]+:[0-9]+ ' "$out" > "$out.lines" || true
cat "$out.lines"
if [ -s "$out.lines" ]; then
    rm -f "$out" "$out.lines"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    # A traceback, not a diagnostic: still an invalid verdict, with its last line.
    echo "line 1:0 NaCl.py failed (status $status): $(tail -n 1 "$out")"
    rm -f "$out" "$out.lines"
    exit 1
fi
rm -f "$out" "$out.lines"
exit 0
VALIDATE
    } > "$1"
    chmod 0755 "$1"
}

# Shell that each entry point runs first, per route.
env_native() {
    cat <<'ENV'
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export INCLUDEOS_PREFIX=/usr/local
export CC=/usr/local/bin/clang15 CXX=/usr/local/bin/clang++15
PYTHON=/usr/local/bin/python2.7
JOBS=$(sysctl -n hw.ncpu 2>/dev/null || echo 2)
ENV
}

# Mothership's images set CC/CXX in their ENTRYPOINT (entrypoint.sh, from
# the clang version named in /install_dependencies_linux.sh); jetpack runs
# the manifest's argv, not the ENTRYPOINT, so the same is done here.
env_overlay() {
    cat <<'ENV'
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export INCLUDEOS_PREFIX=/usr/local
v=$(sed -n 's/^CLANG_VERSION_MIN_REQUIRED="\([^"]*\)".*/\1/p' /install_dependencies_linux.sh 2>/dev/null | head -n 1)
[ -n "$v" ] || v=$(sed -n 's/^CLANG_VERSION="\([^"]*\)".*/\1/p' /install_dependencies_linux.sh 2>/dev/null | head -n 1)
[ -n "$v" ] || v=5.0
export CC=clang-$v CXX=clang++-$v
PYTHON=python
JOBS=$(nproc 2>/dev/null || echo 2)
ENV
}

write_scripts() { # DIR ROUTE
    local dir=$1 route=$2 setup starbase
    mkdir -p "$dir"
    case "$route" in
        native) setup=$(env_native); starbase=/usr/local/src/IncludeOS/lib/uplink/starbase ;;
        overlay) setup=$(env_overlay); starbase=/root/IncludeOS/lib/uplink/starbase ;;
        *) usage ;;
    esac
    write_build "$dir/build" "$setup" "$starbase"
    write_validate "$dir/validate" "$setup"
}

# ------------------------------------------------------------- route: native

native() { # OUTDIR TAG
    local out=$1 tag=$2 work root src version vcs_ref build_date id archive
    [ "$(uname -s)" = FreeBSD ] || die "the native route runs on FreeBSD (it uses pkg -r and chroot)"
    [ "$(id -u)" = 0 ] || die "run as root (pkg -r, chroot, mount)"
    for tool in pkg git fetch tar sha256 xz; do
        command -v "$tool" >/dev/null || die "$tool is missing (pkg install git-lite for git)"
    done
    work=$(mktemp -d)
    TMPS+=("$work")
    root="$work/root"
    mkdir -p "$root" "$out"

    # 1. FreeBSD's userland from the release's base.txz, checked against its
    #    MANIFEST: the same recipe as the plain FreeBSD base.
    RELEASE=${FREEBSD_RELEASE:-} "$here/../freebsd-base/build.sh" "$work/base.tar"
    tar -xpf "$work/base.tar" -C "$root"

    # 2. The build dependencies, installed into the root by the host's pkg
    #    (ABI pinned to the root's release, not the host's).
    local major abi
    major=$(sed -n 's/^USERLAND_VERSION="\([0-9]*\)\..*/\1/p' "$root/bin/freebsd-version")
    abi="FreeBSD:${major}:amd64"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    # shellcheck disable=SC2086 # PKGS is a word list on purpose
    ABI=$abi pkg -r "$root" install -y $PKGS
    # NaCl.py's Python 2 modules (the IncludeOS docker images pip-install
    # the same two).
    mount -t devfs devfs "$root/dev"
    MOUNTS+=("$root/dev")
    chroot "$root" /usr/local/bin/python2.7 -m pip install pystache antlr4-python2-runtime

    # 3. IncludeOS at TAG, with its tags so that git describe names it, and
    #    its submodules; then what upstream's install.sh does on Linux:
    #    cmake the OS, make, make install into INCLUDEOS_PREFIX (/usr/local).
    #    The OS's own target libraries (libc++, musl/newlib) come from the
    #    prebuilt bundle that its cmake downloads: they are for the unikernel
    #    target, not the host, so a FreeBSD host can use them; the host tools
    #    (vmbuild, elf_syms, diskbuilder) are compiled here with clang.
    src="$root/usr/local/src/IncludeOS"
    git clone "$IOS_REPO" "$src"
    git -C "$src" checkout --detach "$tag"
    git -C "$src" submodule update --init --recursive
    version=$(git -C "$src" describe --tags)
    vcs_ref=$(git -C "$src" rev-parse --short HEAD)
    build_date=$(TZ=UTC git -C "$src" log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd)
    chroot "$root" /bin/sh -c '
        set -eu
        export INCLUDEOS_PREFIX=/usr/local CC=/usr/local/bin/clang15 CXX=/usr/local/bin/clang++15
        mkdir -p /usr/local/src/IncludeOS/build
        cd /usr/local/src/IncludeOS/build
        cmake .. -DCMAKE_INSTALL_PREFIX=/usr/local -Dtests=OFF
        gmake -j"$(sysctl -n hw.ncpu)"
        gmake install
    '
    umount "$root/dev"
    MOUNTS=()
    # The checkout stays (Starbase's sources are in it) but not its objects.
    rm -rf "$src/build" "$src/.git"
    rm -f "$root/etc/resolv.conf"

    # 4. The contract: manifest and entry points.
    mkdir -p "$root/jetpack" "$root/build/in" "$root/build/out"
    echo "$version" > "$root/jetpack/includeos-version"
    write_manifest "$root/jetpack/builder.json" includeos/builder "$version" "$vcs_ref" "$build_date" IncludeOS
    write_scripts "$root/jetpack" native

    # 5. The archive for a `local` provider (ID.tar.xz + ID.json) and an
    #    index for an `http` one. Bob ids are names: no '/', '..' or '+'.
    id="includeos-builder-$(printf '%s' "$version" | tr -c 'A-Za-z0-9._-' '-')"
    archive="$out/$id.tar.xz"
    tar --numeric-owner -cJf "$archive" -C "$root" .
    cp "$root/jetpack/builder.json" "$out/$id.json"
    local size sha
    size=$(stat -f %z "$archive")
    sha=$(sha256 -q "$archive")
    # One entry per run; merge by hand to serve several versions.
    sed -e 's/}$//' "$out/$id.json" | tr -d '\n' > "$work/entry"
    printf ', "id": "%s", "url": "%s", "size": %s, "sha256": "%s"}' \
        "$id" "$id.tar.xz" "$size" "$sha" >> "$work/entry"
    { printf '{"bobs": ['; cat "$work/entry"; printf ']}\n'; } > "$out/index.json"
    echo "$archive ($size bytes, sha256 $sha), IncludeOS $version"
}

# ------------------------------------------------------------ route: overlay

overlay() { # OUTDIR SRC_IMAGE
    local out=$1 src=$2
    mkdir -p "$out/jetpack"
    write_scripts "$out/jetpack" overlay
    # The manifest cannot be known before the image is looked at: the
    # Dockerfile's RUN fills it in from /ios_version.txt, which Mothership's
    # Dockerfile writes with `git describe --tags`. The label values must be
    # given again at build time (see README.md): Docker cannot read a
    # parent's labels into a RUN.
    cat > "$out/Dockerfile" <<DOCKERFILE
# One layer over $src: /jetpack/ for jetpack's builder contract.
FROM $src
COPY jetpack/ /jetpack/
ARG VCS_REF=unknown
ARG BUILD_DATE=1970-01-01T00:00:00Z
RUN mkdir -p /build/in /build/out \\
 && version=\$(cat /ios_version.txt 2>/dev/null || echo unknown) \\
 && echo "\$version" > /jetpack/includeos-version \\
 && printf '{"name": "includeos/builder", "version": "%s", "vcsRef": "%s", "buildDate": "%s", "vendor": "IncludeOS", "services": ["Starbase"], "build": ["/jetpack/build"], "validate": ["/jetpack/validate"]}\\n' \\
      "\$version" "\$VCS_REF" "\$BUILD_DATE" > /jetpack/builder.json
LABEL io.jetpack.services="Starbase"
DOCKERFILE
    echo "$out: docker build -t REGISTRY/jetpack/includeos-builder:TAG --build-arg VCS_REF=... --build-arg BUILD_DATE=... $out"
}

case "${1:-}" in
    native)
        [ $# -ge 2 ] && [ $# -le 3 ] || usage
        native "$2" "${3:-$IOS_TAG_DEFAULT}"
        ;;
    overlay)
        [ $# -eq 3 ] || usage
        overlay "$2" "$3"
        ;;
    scripts)
        [ $# -eq 3 ] || usage
        write_scripts "$2" "$3"
        ;;
    *) usage ;;
esac
