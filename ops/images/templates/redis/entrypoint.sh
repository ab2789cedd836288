#!/bin/sh
# pods-test/redis: redis-server on 6379 with `requirepass` from REDIS_PASSWORD.
. /usr/local/lib/pods/common.sh
pods_one_line REDIS_PASSWORD

# The password goes in a file only this user reads, never on a command line (ps shows those).
umask 077
conf=$(mktemp /tmp/redis.XXXXXX)
quoted=$(printf '%s' "$REDIS_PASSWORD" | sed 's/\\/\\\\/g; s/"/\\"/g')
cat >"$conf" <<CONF
port 6379
bind 0.0.0.0
daemonize no
logfile ""
dir $REDIS_DATA
requirepass "$quoted"
CONF
mkdir -p "$REDIS_DATA"
exec redis-server "$conf" "$@"
