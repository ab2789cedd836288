#!/usr/bin/env bash
# Build the images that serve the templates' `local` tags (templates/local/) without any image
# registry, from what is reachable: Debian's packages, Maven Central, PyPI.
#
#   ops/images/build-template-images.sh [--force] [NAME...]     (as root: debootstrap, chroot)
#
#   pods-test/redis:bookworm     Debian's redis-server
#   pods-test/postgres:bookworm  Debian's postgresql
#   pods-test/mariadb:bookworm   Debian's mariadb-server
#   pods-test/neo4j:5            Neo4j 5 community from Maven Central on Debian's openjdk-17-jre-headless
#   pods-test/jupyter:bookworm   JupyterLab from PyPI in a venv on Debian's python3
#
# Each image is two layers: one Debian base shared by all (`debootstrap --variant=minbase
# bookworm`, upgraded, with a user `pods` of uid 1000), and its own (apt-get install in a chroot
# of the base, plus what its recipe adds), loaded with `docker load`. ops/images/templates/NAME/
# holds each image's recipe (recipe.sh: packages, environment, ports, hooks), its entrypoint and,
# when it has one, its readiness command (pods-ready); common.sh is sourced by every entrypoint.
#
# Only what changed is built: an image is labelled with the key of what it was made from (this
# script, common.sh and its recipe folder), and one whose key matches is left alone (--force
# builds it again). Layers are cached as tarballs under ${PODS_CACHE_DIR:-~/.cache/pods}/images/
# (with Maven's repository m2/ and each recipe's downloads NAME-stage/); a layer of another key
# is removed. Mirrors: PODS_DEBIAN_MIRROR (http://deb.debian.org/debian),
# PODS_DEBIAN_SECURITY_MIRROR (http://deb.debian.org/debian-security).
#
# Every image starts as any non-root user with every capability dropped, as the agent runs pods
# (User 1000:1000 by default), and configures its server from the environment at each start;
# each recipe.sh says which variables.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

here=$PODS_ROOT/ops/images
recipes=$here/templates
suite=bookworm
mirror=${PODS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${PODS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
all=(redis postgres mariadb neo4j jupyter)
cache_root=${PODS_CACHE_DIR:-$HOME/.cache/pods}/images
default_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

force="" names=()
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    -*) echo "usage: $0 [--force] [NAME...]" >&2; exit 2 ;;
    *)
      [ -f "$recipes/$arg/recipe.sh" ] || pods_die "no image $arg (there are: ${all[*]})"
      names+=("$arg")
      ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")

sha() { sha256sum | cut -c1-16; }

# ---- the shared base --------------------------------------------------------------------

in_chroot() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }

# Debian's docs, manuals and translations, and apt's lists: not needed in a container.
trim_rootfs() {
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/i18n \
    "$rootfs"/var/log/*.log "$rootfs"/tmp/*
}

make_base() {
  if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
  fi
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache_root/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache_root/debootstrap.log" >&2; pods_die "debootstrap failed (log: $cache_root/debootstrap.log)"; }
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$suite" "$mirror" "$suite" "$security" "$suite" >"$rootfs/etc/apt/sources.list"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  { in_chroot apt-get update -q && in_chroot apt-get upgrade -y -q; } >>"$cache_root/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache_root/debootstrap.log" >&2; pods_die "apt-get upgrade of the base failed"; }
  in_chroot apt-get clean
  # uid 1000, the agent's default, has a name; entrypoints that need one give other uids theirs.
  in_chroot useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /bin/sh pods
  trim_rootfs
  : >"$rootfs/etc/resolv.conf"
}

base_key=$( { echo "$suite $mirror $security"; declare -f make_base trim_rootfs in_chroot; } | sha)
base_tar=$cache_root/base-$base_key.tar

# ---- one image -------------------------------------------------------------------------

# The key of an image: the base, this script, common.sh and every file of its recipe folder,
# by content (and names inside the folder), so that every clone of one commit agrees.
image_key() {
  {
    echo "$base_key"
    cat "${BASH_SOURCE[0]}" "$here/docker-image.py" "$recipes/common.sh" | sha256sum
    (cd "$recipes/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  } | sha
}

# recipe NAME: its recipe.sh read in this (sub)shell, with the defaults it may change.
recipe() {
  IMAGE_TAG=bookworm PACKAGES=() IMAGE_ENV=() PORTS=() IMAGE_PATH=$default_path
  unset -f fetch before_apt after_apt
  recipe_dir=$recipes/$1
  # shellcheck disable=SC1090,SC1091
  . "$recipe_dir/recipe.sh"
}

image_tag() { (recipe "$1" && printf 'pods-test/%s:%s' "$1" "$IMAGE_TAG"); }

rootfs=""
cleanup() {
  if [ -n "$rootfs" ]; then
    # Never delete through a bind mount into the host.
    umount "$rootfs/proc" 2>/dev/null || true
    rm -rf --one-file-system "$rootfs"
  fi
  rootfs=""
}
trap cleanup EXIT

# tar_of DIR OUT [NEWER_THAN]: DIR's tree as an image layer (paths relative to its root),
# only what was made or changed after NEWER_THAN when given.
tar_of() {
  local newer=()
  [ -z "${3:-}" ] || newer=(-cnewer "$3")
  (cd "$1" && find . -mindepth 1 "${newer[@]}" -printf '%P\n') |
    tar -C "$1" --numeric-owner --no-recursion -cf "$2.tmp" -T -
  mv "$2.tmp" "$2"
}

# build_layer NAME KEY: the image's own layer, as the difference made to the base by installing
# its packages and files (cached NAME-KEY.tar, with the image settings in NAME-KEY.args).
build_layer() {
  local name=$1 key=$2 start=$SECONDS stamp
  local layer=$cache_root/$name-$key.tar log=$cache_root/$name-apt.log
  (
    trap cleanup EXIT
    recipe "$name"
    stage=$cache_root/$name-stage
    mkdir -p "$stage"
    if declare -F fetch >/dev/null; then fetch; fi
    rootfs=$(mktemp -d "$cache_root/rootfs.XXXXXX")
    tar -C "$rootfs" -xf "$base_tar"
    stamp=$rootfs.stamp
    touch "$stamp"
    # No service starts inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
    if declare -F before_apt >/dev/null; then before_apt; fi
    mount -t proc proc "$rootfs/proc"
    if ! { in_chroot apt-get update -q && in_chroot apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${PACKAGES[@]}"; } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      pods_die "apt-get install in the $name rootfs failed (log: $log)"
    fi
    if declare -F after_apt >/dev/null; then after_apt; fi
    umount "$rootfs/proc"
    in_chroot apt-get clean
    rm -f "$rootfs/usr/sbin/policy-rc.d"
    trim_rootfs
    : >"$rootfs/etc/resolv.conf"

    mkdir -p "$rootfs/usr/local/lib/pods" "$rootfs/var/lib/pods/$name"
    install -m 644 "$recipes/common.sh" "$rootfs/usr/local/lib/pods/common.sh"
    install -m 755 "$recipe_dir/entrypoint.sh" "$rootfs/usr/local/bin/pods-entrypoint"
    [ ! -f "$recipe_dir/pods-ready" ] || install -m 755 "$recipe_dir/pods-ready" "$rootfs/usr/local/bin/pods-ready"
    # Writable by whichever non-root user the container runs as (no capabilities, so no chown).
    chmod 1777 "$rootfs/var/lib/pods" "$rootfs/var/lib/pods/$name"

    tar_of "$rootfs" "$layer" "$stamp"
    rm -f "$stamp"
    {
      printf -- '--env\nPATH=%s\n' "$IMAGE_PATH"
      printf -- '--env\n%s\n' LANG=C.UTF-8 HOME=/tmp "${IMAGE_ENV[@]}"
      printf -- '--port\n%s\n' "${PORTS[@]}"
      printf -- '--history\n%s\n' "debootstrap --variant=minbase $suite; apt-get upgrade" "apt-get install ${PACKAGES[*]}; ops/images/templates/$name"
    } >"$layer.args"
    cleanup
    pods_log "images: $name layer (apt-get install ${PACKAGES[*]}) took $((SECONDS - start))s"
  )
}

# load_image NAME KEY: the base and the image's layer into Docker, as pods-test/NAME:TAG.
load_image() {
  local name=$1 key=$2 tag old new start=$SECONDS args=()
  local layer=$cache_root/$name-$key.tar
  tag=$(image_tag "$name")
  old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  mapfile -t args <"$layer.args"
  python3 "$here/docker-image.py" --tag "$tag" --layer "$base_tar" --layer "$layer" "${args[@]}" \
    --label "pods.image-key=$key" --label "pods.image=$name" | docker load -q >/dev/null
  new=$(docker image inspect --format '{{.Id}}' "$tag")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then docker image rm "$old" >/dev/null 2>&1 || true; fi
  pods_log "images: built $tag in $((SECONDS - start))s"
}

# ---- what to do ------------------------------------------------------------------------

todo=()
for name in "${names[@]}"; do
  key=$(image_key "$name")
  have=$(docker image inspect --format '{{index .Config.Labels "pods.image-key"}}' "$(image_tag "$name")" 2>/dev/null || true)
  if [ -z "$force" ] && [ "$have" = "$key" ]; then
    pods_log "images: $(image_tag "$name") is up to date"
  else
    todo+=("$name:$key")
  fi
done
[ ${#todo[@]} -gt 0 ] || exit 0

is_root || pods_die "building the template images needs root (debootstrap, chroot)"
mkdir -p "$cache_root"
# One build at a time; a second caller waits, then finds the tarballs.
exec 9>"$cache_root/.lock"
flock 9
total=$SECONDS
for entry in "${todo[@]}"; do
  name=${entry%%:*} key=${entry#*:}
  layer=$cache_root/$name-$key.tar
  if [ -n "$force" ] || [ ! -s "$layer" ] || [ ! -s "$layer.args" ]; then
    if [ ! -s "$base_tar" ]; then
      start=$SECONDS
      rootfs=$(mktemp -d "$cache_root/rootfs.XXXXXX")
      make_base
      tar_of "$rootfs" "$base_tar"
      cleanup
      pods_log "images: the $suite base (debootstrap --variant=minbase, apt-get upgrade) took $((SECONDS - start))s"
    fi
    build_layer "$name" "$key"
  fi
  load_image "$name" "$key"
  # Layers of other keys of this image are of older recipes.
  for old in "$cache_root/$name"-*.tar; do
    [ "$old" = "$layer" ] || rm -f "$old" "$old.args" "$old.sha256"
  done
done
# Bases of other keys, and the caches of the script this one replaced (db-images/).
for old in "$cache_root"/base-*.tar; do
  [ "$old" = "$base_tar" ] || rm -f "$old" "$old.sha256"
done
rm -rf --one-file-system "$(dirname "$cache_root")/db-images"
pods_log "images: done in $((SECONDS - total))s"
