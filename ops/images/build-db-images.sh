#!/usr/bin/env bash
# Build the local database images pods-test/redis:bookworm and pods-test/postgres:bookworm
# from Debian's packages, without any image registry: a `debootstrap --variant=minbase
# bookworm` rootfs, the server installed into it with apt in a chroot, `docker import`.
#
#   ops/images/build-db-images.sh [--force]      (as root: debootstrap and chroot need it)
#
# Does nothing when both images exist, unless --force. The root filesystems are cached as
# tarballs in ${PODS_CACHE_DIR:-$HOME/.cache/pods}/db-images/<sha256 of this script>-<arch>/,
# so a rerun (or --force) only imports them again; entries of older versions are removed. Mirrors: PODS_DEBIAN_MIRROR
# (http://deb.debian.org/debian), PODS_DEBIAN_SECURITY_MIRROR (http://deb.debian.org/debian-security).
#
# Both images start as any non-root user with every capability dropped, as the agent runs
# pods (User 1000:1000 by default; the image's own `redis` / `postgres` user works too), and
# configure the server from the environment at each start (arguments go to the server:
# redis-server options such as `--maxmemory 64mb`, postgres ones such as `-c work_mem=8MB`):
#
#   pods-test/redis:bookworm     port 6379; REDIS_PASSWORD (required) becomes `requirepass`.
#                                Data (RDB) in /var/lib/pods/redis.
#   pods-test/postgres:bookworm  port 5432; POSTGRES_PASSWORD (required), POSTGRES_USER
#                                (postgres), POSTGRES_DB (= POSTGRES_USER). initdb on first start
#                                into PGDATA (/var/lib/pods/postgres/data); `ssl = on` with a
#                                self-signed certificate made at start; scram-sha-256 password
#                                auth for every TCP client, TLS or not (a proxy that ends TLS,
#                                like Caddy, reaches it in plaintext over loopback).
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

suite=bookworm
mirror=${PODS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${PODS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
images=(redis postgres)

force=
case ${1:-} in
  --force) force=1 ;;
  "") ;;
  -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

image_tag() { printf 'pods-test/%s:%s' "$1" "$suite"; }

if [ -z "$force" ]; then
  absent=0
  for name in "${images[@]}"; do
    docker image inspect "$(image_tag "$name")" >/dev/null 2>&1 || absent=1
  done
  [ "$absent" -eq 1 ] || exit 0
fi

key=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
cache=${PODS_CACHE_DIR:-$HOME/.cache/pods}/db-images/$key-$(uname -m)

# ---- what goes into the images ----------------------------------------------------------

# The package set of each image (always with --no-install-recommends).
packages_of() {
  case $1 in
    redis) echo redis-server ;;
    # ssl-cert comes with postgresql-common; openssl makes the server's certificate at start.
    postgres) echo postgresql openssl libnss-wrapper ;;
  esac
}

# Shared by both entrypoints.
write_common() {
  cat <<'EOF'
#!/bin/sh
# Sourced by the pods-test entrypoints.
set -eu

pods_die() { echo "error: $*" >&2; exit 1; }

# postgres wants the running uid to have a passwd entry, and an image cannot know every uid
# it will be started with: for an unknown one, libnss_wrapper serves a passwd made for this start.
pods_nss_wrap() {
  uid=$(id -u) gid=$(id -g)
  getent passwd "$uid" >/dev/null 2>&1 && return 0
  wrap=$(mktemp -d /tmp/nss.XXXXXX)
  { cat /etc/passwd; echo "pods-$uid:x:$uid:$gid:pods:$HOME:/bin/sh"; } >"$wrap/passwd"
  { cat /etc/group; getent group "$gid" >/dev/null 2>&1 || echo "pods-$gid:x:$gid:"; } >"$wrap/group"
  export LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$wrap/passwd" NSS_WRAPPER_GROUP="$wrap/group"
}

[ "$(id -u)" -ne 0 ] || pods_die "this image runs as a non-root user (e.g. --user 1000:1000)"
EOF
}

