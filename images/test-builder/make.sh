#!/usr/bin/env bash
# Makes jetpack's test builder: a root file system from Debian's parts
# (busybox-static, and binutils' as and ld with the libraries they load)
# plus this folder's manifest, entry points and test kernel.
#
#   make.sh OUTDIR              OUTDIR/test-builder.tar.gz + test-builder.json
#                               (a `local` bob provider directory)
#   make.sh --oci LAYOUTDIR TAG an OCI image layout holding the same rootfs
#                               as one layer, tagged TAG (the `oci` provider)
#
# Reproducible: fixed manifest fields, sorted tar with fixed mtime and
# owners, gzip without a name or time, so two runs give the same sha256.
# Needs: busybox-static, binutils, tar, gzip (and jq, sha256sum for --oci).
set -euo pipefail
umask 022
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)

# The manifest's fields; fixed so that the output is reproducible.
NAME=jetpack/test-builder
VERSION=v0.1.0-test
VCS_REF=5e1f00d
BUILD_DATE=2026-01-01T00:00:00Z
VENDOR=jetpack
SERVICES=Starbase
MTIME='2026-01-01 00:00Z'
BUSYBOX=/bin/busybox
APPLETS=(sh awk cat mkdir rm ls echo printf grep sed tr wc head test '[' cp mv
         sleep true false env od cut basename dirname expr ln wget sha256sum)

die() { echo "make.sh: $*" >&2; exit 1; }

