#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests of the postgres store
# driver (store.driver = postgres), in a folder of its own:
#
#   scripts/pg-test-cluster.sh start DIR PORT   # prints `export ...` for eval
#   scripts/pg-test-cluster.sh stop DIR         # stops it and removes DIR
#
# It listens on 127.0.0.1:PORT only (its unix socket inside DIR), with TLS
# on (a self-signed certificate for 127.0.0.1 and localhost; DIR/ca.pem is
# that certificate) and scram-sha-256 password auth for the role
# `jetpack` (CREATEDB; its random password in DIR/password, 0600). No
# durability (fsync and synchronous_commit off): it is thrown away.
#
# DIR must not exist yet, and its parent must be reachable by the
# `postgres` user when this runs as root (initdb refuses root, so the
# server runs as `postgres`; DIR/pg is its own).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() { printf 'pg-test-cluster: %s\n' "$*" >&2; exit 1; }

# Runs a command as the cluster's owner: `postgres` under root, else the
# caller itself.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 port=$2
    [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb is missing (apt-get install postgresql)"
    case "$port" in '' | *[!0-9]*) die "port must be a number: $port" ;; esac
    [ -e "$dir" ] && die "$dir exists already"
    command -v openssl >/dev/null || die "openssl is missing"
    mkdir -m 0755 "$dir"
    dir=$(cd "$dir" && pwd)
    local pg="$dir/pg"
    mkdir -m 0700 "$pg" "$pg/run" "$pg/tls"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$pg"
        runuser -u postgres -- test -x "$pg" \
            || die "the postgres user cannot reach $dir: make its parent folders searchable"
    fi

    # The server's certificate, self-signed for the names a client uses.
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$pg/tls/server.key" -out "$pg/tls/server.crt" 2>/dev/null \
        || die "openssl could not make the certificate"
    chmod 0600 "$pg/tls/server.key"
    cp "$pg/tls/server.crt" "$dir/ca.pem"
    chmod 0644 "$dir/ca.pem"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$pg/tls"

    # The password never goes on a command line: openssl writes it to a
    # file, and psql reads the statement that sets it on its stdin.
    (umask 077 && openssl rand -hex 24 >"$dir/password")
    local password
    password=$(cat "$dir/password")

    as_owner "$PGBIN/initdb" -D "$pg/data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$pg/data/postgresql.conf" <<CONF

# pg-test-cluster.sh: a throwaway cluster on loopback
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pg/run'
ssl = on
ssl_cert_file = '$pg/tls/server.crt'
ssl_key_file = '$pg/tls/server.key'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
# Every test process opens pools of its own on the one cluster.
max_connections = 400
CONF
    # Only the owner over the socket (to make the role), only `jetpack`
    # over TCP, with a password (TLS or not: the tests try both).
    cat >"$pg/data/pg_hba.conf" <<HBA
local all postgres peer
host  all jetpack 127.0.0.1/32 scram-sha-256
HBA
    as_owner "$PGBIN/pg_ctl" -D "$pg/data" -l "$pg/postgres.log" -w -t 60 start >/dev/null \
        || { as_owner cat "$pg/postgres.log" >&2 || true; die "the server did not start"; }
    printf "CREATE ROLE jetpack LOGIN CREATEDB PASSWORD '%s';\n" "$password" \
        | as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg/run" -p "$port" -U postgres -d postgres \
        || die "could not create the role jetpack"

    # Also kept as DIR/env, for a test process that finds the cluster
    # running (tests/common/postgres.rs).
    local exports
    exports=$(printf 'export JETPACK_TEST_PG_URL=%q JETPACK_TEST_PG_PASSWORD_FILE=%q JETPACK_TEST_PG_CA=%q' \
        "postgres://jetpack@127.0.0.1:$port/postgres" "$dir/password" "$dir/ca.pem")
    printf '%s\n' "$exports" >"$dir/env"
    printf '%s\n' "$exports"
}

stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    # Only a folder this script made is removed.
    [ -f "$dir/pg/data/PG_VERSION" ] || [ -f "$dir/password" ] \
        || die "$dir is not a test cluster: not removing it"
    if [ -f "$dir/pg/data/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null || true
    fi
    rm -rf -- "$dir"
}

case "${1:-}" in
    start) [ $# -eq 3 ] || die "usage: $0 start DIR PORT"; start "$2" "$3" ;;
    stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) die "usage: $0 start DIR PORT | stop DIR" ;;
esac
