#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the load and query tests (and the benchmarks).
#
#   tests/pg_server.sh install          install Debian's postgresql (+ postgresql-NN-q3c) if missing
#   tests/pg_server.sh start DIR PORT   initdb in DIR/data, start on 127.0.0.1:PORT, print the URL
#   tests/pg_server.sh stop DIR         stop the cluster started in DIR (fast shutdown)
#
# initdb refuses to run as root, so as root the cluster runs as the 'postgres' system user
# (created by the Debian package). The socket lives in DIR, the server listens on loopback only.
set -euo pipefail

pg_bindir() {
    # The newest installed server's binaries (Debian: /usr/lib/postgresql/NN/bin).
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; fi
}

as_owner() {
    # Run a command as the cluster owner: 'postgres' when we are root, ourselves otherwise.
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd_install() {
    # Installs only what is missing; does nothing (no apt-get at all) when both are present.
    local bindir ver policy
    bindir=$(pg_bindir)
    if [[ -n "$bindir" ]]; then
        ver=$(basename "$(dirname "$bindir")")
        if [[ -e "/usr/share/postgresql/$ver/extension/q3c.control" ]]; then
            echo "PostgreSQL binaries: $bindir (q3c present)"
            return 0
        fi
    fi
    if [[ $(id -u) -ne 0 ]]; then
        [[ -z "$bindir" ]] && { echo "pg_server.sh: PostgreSQL missing and not root: cannot install" >&2; exit 1; }
        echo "pg_server.sh: not root: cannot install q3c; the loader uses its GiST fallback" >&2
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || apt-get update -qq
    if [[ -z "$bindir" ]]; then
        # no system cluster on port 5432: the tests start their own, throwaway one
        if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
            mkdir -p /etc/postgresql-common
            echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
        fi
        apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold postgresql >/dev/null
        bindir=$(pg_bindir)
        [[ -n "$bindir" ]] || { echo "pg_server.sh: postgresql did not install" >&2; exit 1; }
    fi
    ver=$(basename "$(dirname "$bindir")")
    # q3c: the sky index the survey archives use; optional (the loader falls back to GiST).
    if [[ ! -e "/usr/share/postgresql/$ver/extension/q3c.control" ]]; then
        policy=$(apt-cache policy "postgresql-$ver-q3c" 2>/dev/null || true)
        if [[ "$policy" == *"Candidate: "[0-9]* ]]; then
            apt-get install -y -qq --no-install-recommends "postgresql-$ver-q3c" >/dev/null \
                || echo "pg_server.sh: postgresql-$ver-q3c did not install; GiST fallback" >&2
        else
            echo "pg_server.sh: no postgresql-$ver-q3c package; the loader uses its GiST fallback" >&2
        fi
    fi
    echo "PostgreSQL binaries: $bindir"
}

cmd_start() {
    local dir=${1:?usage: start DIR PORT} port=${2:?usage: start DIR PORT} bindir
    bindir=$(pg_bindir)
    [[ -n "$bindir" ]] || { echo "pg_server.sh: no PostgreSQL binaries; run 'pg_server.sh install'" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$dir"
        # The owner must be able to reach DIR through its parents (e.g. a 0700 /tmp/pytest-of-root).
        local p=$dir
        while [[ "$p" != "/" ]]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Durability is irrelevant for a throwaway test cluster; the benchmark passes its own settings.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 ${PG_SERVER_OPTS:-}" start >/dev/null \
        || { cat "$dir/log" >&2; exit 1; }
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

cmd_stop() {
    local dir=${1:?usage: stop DIR} pid
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        pid=$(head -1 "$dir/data/postmaster.pid")
        kill -TERM "$pid" 2>/dev/null || true
        # SIGTERM = smart shutdown waits for clients; fall back to fast shutdown after 10 s.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        echo "pg_server.sh: postmaster $pid did not stop" >&2; exit 1
    fi
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    *) echo "usage: $0 install | start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