# Temporary folders, removed however the script ends.
TMPS=()
cleanup() { [ ${#TMPS[@]} -eq 0 ] || rm -rf -- "${TMPS[@]}"; }
trap cleanup EXIT

usage() {
    echo "usage: make.sh OUTDIR | make.sh --oci LAYOUTDIR TAG" >&2
    exit 64
}

check_tools() {
    [ -x "$BUSYBOX" ] || die "$BUSYBOX is missing: apt-get install busybox-static"
    # Debian's dynamic busybox is /bin/busybox too; only the static one runs
    # in a root without libc's loader path set up the same way.
    if command -v file >/dev/null && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
        die "$BUSYBOX is not statically linked: apt-get install busybox-static"
    fi
    # The list is read whole: grep -q stopping early would be a SIGPIPE
    # for busybox, a failure under pipefail.
    local list applet
    list=$("$BUSYBOX" --list)
    for applet in "${APPLETS[@]}"; do
        grep -qxF -- "$applet" <<<"$list" || die "$BUSYBOX has no $applet applet"
    done
    for tool in as ld; do
        command -v "$tool" >/dev/null || die "$tool is missing: apt-get install binutils"
    done
    for tool in ldd tar gzip "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing"
    done
}

manifest() {
    printf '{"name": "%s", "version": "%s", "vcsRef": "%s", "buildDate": "%s", "vendor": "%s", "services": ["%s"], "build": ["/jetpack/build"], "validate": ["/jetpack/validate"], "signs": true}\n' \
        "$NAME" "$VERSION" "$VCS_REF" "$BUILD_DATE" "$VENDOR" "$SERVICES"
}

# Copies the file behind PROGRAM (Debian's as and ld are symlinks to
# x86_64-linux-gnu-as and ld.bfd) to ROOT/usr/bin/NAME, and every library
# it loads, the dynamic loader included, at the same absolute path.
copy_program() {
    local root=$1 program=$2 name=$3 real lib
    real=$(readlink -f "$(command -v "$program")")
    cp "$real" "$root/usr/bin/$name"
    chmod 0755 "$root/usr/bin/$name"
    # ldd prints "libx.so => /path (addr)" and "/lib64/ld-linux... (addr)";
    # the vdso has no path and is skipped.
    while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
        chmod 0755 "$root$lib"
    done < <(ldd "$real" | grep -o '/[^ ]*' | sort -u)
}

build_rootfs() {
    local root=$1 applet
    chmod 0755 "$root"
    mkdir -p "$root"/{bin,usr/bin,etc,jetpack,build/in,build/out,proc,dev,tmp}
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    for applet in "${APPLETS[@]}"; do
        ln -s busybox "$root/bin/$applet"
    done
    copy_program "$root" as as
    copy_program "$root" ld ld
    printf 'root:x:0:0:root:/:/bin/sh\n' > "$root/etc/passwd"
    printf 'root:x:0:\n' > "$root/etc/group"
    install -m 0644 "$here/kernel.S" "$here/kernel.ld" "$here/kernel64.ld" "$root/jetpack/"
    install -m 0755 "$here/build.sh" "$root/jetpack/build"
    install -m 0755 "$here/validate.sh" "$root/jetpack/validate"
    manifest > "$root/jetpack/builder.json"
    chmod 0644 "$root/jetpack/builder.json"
}

# ROOT to a reproducible, uncompressed tar on stdout.
tar_rootfs() {
    tar --format=gnu --sort=name --mtime="$MTIME" --owner=0 --group=0 --numeric-owner \
        -C "$1" -cf - .
}

# Builds the rootfs and writes DIR/test-builder.tar.gz and DIR/test-builder.json.
make_local() {
    local out=$1 root
    root=$(mktemp -d)
    TMPS+=("$root")
    build_rootfs "$root"
    mkdir -p "$out"
    tar_rootfs "$root" | gzip -n -9 > "$out/test-builder.tar.gz.part"
    mv "$out/test-builder.tar.gz.part" "$out/test-builder.tar.gz"
    manifest > "$out/test-builder.json"
}

# Stores FILE as a blob of LAYOUT, printing its digest (sha256:HEX).
put_blob() {
    local layout=$1 file=$2 hex
    hex=$(sha256sum "$file" | cut -d' ' -f1)
    mkdir -p "$layout/blobs/sha256"
    cp "$file" "$layout/blobs/sha256/$hex"
    echo "sha256:$hex"
}

make_oci() {
    local layout=$1 tag=$2 work layer diff_id config manifest_file
    work=$(mktemp -d)
    TMPS+=("$work")
    make_local "$work"
    layer="$work/test-builder.tar.gz"
    # The config names the layer by the digest of its uncompressed tar.
    diff_id="sha256:$(gzip -dc "$layer" | sha256sum | cut -d' ' -f1)"

    jq -n -c --arg created "$BUILD_DATE" --arg diff "$diff_id" \
        --arg name "$NAME" --arg version "$VERSION" --arg ref "$VCS_REF" \
        --arg date "$BUILD_DATE" --arg vendor "$VENDOR" --arg services "$SERVICES" '{
        created: $created, architecture: "amd64", os: "linux",
        config: {
            Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            Cmd: ["/jetpack/build"], WorkingDir: "/",
            Labels: {
                "org.label-schema.schema-version": "1.0",
                "org.label-schema.name": $name,
                "org.label-schema.version": $version,
                "org.label-schema.vcs-ref": $ref,
                "org.label-schema.build-date": $date,
                "org.label-schema.vendor": $vendor,
                "io.jetpack.services": $services
            }
        },
        rootfs: {type: "layers", diff_ids: [$diff]},
        history: [{created: $created, created_by: "images/test-builder/make.sh"}]
    }' > "$work/config.json"

    mkdir -p "$layout"
    printf '{"imageLayoutVersion":"1.0.0"}\n' > "$layout/oci-layout"
    local layer_digest config_digest manifest_digest
    layer_digest=$(put_blob "$layout" "$layer")
    config_digest=$(put_blob "$layout" "$work/config.json")
    manifest_file="$work/manifest.json"
    jq -n -c --arg cd "$config_digest" --argjson cs "$(stat -c %s "$work/config.json")" \
        --arg ld "$layer_digest" --argjson ls "$(stat -c %s "$layer")" '{
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
        layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls}]
    }' > "$manifest_file"
    manifest_digest=$(put_blob "$layout" "$manifest_file")

    # Other tags already in the layout stay; this TAG points at the new one.
    local index="$layout/index.json"
    [ -f "$index" ] || printf '{"schemaVersion":2,"manifests":[]}\n' > "$index"
    jq -c --arg md "$manifest_digest" --argjson ms "$(stat -c %s "$manifest_file")" --arg tag "$tag" '
        .schemaVersion = 2
        | .mediaType = "application/vnd.oci.image.index.v1+json"
        | .manifests = ([.manifests[]? | select(.annotations["org.opencontainers.image.ref.name"] != $tag)]
            + [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
                platform: {architecture: "amd64", os: "linux"},
                annotations: {"org.opencontainers.image.ref.name": $tag}}])
    ' "$index" > "$work/index.json"
    mv "$work/index.json" "$index"
    echo "$layout ($tag): manifest $manifest_digest, layer $layer_digest"
}

case "${1:-}" in
    --oci)
        [ $# -eq 3 ] || usage
        [ -n "$3" ] || usage
        check_tools jq sha256sum stat
        make_oci "$2" "$3"
        ;;
    ''|-*) usage ;;
    *)
        [ $# -eq 1 ] || usage
        check_tools
        make_local "$1"
        echo "$1/test-builder.tar.gz"
        ;;
esac
