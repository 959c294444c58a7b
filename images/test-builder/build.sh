#!/bin/sh
# The test builder's build entry point, /jetpack/build (contract: README.md).
# Inputs in /build/in; exactly one ELF into /build/out; non-zero on error.
#
# A NaCl line "// test: HOOK" (the first such line) makes the build
# misbehave on purpose, so that tests can see how jetpack takes it:
#   exit N | no-output | not-elf | symlink | two-outputs | sleep
# or, "// test: elf64", build the same kernel as an ELF64 x86-64 file (its
# code 32-bit, as an IncludeOS x86_64 image is), which qemu boots only
# through the chainloader (images/chainloader).
set -eu

for f in nacl.txt config.json; do
    [ -f "/build/in/$f" ] || { echo "build: missing /build/in/$f" >&2; exit 2; }
done

# build.json is one flat object written by jetpack; sed is enough to read
# a string field of it (null or absent gives "").
param() {
    [ -f /build/in/build.json ] || return 0
    tr -d '\n' < /build/in/build.json |
        sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"\\\\]*\)\".*/\1/p"
}
service=$(param service)
name=$(param name)
# With an MDS (AC_METADATA_URL), the parameters come from the pod's
# annotations there; build.json is only the fallback.
if [ -n "${AC_METADATA_URL:-}" ]; then
    notes=$(wget -q -O - "$AC_METADATA_URL/acMetadata/v1/pod/annotations") ||
        { echo "build: the MDS did not answer" >&2; exit 4; }
    note() {
        printf '%s' "$notes" | tr '}' '\n' |
            sed -n "s/.*\"name\":\"jetpack\/build-$1\",\"value\":\"\([^\"\\]*\)\".*/\1/p"
    }
    service=$(note service)
    name=$(note name)
    echo "parameters from the MDS: service=$service name=$name"
fi
[ -n "$service" ] || service=Starbase
[ "$service" = Starbase ] || { echo "build: this builder builds Starbase, not '$service'" >&2; exit 3; }
# Only a plain file name may name the output; anything else is image.elf.
case "$name" in
    ''|.*|*[!A-Za-z0-9._-]*) name=image.elf ;;
esac
out="/build/out/$name"

hook=$(sed -n 's|^[[:space:]]*//[[:space:]]*test:[[:space:]]*||p' /build/in/nacl.txt | head -n 1)
case "$hook" in
    exit\ *) echo "build: failing on purpose" >&2; exit "${hook#exit }" ;;
    no-output) echo "writing nothing"; exit 0 ;;
    not-elf) echo "not an ELF" > "$out"; exit 0 ;;
    symlink) ln -s /etc/passwd "$out"; exit 0 ;;
    two-outputs) echo a > "$out.1"; echo b > "$out.2"; exit 0 ;;
    sleep) echo "sleeping"; sleep 3600 ;;
esac

echo "nacl: $(wc -c < /build/in/nacl.txt) bytes, config.json: $(wc -c < /build/in/config.json) bytes"
# kernel.S .incbin's this: the service name the kernel prints.
printf '%s' "$service" > /tmp/jetpack-service
# The same source either way: ELF32 (i386) by default; ELF64 (x86-64,
# kernel.S's .code32 still 32-bit code) for "// test: elf64".
if [ "$hook" = elf64 ]; then
    as_mode=--64 ld_emulation=elf_x86_64 layout=/jetpack/kernel64.ld
    echo "ELF64 x86-64 output (// test: elf64): boots through the chainloader"
else
    as_mode=--32 ld_emulation=elf_i386 layout=/jetpack/kernel.ld
fi
echo "assembling $service"
as "$as_mode" -o /tmp/kernel.o /jetpack/kernel.S
echo "linking $out"
ld -m "$ld_emulation" --no-warn-rwx-segments -T "$layout" -o "$out" /tmp/kernel.o
rm -f /tmp/kernel.o /tmp/jetpack-service
echo "built $out ($(wc -c < "$out") bytes)"

# The manifest says this builder signs: the MDS signs the output's sha256
# for this pod; jetpack checks it on collect. (`bad-signature`: a forgery.)
if [ -n "${AC_METADATA_URL:-}" ]; then
    sha=$(sha256sum "$out" | cut -d' ' -f1)
    if [ "$hook" = bad-signature ]; then
        echo "forged" > /build/signature
    else
        wget -q -O /build/signature --post-data "content=$sha" \
            "$AC_METADATA_URL/acMetadata/v1/pod/hmac/sign" ||
            { echo "build: the MDS did not sign" >&2; exit 5; }
    fi
    echo "signed sha256 $sha"
fi
