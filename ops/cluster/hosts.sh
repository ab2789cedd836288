#!/usr/bin/env bash
# Several Docker hosts on one machine, for the multi-host tests (test/cluster/).
#
#   ops/cluster/hosts.sh up N            hosts pods-h1..pods-hN (others beyond N are taken down)
#   ops/cluster/hosts.sh down [--purge]  everything this script made; --purge also drops the
#                                        engines' data roots (their image caches)
#   ops/cluster/hosts.sh status
#   ops/cluster/hosts.sh env K           the host's addresses and paths, as shell variables
#   ops/cluster/hosts.sh exec K CMD...   run CMD inside host K's network namespace
#   ops/cluster/hosts.sh start-dockerd K | stop-dockerd K [--kill]
#   ops/cluster/hosts.sh link K up|down  cut or restore host K's link (the root side of its veth)
#
# A host is a network namespace pods-hK whose eth0 (one end of a veth; the other end,
# veth-pods-hK, is a port of the bridge podsbr0 in the root namespace) has 10.213.0.(10+K)/24
# and a default route via the bridge's 10.213.0.1, where the coordinator listens. In each
# namespace runs a dockerd of its own:
#   --data-root /var/lib/pods-cluster/hK/docker   (kept by `down`, so images stay loaded)
#   --exec-root /run/pods-cluster/hK/exec, -H unix:///run/pods-cluster/hK/docker.sock,
#   --pidfile /run/pods-cluster/hK/docker.pid, its default bridge docker0 (inside the
#   namespace) on 10.213.K.1/24, --icc=false and --live-restore (as ops/install-agent.sh
#   sets them), its own iptables rules (netfilter is per
#   network namespace, so they never touch the root namespace's), overlay2, containers under
#   the cgroup parent /pods-hK, log /tmp/pods-cluster/hK-dockerd.log.
# dockerd runs in a mount namespace of the host's own, kept across dockerd restarts (see
# ensure_mountns).
#
# The images in PODS_CLUSTER_IMAGES (default pods-test/httpd:latest) are copied from the
# machine's own engine (docker save | docker load, no registry). `up` leaves every engine
# with no containers.
#
# In the root namespace this script adds only: the bridge, the veths, an unreachable route for
# 10.213.0.0/16 (so nothing for the hosts' docker0 subnets ever leaves by the default route;
# the more specific 10.213.0.0/24 of the bridge still wins), and two FORWARD rules (comment
# "pods-cluster") that let the hosts reach each other and nowhere else. It never
# touches docker0, the machine's dockerd or its containers. Needs root.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BRIDGE=${PODS_CLUSTER_BRIDGE:-podsbr0}
NET=${PODS_CLUSTER_NET:-10.213.0}          # the hosts' /24; the root namespace is .1
BIP_PREFIX=${PODS_CLUSTER_BIP_PREFIX:-10.213} # host K's docker0 is $BIP_PREFIX.K.1/24
# A second cluster of another kind (ops/cluster/swarm.sh) runs beside this one under other names.
PREFIX=${PODS_CLUSTER_PREFIX:-pods-h}         # host K's namespace and cgroup parent are $PREFIX$K
LIB=${PODS_CLUSTER_LIB:-/var/lib/pods-cluster}
RUN=${PODS_CLUSTER_RUN:-/run/pods-cluster}
LOGS=${PODS_CLUSTER_LOGS:-/tmp/pods-cluster}
# Swarm mode refuses --live-restore (PODS_CLUSTER_LIVE_RESTORE=0 leaves it out).
LIVE_RESTORE=${PODS_CLUSTER_LIVE_RESTORE:-1}
IMAGES=${PODS_CLUSTER_IMAGES:-pods-test/httpd:latest}
MAX_HOSTS=50
RULE_COMMENT=${PODS_CLUSTER_RULE_COMMENT:-pods-cluster}
BRIDGE_MAC=${PODS_CLUSTER_BRIDGE_MAC:-02:70:6f:64:73:01} # locally administered

