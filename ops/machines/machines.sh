#!/usr/bin/env bash
# Booted Debian 12 machines on this host (systemd-nspawn), for testing the installers as a site
# admin runs them (test/machines/).
#
#   ops/machines/machines.sh up NAME:OCTET...   boot each machine (made first if it does not exist)
#   ops/machines/machines.sh boot NAME | poweroff NAME    one machine (its disk is kept)
#   ops/machines/machines.sh exec NAME CMD...   run CMD as root inside NAME (all its namespaces)
#   ops/machines/machines.sh copy-in NAME SRC DEST   copy host directory SRC to DEST in NAME
#   ops/machines/machines.sh down [NAME...]     power off and remove machines (default: all), and
#                                               the bridge when none is left
#   ops/machines/machines.sh status
#
# Each machine boots the cached root of ops/machines/build-root.sh through an overlay of its own
# (/var/lib/pods-machines/NAME/{upper,work,root}); /var/lib/docker and /var/lib/containerd are
# plain directories beside it (overlay2 cannot sit on an overlay). Its one link, host0, is a veth
# whose other end vb-NAME is a port of the bridge podsmbr0 (10.216.0.1/24 in this namespace);
# NAME gets 10.216.0.OCTET/24 (systemd-networkd) and no default route, so it reaches this
# namespace and the other machines only. Flags measured to let Debian's docker.io run inside on
# a cgroup v1 host: --capability=all --system-call-filter='@keyring bpf' --bind=/sys/fs/cgroup.
# Each machine runs in a cgroup of its own (pods-machines/NAME in every v1 hierarchy), so its
# systemd keeps to that subtree. No host systemd is needed (--register=no --keep-unit).
# In this namespace the script adds only the bridge and two FORWARD rules (comment
# "pods-machines") that keep bridged frames between the machines; `down` removes them.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BRIDGE=${PODS_MACHINES_BRIDGE:-podsmbr0}
NET=${PODS_MACHINES_NET:-10.216.0}
LIB=/var/lib/pods-machines
RUN=/run/pods-machines
LOGS=/tmp/pods-machines
CGROUP=pods-machines
RULE_COMMENT=pods-machines

need_root() { is_root || pods_die "ops/machines/machines.sh needs root"; }
check_name() {
  [[ $1 =~ ^[a-z][a-z0-9-]{0,11}$ ]] || pods_die "machine name must be 1-12 lowercase letters, digits or dashes, got '$1'"
}
nspawn_pid() { local p; p=$(cat "$RUN/$1/nspawn.pid" 2>/dev/null) && is_alive "$p" && printf '%s' "$p"; }
# The machine's PID 1: the child of systemd-nspawn that runs systemd.
leader_pid() {
  local p c
  p=$(nspawn_pid "$1") || return 1
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && { printf '%s' "$c"; return 0; }
  done
  return 1
}
machines_present() { for d in "$LIB"/*/; do [ -d "$d/upper" ] && basename "$d"; done; }

ensure_host_tools() {
  PODS_APT_PACKAGES=(systemd-container:systemd-nspawn debootstrap:debootstrap iproute2:ip iptables:iptables)
  ensure_packages
  # The cgroup set-up below (a cgroup per machine in each v1 hierarchy, the controllers made
  # writable inside) is for cgroup v1 hosts, where it was measured; v2 has not been tried.
  [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] \
    || pods_die "this host has cgroup v2 only; ops/machines/machines.sh supports cgroup v1 hosts (untried on v2)"
}

# ---- this namespace: the bridge and its guard rules -----------------------------------------

forward_rules() {
  printf '%s\n' "-i $BRIDGE -o $BRIDGE -m comment --comment $RULE_COMMENT -j ACCEPT" \
    "-i $BRIDGE ! -o $BRIDGE -m comment --comment $RULE_COMMENT -j DROP"
}

bridge_up() {
  local rule
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  # With br_netfilter, bridged frames pass FORWARD, where Docker's policy is DROP.
  while read -r rule; do
    # shellcheck disable=SC2086 # the rule is words
    iptables -C FORWARD $rule 2>/dev/null || iptables -I FORWARD $rule
  done < <(forward_rules | tac)
}

bridge_down() {
  local rule
  while read -r rule; do
    # shellcheck disable=SC2086
    while iptables -D FORWARD $rule 2>/dev/null; do :; done
  done < <(forward_rules)
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
}

# ---- one machine ----------------------------------------------------------------------------

# create NAME OCTET: its overlay over the cached root, its address and hostname.
create() {
  local name=$1 octet=$2 dir=$LIB/$1 root
  root=$("$PODS_ROOT/ops/machines/build-root.sh")
  mkdir -p "$dir/upper" "$dir/work" "$dir/root" "$dir/docker" "$dir/containerd" "$RUN/$name" "$LOGS"
  printf '%s\n' "$root" >"$dir/lower"
  if ! mountpoint -q "$dir/root"; then
    mount -t overlay "pods-machine-$name" -o "lowerdir=$root,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
  fi
  mkdir -p "$dir/root/etc/systemd/network"
  printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' "$NET.$octet" \
    >"$dir/root/etc/systemd/network/10-pods-machine.network"
  printf '%s\n' "$name" >"$dir/root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >"$dir/root/etc/hosts"
  # nspawn mounts the cgroup controllers read-only on a cgroup v1 host; Docker writes to them.
  # The mounts show the machine's own subtree only (its cgroup namespace), so they may be
  # writable: at every boot, before anything else, this makes them so.
  cat >"$dir/root/etc/systemd/system/nspawn-cgroups-rw.service" <<'UNIT'
[Unit]
Description=Writable cgroup controllers for Docker (ops/machines/machines.sh)
DefaultDependencies=no
Before=sysinit.target containerd.service docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup/*/; do case $d in */systemd/ | */unified/) ;; *) mount -o remount,bind,rw "$d" ;; esac; done'

