#!/bin/sh
# First start: a cluster with the upstream image's settings. Then PostgreSQL in the foreground.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n1)
user=${POSTGRES_USER:-postgres}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host="$auth" >/dev/null
    rm -f "$pwfile"
    echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
    if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != "postgres" ]; then
        "$bin/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses='' -k /tmp" start >/dev/null
        psql -h /tmp -U "$user" -d postgres -qc "CREATE DATABASE \"$POSTGRES_DB\""
        "$bin/pg_ctl" -D "$PGDATA" -w stop >/dev/null
    fi
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -k /tmp