ns_of() { printf '%s%s' "$PREFIX" "$1"; }
veth_of() { printf 'veth-%s%s' "$PREFIX" "$1"; }
addr_of() { printf '%s.%s' "$NET" $((10 + $1)); }
sock_of() { printf '%s/h%s/docker.sock' "$RUN" "$1"; }
dk() { local k=$1; shift; docker -H "unix://$(sock_of "$k")" "$@"; }

need_root() { is_root || pods_die "ops/cluster/hosts.sh needs root"; }
check_k() {
  [[ $1 =~ ^[1-9][0-9]*$ ]] && [ "$1" -le $MAX_HOSTS ] || pods_die "host number must be 1..$MAX_HOSTS, got '$1'"
}
ns_exists() { [ -e "/run/netns/$(ns_of "$1")" ]; }

# The hosts that exist now (by namespace or by run directory), as numbers.
present_hosts() {
  {
    ip netns list 2>/dev/null | awk -v p="$PREFIX" 'index($1, p) == 1 { k = substr($1, length(p) + 1); if (k ~ /^[0-9]+$/) print k }'
    for d in "$RUN"/h*; do [ -d "$d" ] && basename "$d" | sed -n 's/^h\([0-9][0-9]*\)$/\1/p'; done
    ip -o link show 2>/dev/null | sed -n "s/^[0-9]*: veth-$PREFIX\\([0-9][0-9]*\\)[@:].*/\\1/p"
  } | sort -un
}

# ---- the root namespace: bridge and guard rules ---------------------------------------------

forward_rules() {
  # The hosts may talk to each other across the bridge (bridged frames pass FORWARD when
  # br_netfilter is loaded) but nothing they send is forwarded anywhere else.
  printf '%s\n' "-i $BRIDGE -o $BRIDGE -m comment --comment $RULE_COMMENT -j ACCEPT" \
    "-i $BRIDGE ! -o $BRIDGE -m comment --comment $RULE_COMMENT -j DROP"
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    # A MAC of its own: a bridge without one takes the lowest of its ports' MACs, so adding or
    # removing a host would change the gateway's MAC under the other hosts' ARP caches (seen
    # here: hosts timing out on the coordinator for as long as their stale entry lived).
    ip link add "$BRIDGE" address "$BRIDGE_MAC" type bridge
    sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1" || true
  fi
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The hosts' docker0 subnets are not routed from here: a stray packet to one must fail
  # here, not leave by the default route.
  ip route replace unreachable "$BIP_PREFIX.0.0/16"
  local rule
  # Inserted in reverse so that ACCEPT (same bridge) comes before DROP (anywhere else).
  while IFS= read -r rule; do
    # shellcheck disable=SC2086
    iptables -C FORWARD $rule 2>/dev/null || iptables -I FORWARD 1 $rule
  done < <(forward_rules | tac)
}

remove_bridge() {
  local rule
  while IFS= read -r rule; do
    # shellcheck disable=SC2086
    while iptables -C FORWARD $rule 2>/dev/null; do iptables -D FORWARD $rule; done
  done < <(forward_rules)
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  ip route del unreachable "$BIP_PREFIX.0.0/16" 2>/dev/null || true
}

# ---- one host ------------------------------------------------------------------------------

ensure_netns() {
  local k=$1 ns veth
  ns=$(ns_of "$k") veth=$(veth_of "$k")
  ns_exists "$k" || ip netns add "$ns"
  # The namespace's eth0 must be the peer of our veth ("eth0@ifN", N the veth's index); a
  # half-made or half-removed host gets both afresh.
  local peer idx
  peer=$({ ip -n "$ns" -o link show eth0 2>/dev/null || true; } | sed -n 's/^[0-9]*: eth0@if\([0-9]*\):.*/\1/p')
  idx=$(cat "/sys/class/net/$veth/ifindex" 2>/dev/null || true)
  if [ -z "$peer" ] || [ "$peer" != "$idx" ]; then
    ip link del "$veth" 2>/dev/null || true
    ip -n "$ns" link del eth0 2>/dev/null || true
    ip link add "$veth" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$veth" master "$BRIDGE"
  ip link set "$veth" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$(addr_of "$k")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route replace default via "$NET.1" dev eth0
}

