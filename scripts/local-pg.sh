#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the demo and benchmarks, kept entirely in
# DIR so nothing touches the system's own clusters.
#
#   scripts/local-pg.sh start DIR     initdb (first time) and start it
#   scripts/local-pg.sh url DIR [DB]  print postgres://postgres:PASS@127.0.0.1:PORT/DB
#   scripts/local-pg.sh stop DIR      stop it (DIR is left for the caller to remove)
#
# The server speaks scram-sha-256 over TCP on 127.0.0.1 only, with a generated
# password, so it exercises the same auth path as a real deployment.
set -euo pipefail

usage() { echo "usage: $0 start|stop|url DIR [DB]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
DIR=$2

find_pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local best
    best=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [ -n "$best" ]; then echo "$best"; return; fi
    local initdb
    initdb=$(command -v initdb || true)
    [ -n "$initdb" ] || { echo "local-pg: no PostgreSQL found (run scripts/bootstrap.sh)" >&2; exit 1; }
    dirname "$(readlink -f "$initdb")"
}

# initdb and postgres refuse to run as root, so as root everything runs as
# the unprivileged postgres user, which must own DIR.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

ensure_pg_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id -u postgres >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

is_running() {
    [ -f "$DIR/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

PG_BIN=$(find_pg_bin)

case "$cmd" in
start)
    ensure_pg_user
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$DIR"; fi
    # The postgres user may not be able to read the caller's cwd (e.g. root's home).
    cd "$DIR"
    if is_running; then
        echo "local-pg: already running in $DIR" >&2
        exit 0
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        # Hex keeps the password URL-safe without escaping.
        pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
        umask 077
        printf '%s\n' "$pw" >"$DIR/password"
        [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$DIR/password"
        as_pg "$PG_BIN/initdb" -D "$DIR/data" --username=postgres \
            --auth=scram-sha-256 --pwfile="$DIR/password" \
            --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
        as_pg mkdir -p "$DIR/sock"
    fi
    port=$(free_port)
    echo "$port" >"$DIR/port"
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $DIR/sock -c max_connections=200" \
        start >/dev/null || { tail -n 30 "$DIR/server.log" >&2; exit 1; }
    echo "local-pg: started on 127.0.0.1:$port ($DIR)" >&2
    ;;
stop)
    [ -d "$DIR" ] || exit 0
    cd "$DIR"
    if is_running; then
        as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
        echo "local-pg: stopped ($DIR)" >&2
    fi
    ;;
url)
    db=${3:-postgres}
    [ -f "$DIR/port" ] && [ -f "$DIR/password" ] || { echo "local-pg: not started in $DIR" >&2; exit 1; }
    printf 'postgres://postgres:%s@127.0.0.1:%s/%s\n' "$(cat "$DIR/password")" "$(cat "$DIR/port")" "$db"
    ;;
*) usage ;;
esac