write_redis_entrypoint() {
  cat <<'EOF'
#!/bin/sh
# pods-test/redis: redis-server on 6379 with `requirepass` from REDIS_PASSWORD.
. /usr/local/lib/pods/common.sh

[ -n "${REDIS_PASSWORD:-}" ] || pods_die "REDIS_PASSWORD must be set"
case $REDIS_PASSWORD in *'
'*) pods_die "REDIS_PASSWORD must be one line" ;; esac

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
EOF
}

write_postgres_entrypoint() {
  cat <<'EOF'
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

# A fresh self-signed certificate for each container start; clients use sslmode=require.
if [ ! -s "$PGDATA/server.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$(cat /proc/sys/kernel/hostname)" -keyout "$PGDATA/server.key" -out "$PGDATA/server.crt" 2>/dev/null
fi

postgres -D "$PGDATA" \
  -c listen_addresses='*' -c port=5432 \
  -c unix_socket_directories=/tmp \
  -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key \
  -c password_encryption=scram-sha-256 -c jit=off "$@" &
pid=$!
# SIGTERM (docker stop) would be postgres's "smart" shutdown, which waits for every client
# to leave; SIGINT is its "fast" one. `docker import` cannot set STOPSIGNAL, so translate.
trap 'kill -INT "$pid" 2>/dev/null || true' TERM INT
rc=0
while kill -0 "$pid" 2>/dev/null; do
  rc=0
  wait "$pid" || rc=$?
done
exit "$rc"
EOF
}

# The `docker import --change` lines of each image.
changes_of() {
  local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  case $1 in
    redis)
      printf '%s\n' \
        "ENV PATH=$path" \
        'ENV REDIS_DATA=/var/lib/pods/redis' \
        'EXPOSE 6379' \
        'ENTRYPOINT ["/usr/local/bin/pods-entrypoint"]'
      ;;
    postgres)
      local bin
      bin=$(cd "$rootfs" && echo usr/lib/postgresql/*/bin)
      [ -d "$rootfs/$bin" ] || pods_die "no PostgreSQL bin directory in the rootfs"
      printf '%s\n' \
        "ENV PATH=/$bin:$path" \
        'ENV PGDATA=/var/lib/pods/postgres/data' \
        'EXPOSE 5432' \
        'ENTRYPOINT ["/usr/local/bin/pods-entrypoint"]'
      ;;
  esac
  printf '%s\n' 'ENV LANG=C.UTF-8' 'ENV HOME=/tmp' 'WORKDIR /tmp' 'USER 1000:1000'
}

# ---- building ----------------------------------------------------------------------------

rootfs=""
cleanup() {
  if [ -n "$rootfs" ]; then
    # Never delete through a bind mount into the host.
    umount "$rootfs/proc" 2>/dev/null || true
    rm -rf --one-file-system "$rootfs"
  fi
}
trap cleanup EXIT

in_chroot() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }

# The minbase rootfs, shared by both images (cached as base.tar).
base_tar() {
  local tar=$cache/base.tar start=$SECONDS
  [ -s "$tar" ] && return 0
  if ! command -v debootstrap >/dev/null; then
    is_root || pods_die "debootstrap is missing (apt-get install debootstrap)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
  fi
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache/debootstrap.log" >&2; pods_die "debootstrap failed (log: $cache/debootstrap.log)"; }
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF
  tar -C "$rootfs" --numeric-owner -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  cleanup
  rootfs=""
  pods_log "db images: debootstrap --variant=minbase $suite took $((SECONDS - start))s"
}

# image_tar NAME: the rootfs of one image, with its packages and entrypoint (cached NAME.tar).
image_tar() {
  local name=$1 tar=$cache/$1.tar start=$SECONDS
  [ -s "$tar" ] && return 0
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  tar -C "$rootfs" -xf "$cache/base.tar"
  # No service starts inside the chroot, and postgresql-common makes no "main" cluster:
  # each container makes its own at first start.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  mkdir -p "$rootfs/etc/postgresql-common"
  echo 'create_main_cluster = false' >"$rootfs/etc/postgresql-common/createcluster.conf"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mount -t proc proc "$rootfs/proc"
  # shellcheck disable=SC2046 # the package list is words
  if ! { in_chroot apt-get update -q && in_chroot apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    $(packages_of "$name"); } >"$cache/$name-apt.log" 2>&1; then
    tail -n 30 "$cache/$name-apt.log" >&2
    pods_die "apt-get install in the $name rootfs failed (log: $cache/$name-apt.log)"
  fi
  umount "$rootfs/proc"
  in_chroot apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs/usr/sbin/policy-rc.d" \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/i18n \
    "$rootfs"/var/log/*.log "$rootfs"/tmp/*
  if [ "$name" = postgres ]; then
    # The JIT (llvmjit.so and the LLVM it loads, 130 MB) is optional and off here (jit=off).
    rm -rf "$rootfs"/usr/lib/postgresql/*/lib/llvmjit* "$rootfs"/usr/lib/postgresql/*/lib/bitcode \
      "$rootfs"/usr/lib/*/libLLVM-*.so* "$rootfs"/usr/lib/*/libz3.so*
  fi
  : >"$rootfs/etc/resolv.conf"

  mkdir -p "$rootfs/usr/local/lib/pods"
  write_common >"$rootfs/usr/local/lib/pods/common.sh"
  "write_${name}_entrypoint" >"$rootfs/usr/local/bin/pods-entrypoint"
  chmod 644 "$rootfs/usr/local/lib/pods/common.sh"
  chmod 755 "$rootfs/usr/local/bin/pods-entrypoint"
  # uid 1000, the agent's default, has a name; other uids get one from nss_wrapper at start.
  in_chroot useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /bin/sh pods
  # Writable by whichever non-root user the container runs as (no capabilities, so no chown).
  mkdir -p "$rootfs/var/lib/pods/$name"
  chmod 1777 "$rootfs/var/lib/pods" "$rootfs/var/lib/pods/$name"

  tar -C "$rootfs" --numeric-owner -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  changes_of "$name" >"$cache/$name.changes"
  cleanup
  rootfs=""
  pods_log "db images: $name rootfs (apt-get install $(packages_of "$name")) took $((SECONDS - start))s"
}

import_image() {
  local name=$1 tag old new start=$SECONDS args=()
  tag=$(image_tag "$name")
  old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  while IFS= read -r line; do args+=(--change "$line"); done <"$cache/$name.changes"
  docker import "${args[@]}" --message "pods test image: Debian $suite $name" "$cache/$name.tar" "$tag" >/dev/null
  new=$(docker image inspect --format '{{.Id}}' "$tag")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then docker image rm "$old" >/dev/null 2>&1 || true; fi
  pods_log "db images: built $tag ($new) in $((SECONDS - start))s"
}

is_root || pods_die "building the database images needs root (debootstrap, chroot)"
mkdir -p "$cache"
# One build per cache entry at a time; a second caller waits, then finds the tarballs.
exec 9>"$cache.lock"
flock 9
total=$SECONDS
tars_ready=1
for name in "${images[@]}"; do [ -s "$cache/$name.tar" ] || tars_ready=""; done
if [ -z "$tars_ready" ]; then
  base_tar
  for name in "${images[@]}"; do image_tar "$name"; done
fi
# Only the image tarballs are reused, and only under this script's hash: drop the rest
# (entries of other versions of this script, unless a build holds them).
rm -f "$cache/base.tar"
for old in "$(dirname "$cache")"/*; do
  case $old in "$cache" | *.lock) continue ;; esac
  # shellcheck disable=SC2094 # the lock is only held, never read
  (flock -n 9 && rm -rf --one-file-system "$old" && rm -f "$old.lock") 9>>"$old.lock" || true
done
flock -u 9
for name in "${images[@]}"; do import_image "$name"; done
pods_log "db images: done in $((SECONDS - total))s"