cmdline_of() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

dockerd_pid() {
  local pid
  pid=$(cat "$RUN/h$1/docker.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && is_alive "$pid" || return 1
  # A pid recycled since: it must be a dockerd of this host.
  cmdline_of "$pid" | grep -q -- "--exec-root $RUN/h$1/exec" || return 1
  printf '%s\n' "$pid"
}

dockerd_ready() { dk "$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# Host K's mount namespace, made once and kept (bound to $RUN/hK/ns/mnt) for as long as the
# host: dockerd, containerd and the shims see the same mounts across dockerd restarts, as on a
# real machine, and none of them propagate back to the root namespace. In it: a sysfs of the
# host's network namespace (as `ip netns exec` mounts one) with /sys/fs/cgroup bound back in
# (`ip netns exec` loses the cgroup mounts that live under /sys, and dockerd needs them).
ensure_mountns() {
  local k=$1 ns dir
  ns=$(ns_of "$k") dir=$RUN/h$k
  mkdir -p "$dir/ns" "$dir/cgroup"
  mountpoint -q "$dir/ns/mnt" 2>/dev/null && return 0
  if ! mountpoint -q "$dir/ns"; then
    # A namespace file may only be bound under a private mount.
    mount --bind "$dir/ns" "$dir/ns"
    mount --make-private "$dir/ns"
  fi
  touch "$dir/ns/mnt"
  # shellcheck disable=SC2016
  unshare "--mount=$dir/ns/mnt" --propagation slave -- nsenter "--net=/run/netns/$ns" -- /bin/sh -c '
      set -e
      keep=$1; ns=$2
      mount --rbind /sys/fs/cgroup "$keep"
      mount -t sysfs "$ns" /sys
      mount --rbind "$keep" /sys/fs/cgroup
      umount -l "$keep"' sh "$dir/cgroup" "$ns"
}

# Start host K's dockerd in the background (returns at once; see wait_dockerd).
launch_dockerd() {
  local k=$1 ns dir pid
  ns=$(ns_of "$k") dir=$RUN/h$k
  ns_exists "$k" || pods_die "host $k does not exist (run: $0 up N)"
  dockerd_pid "$k" >/dev/null && return 0
  mkdir -p "$dir/exec" "$LIB/h$k/docker" "$LOGS"
  ensure_mountns "$k"
  [ -f "$dir/daemon.json" ] || echo '{}' >"$dir/daemon.json"
  rm -f "$dir/docker.pid"
  # After a kill -9 of dockerd its containerd dies too, but may linger a moment as a zombie,
  # which dockerd would take for a live containerd and wait on in vain.
  pid=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && ! is_alive "$pid"; then rm -f "$dir/exec/containerd/containerd.pid"; fi
  local live_restore=()
  [ "$LIVE_RESTORE" = 1 ] && live_restore=(--live-restore)
  printf '\n==== %s starting dockerd in %s\n' "$(date -Is)" "$ns" >>"$LOGS/h$k-dockerd.log"
  # setsid -f: detached, like a system service, holding no pipe of the caller's.
  setsid -f nsenter "--mount=$dir/ns/mnt" "--net=/run/netns/$ns" -- \
    dockerd \
    --config-file "$dir/daemon.json" \
    --data-root "$LIB/h$k/docker" \
    --exec-root "$dir/exec" \
    -H "unix://$dir/docker.sock" \
    --pidfile "$dir/docker.pid" \
    --bip "$BIP_PREFIX.$k.1/24" \
    --icc=false \
    "${live_restore[@]}" \
    --iptables=true \
    --ip-masq=true \
    --storage-driver overlay2 \
    --cgroup-parent "/$PREFIX$k" \
    >>"$LOGS/h$k-dockerd.log" 2>&1 </dev/null
}

wait_dockerd() {
  local k=$1 i
  for ((i = 0; i < 600; i++)); do
    dockerd_ready "$k" && return 0
    # The pidfile appears within a moment of the start; a dockerd that is gone will not answer.
    if [ "$i" -gt 50 ] && ! dockerd_pid "$k" >/dev/null; then break; fi
    sleep 0.1
  done
  pods_log "dockerd of host $k did not come up; last lines of $LOGS/h$k-dockerd.log:"
  tail -n 30 "$LOGS/h$k-dockerd.log" >&2 || true
  return 1
}

# kill_pid PID [GRACE_S]: TERM, then KILL after GRACE_S seconds (0: KILL at once); waits.
kill_pid() {
  local pid=$1 grace=${2:-20} i
  is_alive "$pid" || return 0
  if [ "$grace" -eq 0 ]; then kill -KILL "$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  for ((i = 0; i < grace * 10 + 50; i++)); do
    is_alive "$pid" || return 0
    [ "$i" -eq $((grace * 10)) ] && kill -KILL "$pid" 2>/dev/null
    sleep 0.1
  done
  pods_log "warning: process $pid did not exit"
}

stop_dockerd() {
  local k=$1 mode=${2:-} pid
  if pid=$(dockerd_pid "$k"); then
    if [ "$mode" = --kill ]; then kill_pid "$pid" 0; else kill_pid "$pid" 30; fi
  fi
  # The containerd it started exits with it on a clean stop; after kill -9 it stays and the
  # next dockerd of this host picks it up again. Only `down` ends it (below).
  rm -f "$RUN/h$k/docker.pid"
}

# Every process still in host K's network namespace or in its containers' cgroups.
host_pids() {
  local k=$1 f
  ip netns pids "$(ns_of "$k")" 2>/dev/null || true
  for f in /sys/fs/cgroup/*/"$PREFIX$k"; do
    [ -d "$f" ] && find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  true
}

remove_cgroups() {
  local k=$1 f
  for f in /sys/fs/cgroup/*/"$PREFIX$k"; do
    [ -d "$f" ] && find "$f" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  true
}

# Mounts in this (the root) mount namespace under host K's directories, deepest first.
host_mounts() {
  awk -v a="$RUN/h$1/" -v b="$LIB/h$1/" '
    index($5 "/", a) == 1 || index($5 "/", b) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

down_host() {
  local k=$1 pid m i ns
  ns=$(ns_of "$k")
  if dockerd_ready "$k"; then
    # Containers first (kill -9 is fine for a test engine), so dockerd stops at once.
    local ids
    ids=$(dk "$k" ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || dk "$k" rm -f $ids >/dev/null 2>&1 || true
  fi
  stop_dockerd "$k"
  pid=$(cat "$RUN/h$k/exec/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && cmdline_of "$pid" | grep -q "$RUN/h$k/exec"; then
    kill_pid "$pid" 5
  fi
  # Whatever is left in the host: its agent and Caddy, shims and container processes after a
  # kill -9 of dockerd. Found by namespace and cgroup, so nothing else is touched.
  for ((i = 0; i < 3; i++)); do
    pid=$(host_pids "$k" | sort -un | tr '\n' ' ')
    [ -n "${pid// /}" ] || break
    # shellcheck disable=SC2086
    kill -KILL $pid 2>/dev/null || true
    sleep 0.2
  done
  remove_cgroups "$k"
  while IFS= read -r m; do [ -n "$m" ] && umount -l "$m" 2>/dev/null || true; done < <(host_mounts "$k")
  # The veth first: deleting it takes both ends at once, while a deleted namespace is torn
  # down later by the kernel, and its end of the veth with it (it could then take the root end
  # away from under the next `up`).
  ip link del "$(veth_of "$k")" 2>/dev/null || true
  if ns_exists "$k"; then ip netns del "$ns" 2>/dev/null || pods_log "warning: could not delete namespace $ns"; fi
  if [ -z "$(host_mounts "$k")" ]; then rm -rf "${RUN:?}/h$k"; else pods_log "warning: mounts left under $RUN/h$k"; fi
}

# ---- images --------------------------------------------------------------------------------

# Save each image of the machine's engine once (cached by image id) and load it into each host
# that lacks it.
load_images() {
  local image id tar k pids=() failed=0
  mkdir -p "$LIB/images"
  for image in $IMAGES; do
    id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) \
      || pods_die "the machine's Docker engine has no $image (ops/images/build-test-image.sh builds pods-test/httpd)"
    tar=$LIB/images/${id#sha256:}.tar
    if [ ! -s "$tar" ]; then
      docker save "$image" -o "$tar.tmp"
      mv "$tar.tmp" "$tar"
    fi
    for k in "$@"; do
      [ "$(dk "$k" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)" = "$id" ] && continue
      dk "$k" load -q -i "$tar" >/dev/null &
      pids+=($!)
    done
    for id in "${pids[@]}"; do wait "$id" || failed=1; done
    pids=()
  done
  [ "$failed" -eq 0 ] || pods_die "could not load the images into every host"
}

# ---- commands ------------------------------------------------------------------------------

cmd_up() {
  local n=${1:-} k t0 ids
  [[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le $MAX_HOSTS ] || pods_die "usage: $0 up N (1..$MAX_HOSTS)"
  t0=$(date +%s%N)
  for k in $(present_hosts); do
    if [ "$k" -gt "$n" ]; then down_host "$k"; fi
  done
  ensure_bridge
  for ((k = 1; k <= n; k++)); do ensure_netns "$k"; done
  for ((k = 1; k <= n; k++)); do launch_dockerd "$k"; done
  for ((k = 1; k <= n; k++)); do wait_dockerd "$k"; done
  for ((k = 1; k <= n; k++)); do
    ids=$(dk "$k" ps -aq)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || dk "$k" rm -f $ids >/dev/null
  done
  load_images $(seq 1 "$n")
  t0=$((($(date +%s%N) - t0) / 1000000))
  pods_log "$(printf 'up %d hosts in %d.%03d s' "$n" $((t0 / 1000)) $((t0 % 1000)))"
}

cmd_down() {
  local purge=${1:-} k
  # One host that will not go must not keep the others up.
  for k in $(present_hosts); do down_host "$k" || pods_log "warning: host $k was not taken down cleanly"; done
  remove_bridge
  rmdir "$RUN" 2>/dev/null || true
  if [ "$purge" = --purge ]; then
    for k in "$LIB"/h*; do
      [ -d "$k" ] || continue
      k=${k##*/h}
      [ -z "$(host_mounts "$k")" ] || pods_die "mounts left under $LIB/h$k; not purging"
    done
    rm -rf "$LIB"
  fi
}

cmd_status() {
  local k state
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE $NET.1/24" || echo "bridge $BRIDGE absent"
  for k in $(present_hosts); do
    state=down
    dockerd_ready "$k" && state="up ($(dk "$k" ps -q | wc -l) containers)"
    printf '%s addr=%s link=%s dockerd=%s\n' "$(ns_of "$k")" "$(addr_of "$k")" \
      "$(ip -br link show "$(veth_of "$k")" 2>/dev/null | awk '{print $2}' || echo absent)" "$state"
  done
}

cmd_env() {
  local k=$1
  check_k "$k"
  printf 'POD_HOST_NS=%s\nPOD_HOST_ADDR=%s\nPOD_HOST_VETH=%s\nPOD_HOST_DOCKER_SOCKET=%s\nPOD_HOST_DOCKER_PIDFILE=%s\nPOD_HOST_BRIDGE_ADDR=%s\n' \
    "$(ns_of "$k")" "$(addr_of "$k")" "$(veth_of "$k")" "$(sock_of "$k")" "$RUN/h$k/docker.pid" "$NET.1"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    up) need_root; cmd_up "$@" ;;
    down) need_root; cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env "${1:-}" ;;
    exec)
      need_root; check_k "${1:-}"
      local k=$1; shift
      exec ip netns exec "$(ns_of "$k")" "$@"
      ;;
    start-dockerd) need_root; check_k "${1:-}"; launch_dockerd "$1"; wait_dockerd "$1" ;;
    stop-dockerd) need_root; check_k "${1:-}"; stop_dockerd "$1" "${2:-}" ;;
    link)
      need_root; check_k "${1:-}"
      case ${2:-} in up | down) ip link set "$(veth_of "$1")" "$2" ;; *) pods_die "usage: $0 link K up|down" ;; esac
      ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
