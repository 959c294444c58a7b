#!/usr/bin/env bash
# The test command: installs what the tests need, then runs formatting,
# lints, the FreeBSD type-check and every test. Run as root (pods need
# namespaces and mounts, ZFS needs zfs-fuse). With CI=true a missing
# facility fails the run instead of skipping a test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# A clean clone gains nothing from incremental builds, which only take disk.
[ "${CI:-}" = true ] && export CARGO_INCREMENTAL=0

log() { printf '\n== %s\n' "$*" >&2; }

install_debian() {
    local packages=(zfs-fuse busybox-static iproute2 util-linux file xz-utils zstd tar coreutils
                    pkg-config rustc-web cargo-web rust-web-src
                    curl ca-certificates openssl apache2-utils
                    binutils qemu-system-x86 docker-registry skopeo jq nftables python3 prometheus influxdb influxdb-client
                    chromium chromium-driver grub-pc-bin xorriso libarchive-tools qemu-utils nginx ipxe-qemu man-db
                    postgresql)
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    # The console's bundle is rebuilt from gui/package-lock.json, and its
    # browser tests load axe-core: node and npm (unless the machine has them).
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "installing nodejs npm"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends nodejs npm
    fi
    # The launch tests' VM (images/linux-vm/make.sh) downloads Debian's cloud
    # kernel: the package index must know it.
    apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1 || apt-get update -q
}

install_freebsd() {
    log "installing packages"
    pkg install -y rust sqlite3 pkgconf curl apache24
}

case "$(uname -s)" in
    Linux)
        [ -f /etc/debian_version ] && install_debian
        ;;
    FreeBSD)
        install_freebsd
        ;;
esac
# The MDS drops its privileges to this user (mds.user); the tests check it
# really runs as it.
if ! id _jetpack >/dev/null 2>&1; then
    log "creating the _jetpack user"
    case "$(uname -s)" in
        FreeBSD) pw useradd _jetpack -d /nonexistent -s /usr/sbin/nologin -c "jetpack MDS" ;;
        *) useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin _jetpack ;;
    esac
fi
if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

# The console's bundle (gui/dist) is committed and embedded in the binary:
# rebuilt here from the locked packages, it must be the committed one.
if [ -f gui/package.json ]; then
    log "gui: npm ci && npm run build"
    (cd gui && npm ci --no-audit --no-fund && npm run build)
    if ! git diff --quiet --exit-code -- gui/dist \
        || [ -n "$(git ls-files --others --exclude-standard -- gui/dist)" ]; then
        git status --short -- gui/dist >&2
        echo "gui/dist is stale: it differs from what gui/ builds; run (cd gui && npm ci && npm run build) and commit gui/dist" >&2
        exit 1
    fi
fi
# axe-core for the console's browser tests, outside gui's own packages:
# into the target folder, where tests/common/browser.rs finds it (and
# JETPACK_AXE says where).
AXE_VERSION=4.14.1
axe_dir="${CARGO_TARGET_DIR:-target}/axe"
case "$axe_dir" in /*) ;; *) axe_dir="$PWD/$axe_dir" ;; esac
if ! grep -qs "\"version\": \"$AXE_VERSION\"" "$axe_dir/node_modules/axe-core/package.json"; then
    log "axe-core $AXE_VERSION into $axe_dir"
    mkdir -p "$axe_dir"
    npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$axe_dir" "axe-core@$AXE_VERSION"
fi
export JETPACK_AXE="$axe_dir/node_modules/axe-core/axe.min.js"

log "cargo fmt --check"
cargo fmt --check

log "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

if [ "$(uname -s)" = Linux ]; then
    log "FreeBSD type-check"
    scripts/check-freebsd.sh
fi

# The servers the integration tests start (the security suite's attacks
# above all) are the release build, as operators run it.
log "cargo build --release"
cargo build --release --locked
export JETPACK_BIN="$PWD/target/release/jetpack"

# The postgres store driver's tests (and the API suite run again with
# JETPACK_TEST_STORE=postgres) need a PostgreSQL: a throwaway cluster on a
# free loopback port below the tests' own range, stopped and removed
# when this script exits. Every test binary finds it through the
# JETPACK_TEST_PG_* variables (tests/common/postgres.rs).
if [ "$(uname -s)" = Linux ]; then
    pg_tmp=$(mktemp -d /tmp/jetpack-test-pg.XXXXXX)
    chmod 0755 "$pg_tmp" # the postgres user runs the server in it
    trap 'scripts/pg-test-cluster.sh stop "$pg_tmp/cluster"; rmdir "$pg_tmp"' EXIT
    pg_port=
    for p in $(seq 5433 5532); do
        if [ -z "$(ss -Hltn "sport = :$p")" ]; then pg_port=$p; break; fi
    done
    [ -n "$pg_port" ] || { echo "no free port for the test PostgreSQL" >&2; exit 1; }
    log "PostgreSQL test cluster on 127.0.0.1:$pg_port"
    # Assigned first: a failing start stops the run (set -e), which an
    # eval of its empty output would not.
    pg_exports=$(scripts/pg-test-cluster.sh start "$pg_tmp/cluster" "$pg_port")
    eval "$pg_exports"
fi

log "cargo test"
if [ "$(uname -s)" = FreeBSD ]; then
    cargo test --all-targets --locked --features freebsd-integration,zfs
else
    cargo test --all-targets --locked
    # The API suite again, every server on the postgres store driver (a
    # fresh database each): the same tests, the other driver.
    log "cargo test: the API suite on PostgreSQL"
    JETPACK_TEST_STORE=postgres cargo test --locked \
        --test serve --test cli_client --test hangar --test events --test sim_id \
        --test builders --test bootfiles --test netboot --test imageservice --test files \
        --test metrics --test top --test serve_pods --test security --test fleet_hosts
fi

if [ "$(uname -s)" = Linux ]; then
    # libFuzzer needs unstable flags; RUSTC_BOOTSTRAP lets the one stable
    # toolchain of these machines take them.
    # The fuzz build needs room the test builds took; a CI clone has no
    # further use for them.
    if [ "${CI:-}" = true ]; then
        log "removing the test builds before fuzzing (CI)"
        rm -rf "${CARGO_TARGET_DIR:-target}/debug" target/freebsd
    fi
    log "fuzz targets, ${JETPACK_FUZZ_SECONDS:-60}s each"
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    for target in $(cargo fuzz list); do
        # A target's seeds (fuzz/seeds/T) and dictionary (fuzz/T.dict) when it has them.
        # New inputs go to the first corpus folder, the ignored fuzz/corpus/T.
        mkdir -p "fuzz/corpus/$target"
        seeds=("fuzz/corpus/$target"); dict=()
        [ -d "fuzz/seeds/$target" ] && seeds+=("fuzz/seeds/$target")
        [ -f "fuzz/$target.dict" ] && dict=("-dict=fuzz/$target.dict")
        # -timeout: an input that hangs fails in 30 s with its artifact,
        # not after libFuzzer's default 20 minutes.
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "${seeds[@]}" -- \
            -max_total_time="${JETPACK_FUZZ_SECONDS:-60}" -timeout=30 "${dict[@]}"
    done
fi
