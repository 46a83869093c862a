#!/usr/bin/env bash
# Starts or stops a private PostgreSQL 15 cluster on a free loopback port.
#
#   scripts/pg-private.sh start DIR   # prints "export PGHOST=... PGPORT=... PGUSER=..." lines
#   scripts/pg-private.sh restart DIR   # same port; cuts every connection
#   scripts/pg-private.sh stop DIR
#   scripts/pg-private.sh resume DIR    # after stop: the same port again (a test's database outage)
#
# PostgreSQL refuses to run as root, so when called by root the cluster is
# owned and run by the `postgres` system user (created by the Debian package).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
action=${1:?usage: pg-private.sh start|restart|stop|resume DIR}
dir=${2:?usage: pg-private.sh start|restart|stop|resume DIR}
dir=$(realpath -m "$dir")  # the server commands run from /

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    # From /: the caller's directory may be one the postgres user cannot enter.
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Tuned for throwaway use: no fsync, logs in the cluster directory.
# max_prepared_transactions > 0 so tests can write the way applications
# using two-phase commit do (PREPARE TRANSACTION / COMMIT PREPARED).
run_server() {
  local port=$1
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c max_prepared_transactions=20" \
    >/dev/null || { tail -n 30 "$dir/postgres.log" >&2; exit 1; }
}

case "$action" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$dir"
      if ! runuser -u postgres -- test -w "$dir"; then
        echo "pg-private: the postgres user cannot write $dir (a parent directory is not searchable)" >&2
        exit 1
      fi
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      # Everyone is trusted except the roles the password tests create, which
      # must authenticate, so a wrong password is refused (first match wins).
      as_owner sh -c "{ printf '%s\n' \
        'host  all orchestratord_password_test,orchestratord_password_test_raw 127.0.0.1/32 scram-sha-256' \
        'local all orchestratord_password_test,orchestratord_password_test_raw scram-sha-256'; \
        cat '$dir/data/pg_hba.conf'; } > '$dir/data/pg_hba.new' && mv '$dir/data/pg_hba.new' '$dir/data/pg_hba.conf'"
    fi
    port=$(free_port)
    run_server "$port"
    echo "$port" > "$dir/port"
    echo "export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres"
    ;;
  restart)
    # Same port and options (pg_ctl keeps them in postmaster.opts); every
    # client connection is cut, as in a real server restart.
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -m fast -w -t 60 restart >/dev/null
    ;;
  resume)
    # The clients keep their connection settings, so the port must not change.
    run_server "$(cat "$dir/port")"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
    fi
    ;;
  *)
    echo "usage: pg-private.sh start|restart|stop|resume DIR" >&2
    exit 2
    ;;
esac
