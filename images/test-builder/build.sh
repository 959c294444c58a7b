#!/bin/sh
# The test builder's build entry point, /jetpack/build (contract: README.md).
# Inputs in /build/in; exactly one ELF into /build/out; non-zero on error.
#
# A NaCl line "// test: HOOK" (the first such line) makes the build
# misbehave on purpose, so that tests can see how jetpack takes it:
#   exit N | no-output | not-elf | symlink | two-outputs | sleep
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
echo "assembling $service"
as --32 -o /tmp/kernel.o /jetpack/kernel.S
echo "linking $out"
ld -m elf_i386 --no-warn-rwx-segments -T /jetpack/kernel.ld -o "$out" /tmp/kernel.o
rm -f /tmp/kernel.o /tmp/jetpack-service
echo "built $out ($(wc -c < "$out") bytes)"
