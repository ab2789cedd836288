#!/bin/sh
# pods-test/mariadb: mariadbd on 3306; users and database made on first start.
. /usr/local/lib/pods/common.sh
pods_nss_wrap
pods_one_line MARIADB_ROOT_PASSWORD
if [ -n "${MARIADB_USER:-}" ]; then pods_one_line MARIADB_PASSWORD; fi

data=$MARIADB_DATA
# Every client in this container (readiness, init) finds the server by this socket.
sock=/tmp/mysqld.sock
# A string literal and an identifier for SQL.
literal() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/''/g")"; }
ident() { printf '`%s`' "$(printf '%s' "$1" | sed 's/`/``/g')"; }

# Debian's /etc/mysql files are for a system service (paths under /run and /var/log): not read.
server_opts="--no-defaults --datadir=$data --pid-file=/tmp/mysqld.pid --skip-name-resolve
  --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci"

umask 077
# Written last on first start: a start that failed half-way is done again from scratch.
done_mark=$data/.pods-initialised
if [ ! -e "$done_mark" ]; then
  mkdir -p "$data"
  find "$data" -mindepth 1 -delete
  mariadb-install-db --no-defaults --datadir="$data" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/tmp/install-db.log 2>&1 ||
    { cat /tmp/install-db.log >&2; pods_die "mariadb-install-db failed"; }
  # A server only this script reaches (no network, a socket of its own) sets the users up.
  init=/tmp/init.sock
  # shellcheck disable=SC2086 # server_opts is words
  mariadbd $server_opts --skip-networking --socket="$init" --log-error=/tmp/init-server.log &
  pid=$!
  i=0
  until mariadb-admin --no-defaults --socket="$init" --user=root ping >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 300 ] && kill -0 "$pid" 2>/dev/null || { cat /tmp/init-server.log >&2; pods_die "the first-start server did not come up"; }
    sleep 0.1
  done
  {
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(literal "$MARIADB_ROOT_PASSWORD");"
    echo "DROP USER IF EXISTS ''@'localhost';"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS $(ident "$MARIADB_DATABASE");"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      echo "CREATE USER $(literal "$MARIADB_USER")@'%' IDENTIFIED BY $(literal "$MARIADB_PASSWORD");"
      [ -z "${MARIADB_DATABASE:-}" ] ||
        echo "GRANT ALL ON $(ident "$MARIADB_DATABASE").* TO $(literal "$MARIADB_USER")@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
    echo "SHUTDOWN;"
  } | mariadb --no-defaults --socket="$init" --user=root
  wait "$pid" || pods_die "the first-start server did not stop cleanly"
  : >"$done_mark"
  echo "pods: MariaDB initialised in $data${MARIADB_USER:+: user $MARIADB_USER}${MARIADB_DATABASE:+, database $MARIADB_DATABASE}"
fi

# shellcheck disable=SC2086 # server_opts is words
pods_run_server mariadbd $server_opts --bind-address=0.0.0.0 --port=3306 --socket="$sock" "$@"
pods_wait_server