[Install]
WantedBy=sysinit.target
UNIT
  mkdir -p "$dir/root/etc/systemd/system/sysinit.target.wants"
  ln -sf ../nspawn-cgroups-rw.service "$dir/root/etc/systemd/system/sysinit.target.wants/nspawn-cgroups-rw.service"
  printf '%s\n' "$octet" >"$dir/octet"
}

# machine_cgroups NAME: the machine's cgroup pods-machines/NAME in every hierarchy (v1 and the
# hybrid's unified one, where systemd tracks its own)
# (cpuset's made usable: a new cpuset has no CPUs); prints each hierarchy's name.
machine_cgroups() {
  local name=$1 h dir f
  for h in /sys/fs/cgroup/*/; do
    h=${h%/}
    [ -f "$h/cgroup.procs" ] && [ ! -L "$h" ] || continue
    for dir in "$h/$CGROUP" "$h/$CGROUP/$name"; do
      mkdir -p "$dir"
      for f in cpuset.cpus cpuset.mems; do
        [ -f "$dir/$f" ] && [ -z "$(cat "$dir/$f")" ] && cat "$(dirname "$dir")/$f" >"$dir/$f"
      done
    done
    printf '%s\n' "${h##*/}"
  done
}

boot() {
  local name=$1 dir=$LIB/$1 log=$LOGS/$1.log pid i
  [ -d "$dir/upper" ] || pods_die "no machine $name (up makes it)"
  nspawn_pid "$name" >/dev/null && return 0
  bridge_up
  mountpoint -q "$dir/root" \
    || mount -t overlay "pods-machine-$name" -o "lowerdir=$(cat "$dir/lower"),upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
  # The machine runs in pods-machines/NAME of every hierarchy, its systemd in a cgroup
  # namespace rooted there, so what it and its Docker make stays below that cgroup.
  local hierarchies
  hierarchies=$(machine_cgroups "$name" | tr '\n' ' ')
  # A session of its own (setsid) so that it outlives the caller; it joins its cgroups first.
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'for h in $1; do echo $$ >"/sys/fs/cgroup/$h/$2/cgroup.procs"; done; shift 2; exec "$@"' \
    machine "$hierarchies" "$CGROUP/$name" \
    systemd-nspawn --quiet --boot --directory="$dir/root" --machine="$name" \
    --register=no --keep-unit --link-journal=no --console=read-only \
    --network-bridge="$BRIDGE" --capability=all --system-call-filter='@keyring bpf' \
    --bind="$dir/docker:/var/lib/docker" --bind="$dir/containerd:/var/lib/containerd" \
    >>"$log" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$RUN/$name/nspawn.pid"
  # Booted: systemd answers and has reached its default target (running, or degraded).
  for ((i = 0; i < 120; i++)); do
    if leader_pid "$name" >/dev/null; then
      case $(in_machine "$name" systemctl is-system-running 2>/dev/null) in
        running | degraded)
          # and networkd has given host0 its address
          in_machine "$name" ip -4 -o addr show dev host0 | grep -q " $NET.$(cat "$dir/octet")/" && return 0 ;;
      esac
    fi
    is_alive "$pid" || break
    sleep 0.5
  done
  pods_log "machine $name did not boot; last lines of $log:"
  tail -n 30 "$log" >&2 || true
  return 1
}

