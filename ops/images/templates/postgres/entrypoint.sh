#!/bin/sh
# pods-test/postgres: PostgreSQL on 5432, TLS on, password (scram-sha-256) auth.
. /usr/local/lib/pods/common.sh
pods_nss_wrap

[ -n "${POSTGRES_PASSWORD:-}" ] || pods_die "POSTGRES_PASSWORD must be set"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
ident() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }

umask 077
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp /tmp/pw.XXXXXX)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  rm -f "$pwfile"
  # initdb allows TCP from loopback only; pods are reached through Docker's port mapping.
  cat >"$PGDATA/pg_hba.conf" <<HBA
local all all scram-sha-256
host  all all 0.0.0.0/0 scram-sha-256
host  all all ::/0      scram-sha-256
HBA
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE $(ident "$db") OWNER $(ident "$user");" |
      postgres --single -D "$PGDATA" -c unix_socket_directories= postgres >/dev/null
  fi
fi

# A self-signed certificate, made once; clients use sslmode=require.
if [ ! -s "$PGDATA/server.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$(cat /proc/sys/kernel/hostname)" -keyout "$PGDATA/server.key" -out "$PGDATA/server.crt" 2>/dev/null
fi

# SIGTERM (docker stop) would be postgres's "smart" shutdown, which waits for every client
# to leave; SIGINT is its "fast" one.
PODS_STOP_SIGNAL=INT
pods_run_server postgres -D "$PGDATA" \
  -c listen_addresses='*' -c port=5432 \
  -c unix_socket_directories=/tmp \
  -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key \
  -c password_encryption=scram-sha-256 -c jit=off "$@"
pods_wait_server
