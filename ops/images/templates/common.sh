#!/bin/sh
# Sourced by the entrypoints of the pods-test template images (/usr/local/lib/pods/common.sh).
set -eu

pods_die() { echo "error: $*" >&2; exit 1; }

# Some servers (postgres, mariadb) want the running uid to have a passwd entry, and an image
# cannot know every uid it will be started with: for an unknown one, libnss_wrapper serves a
# passwd made for this start.
pods_nss_wrap() {
  uid=$(id -u) gid=$(id -g)
  getent passwd "$uid" >/dev/null 2>&1 && return 0
  wrap=$(mktemp -d /tmp/nss.XXXXXX)
  { cat /etc/passwd; echo "pods-$uid:x:$uid:$gid:pods:$HOME:/bin/sh"; } >"$wrap/passwd"
  { cat /etc/group; getent group "$gid" >/dev/null 2>&1 || echo "pods-$gid:x:$gid:"; } >"$wrap/group"
  export LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$wrap/passwd" NSS_WRAPPER_GROUP="$wrap/group"
}

# pods_one_line NAME: the variable NAME is set, and one line (it goes into a config file).
pods_one_line() {
  eval "v=\${$1:-}"
  [ -n "$v" ] || pods_die "$1 must be set"
  case $v in *'
'*) pods_die "$1 must be one line" ;; esac
}

# pods_run_server CMD...: run the server in the background and wait for it, passing docker
# stop's SIGTERM on (as SIG, default TERM), so that the entrypoint can do work after the start.
pods_run_server() {
  "$@" &
  pods_server=$!
  trap 'kill -"${PODS_STOP_SIGNAL:-TERM}" "$pods_server" 2>/dev/null || true' TERM INT
}
pods_wait_server() {
  rc=0
  while kill -0 "$pods_server" 2>/dev/null; do
    rc=0
    wait "$pods_server" || rc=$?
  done
  exit "$rc"
}

[ "$(id -u)" -ne 0 ] || pods_die "this image runs as a non-root user (e.g. --user 1000:1000)"
