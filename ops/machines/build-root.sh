#!/usr/bin/env bash
# Build the Debian 12 root that ops/machines/machines.sh boots, once, and print its path.
#
#   ops/machines/build-root.sh
#
# The root is ${PODS_CACHE_DIR:-$HOME/.cache/pods}/machines/root-<hash>, keyed by the sha256 of
# this file (the recipe): change the recipe and the next run builds a new root. A built root is
# never changed afterwards; machines boot from it through an overlay each.
#
# Recipe: `debootstrap --variant=minbase` bookworm with systemd, then the Debian packages the
# installers (ops/install-coordinator.sh, ops/install-agent.sh) would otherwise fetch with apt,
# so that provisioning a machine needs no network: docker.io, redis-server, redis-tools, curl,
# ca-certificates, openssl, iproute2. Their services are disabled here; the installers enable
# what each role runs, as on a fresh host. systemd-networkd is enabled (the machines' fixed
# addresses). Needs root and debootstrap; takes about a minute and a half.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

SUITE=bookworm
MIRROR=${PODS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BOOT_PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd
INSTALLER_PACKAGES=(docker.io redis-server redis-tools curl ca-certificates openssl iproute2 procps)
DISABLED_UNITS=(docker.service docker.socket containerd.service redis-server.service)

is_root || pods_die "ops/machines/build-root.sh needs root"
key=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
cache=${PODS_CACHE_DIR:-$HOME/.cache/pods}/machines
root=$cache/root-$key

build() {
  local stage=$cache/.build-$key
  rm -rf "$stage"
  pods_log "building the machines' root $root (debootstrap $SUITE)"
  debootstrap --variant=minbase --include="$BOOT_PACKAGES" "$SUITE" "$stage" "$MIRROR" >&2
  # No service starts inside the chroot while packages install.
  printf '#!/bin/sh\nexit 101\n' >"$stage/usr/sbin/policy-rc.d"
  chmod 755 "$stage/usr/sbin/policy-rc.d"
  chroot "$stage" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${INSTALLER_PACKAGES[@]}" >&2
  chroot "$stage" apt-get clean
  rm -f "$stage/usr/sbin/policy-rc.d"
  chroot "$stage" systemctl disable "${DISABLED_UNITS[@]}" >/dev/null 2>&1
  chroot "$stage" systemctl enable systemd-networkd.service >/dev/null 2>&1
  # Each machine gets its own id at first boot.
  : >"$stage/etc/machine-id"
  rm -f "$stage/var/lib/dbus/machine-id"
  mv "$stage" "$root"
}

mkdir -p "$cache"
if [ ! -d "$root" ]; then
  # One build at a time; a second caller waits, then finds the root.
  exec 9>"$cache/root-$key.lock"
  flock 9
  [ -d "$root" ] || build
  flock -u 9
fi
printf '%s\n' "$root"
