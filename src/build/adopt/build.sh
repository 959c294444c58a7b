#!/bin/sh
# jetpack's build entry point for an adopted stock `includeos/builder`
# image (one without /jetpack/builder.json). jetpack writes it into the
# build pod as /build/in/jetpack-build and runs it with the image's /bin/sh;
# it lives in src/build/adopt/ and follows the builder contract: inputs in
# /build/in, exactly one ELF into /build/out, non-zero on error.
#
# It does what the image's own ENTRYPOINT and CMD did for Mothership:
# the entrypoint picks CC/CXX = clang-VERSION from the version named in
# /install_dependencies_linux.sh; the CMD, in the service folder, copies
# IncludeOS's chainloader into build/, runs `cmake ..` and `make`. The
# service is Starbase (IncludeOS's lib/uplink/starbase, what Mothership
# built), with the build's nacl.txt and config.json beside its sources, the
# NaCl transpiled by IncludeOS's NaCl.py first so that a NaCl the
# reference rejects fails the build with its `line L:C message`.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
export INCLUDEOS_PREFIX=/usr/local
STARBASE_SRC=/root/IncludeOS/lib/uplink/starbase
NACL_PY="$INCLUDEOS_PREFIX/includeos/nacl/NaCl.py"

deps=/install_dependencies_linux.sh
v=$(sed -n 's/^CLANG_VERSION_MIN_REQUIRED="\([^"]*\)".*/\1/p' "$deps" 2>/dev/null | head -n 1)
[ -n "$v" ] || v=$(sed -n 's/^CLANG_VERSION="\([^"]*\)".*/\1/p' "$deps" 2>/dev/null | head -n 1)
# The entrypoint's own fallback when the file names no version.
[ -n "$v" ] || v=3.8
export CC="clang-$v" CXX="clang++-$v"

for f in nacl.txt config.json; do
    [ -f "/build/in/$f" ] || { echo "build: missing /build/in/$f" >&2; exit 2; }
done

# build.json is one flat object written by jetpack; sed reads a string
# field of it (null or absent gives "").
param() {
    [ -f /build/in/build.json ] || return 0
    tr -d '\n' < /build/in/build.json |
        sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"\\\\]*\)\".*/\1/p"
}
service=$(param service)
name=$(param name)
[ -n "$service" ] || service=Starbase
[ "$service" = Starbase ] || { echo "build: an includeos/builder image builds Starbase, not '$service'" >&2; exit 3; }
# Only a plain file name may name the output.
case "$name" in ''|.*|*[!A-Za-z0-9._-]*) name=image.elf ;; esac

version=$(head -n 1 /ios_version.txt 2>/dev/null || echo unknown)
work=$(mktemp -d /tmp/starbase.XXXXXX)
cp -R "$STARBASE_SRC/." "$work/"
cp /build/in/nacl.txt "$work/nacl.txt"
cp /build/in/config.json "$work/config.json"

echo "NaCl.py: transpiling the NaCl (IncludeOS $version)"
status=0
python "$NACL_PY" "$work/nacl_content.cpp" < /build/in/nacl.txt > "$work/nacl.log" 2>&1 || status=$?
cat "$work/nacl.log"
# NaCl.py exits 1 with its error; ANTLR's syntax errors leave status 0
# but still print `line L:C message`: either is a NaCl it rejects.
if [ "$status" -ne 0 ] || grep -q '^line [0-9][0-9]*:[0-9][0-9]* ' "$work/nacl.log"; then
    echo "build: NaCl.py rejected the NaCl (status $status)" >&2
    exit 4
fi

mkdir -p "$work/build"
cd "$work/build"
chainloader=$(find "$INCLUDEOS_PREFIX/includeos" -name chainloader -type f 2>/dev/null | head -n 1)
[ -z "$chainloader" ] || cp "$chainloader" chainloader
echo "cmake (CC=$CC)"
cmake ..
jobs=$(nproc 2>/dev/null || echo 2)
echo "make -j$jobs"
make -j"$jobs"
# IncludeOS's post.service.cmake writes the binary's name here.
binary=$(cat binary.txt)
case "$binary" in ''|*/*) echo "build: binary.txt names no file in the build folder" >&2; exit 1 ;; esac
[ -f "$binary" ] || { echo "build: cmake named $binary but there is no such file" >&2; exit 1; }
cp "$binary" "/build/out/$name"
echo "built /build/out/$name ($(wc -c < "/build/out/$name") bytes)"