# in_machine NAME CMD...: CMD as root in NAME's namespaces, with a clean environment.
in_machine() {
  local name=$1 leader
  shift
  leader=$(leader_pid "$name") || pods_die "machine $name is not running"
  nsenter --target "$leader" --mount --uts --ipc --net --pid --root --wd -- \
    /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}

# poweroff NAME: a clean shutdown (nspawn turns SIGTERM into the container's poweroff), then
# the nspawn process and everything of the machine gone.
poweroff() {
  local name=$1 pid i
  pid=$(nspawn_pid "$name") || { rm -f "$RUN/$name/nspawn.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do is_alive "$pid" || break; sleep 0.5; done
  if is_alive "$pid"; then
    pods_log "machine $name did not power off within 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do is_alive "$pid" || break; sleep 0.5; done
  fi
  rm -f "$RUN/$name/nspawn.pid"
  # What the machine's systemd and Docker made below its cgroups is empty now.
  local h
  for h in /sys/fs/cgroup/*/"$CGROUP/$name"; do [ -d "$h" ] && remove_cgroup "$h"; done
  return 0
}

# remove_cgroup DIR: DIR and its (empty) sub-cgroups, deepest first.
remove_cgroup() { find "$1" -depth -type d -exec rmdir {} \; 2>/dev/null || true; }

destroy() {
  local name=$1 dir=$LIB/$1
  poweroff "$name"
  if mountpoint -q "$dir/root"; then umount "$dir/root" || umount -l "$dir/root"; fi
  rm -rf "$dir" "$RUN/$name"
}

cmd_up() {
  local spec name octet
  need_root
  ensure_host_tools
  [ $# -gt 0 ] || pods_die "up needs NAME:OCTET..."
  for spec in "$@"; do
    name=${spec%%:*} octet=${spec#*:}
    check_name "$name"
    [[ $octet =~ ^[0-9]+$ ]] && [ "$octet" -ge 2 ] && [ "$octet" -le 254 ] || pods_die "octet must be 2..254, got '$octet'"
    [ -d "$LIB/$name/upper" ] || create "$name" "$octet"
  done
  for spec in "$@"; do boot "${spec%%:*}"; done
}

cmd_down() {
  local name names
  need_root
  if [ $# -gt 0 ]; then names=("$@"); else mapfile -t names < <(machines_present); fi
  for name in "${names[@]}"; do check_name "$name"; destroy "$name"; done
  if [ -z "$(machines_present)" ]; then
    bridge_down
    for h in /sys/fs/cgroup/*/"$CGROUP"; do [ -d "$h" ] && remove_cgroup "$h"; done
  fi
  return 0
}

cmd_status() {
  local name
  for name in $(machines_present); do
    if leader_pid "$name" >/dev/null; then
      printf '%s %s.%s %s\n' "$name" "$NET" "$(cat "$LIB/$name/octet")" "$(in_machine "$name" systemctl is-system-running 2>/dev/null || true)"
    else
      printf '%s %s.%s off\n' "$name" "$NET" "$(cat "$LIB/$name/octet")"
    fi
  done
}

# copy-in NAME SRC DEST: a tar stream into the running machine (its own tar unpacks it).
cmd_copy_in() {
  local name=$1 src=$2 dest=$3
  tar -C "$src" -cf - . | in_machine "$name" sh -c 'rm -rf "$1" && mkdir -p "$1" && tar -C "$1" -xf -' copy-in "$dest"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) cmd_up "$@" ;;
  boot) need_root; check_name "${1:?boot NAME}"; boot "$1" ;;
  poweroff) need_root; check_name "${1:?poweroff NAME}"; poweroff "$1" ;;
  exec) need_root; check_name "${1:?exec NAME CMD...}"; in_machine "$@" ;;
  copy-in) need_root; check_name "${1:?copy-in NAME SRC DEST}"; cmd_copy_in "$1" "${2:?}" "${3:?}" ;;
  down) cmd_down "$@" ;;
  status) cmd_status ;;
  *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
