#!/usr/bin/env bash
# Docker hosts on one machine joined into one Swarm, for the Swarm backend's tests (test/swarm/).
#
#   ops/cluster/swarm.sh up N     hosts pods-s1..pods-sN (ops/cluster/hosts.sh up N under other
#                                 names), host 1 the only manager, the others workers; no
#                                 service left from an earlier run
#   ops/cluster/swarm.sh down [--purge] | status | env K | exec K CMD... | link K up|down
#                                 as ops/cluster/hosts.sh, for these hosts
#
# The same hosts as ops/cluster/hosts.sh makes (read it), beside its cluster, not instead:
# namespaces pods-sK on the bridge podssw0 (10.214.0.1/24, host K 10.214.0.(10+K)), docker0 of
# host K on 10.215.K.1/24, state under /var/lib/pods-swarm and /run/pods-swarm, logs in
# /tmp/pods-swarm. dockerd runs without --live-restore: Swarm mode refuses it.
# The swarm's own networks (ingress, overlays) take their subnets from 10.216.0.0/16. Each
# Swarm node carries the label pods.node=hK, the node id its agent connects with.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

export PODS_CLUSTER_PREFIX=pods-s PODS_CLUSTER_BRIDGE=podssw0 PODS_CLUSTER_NET=10.214.0 \
  PODS_CLUSTER_BIP_PREFIX=10.215 PODS_CLUSTER_BRIDGE_MAC=02:70:6f:64:73:02 \
  PODS_CLUSTER_LIB=/var/lib/pods-swarm PODS_CLUSTER_RUN=/run/pods-swarm PODS_CLUSTER_LOGS=/tmp/pods-swarm \
  PODS_CLUSTER_RULE_COMMENT=pods-swarm PODS_CLUSTER_LIVE_RESTORE=0
HOSTS="$(dirname "${BASH_SOURCE[0]}")/hosts.sh"
ADDR_POOL=10.216.0.0/16

dk() { local k=$1; shift; docker -H "unix://$PODS_CLUSTER_RUN/h$k/docker.sock" "$@"; }
addr_of() { printf '%s.%s' "$PODS_CLUSTER_NET" $((10 + $1)); }
swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }
swarm_id() { dk "$1" info --format '{{.Swarm.Cluster.ID}}' 2>/dev/null || true; }

# Host 1 is the manager; every other host joins it as a worker. A host in another swarm (or a
# stale one, after `up` with fewer hosts) leaves it first.
join_swarm() {
  local n=$1 k manager token
  if [ "$(swarm_state 1)" != active ] || [ "$(dk 1 info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
    dk 1 swarm leave --force >/dev/null 2>&1 || true
    dk 1 swarm init --advertise-addr "$(addr_of 1)" --listen-addr "$(addr_of 1):2377" \
      --default-addr-pool "$ADDR_POOL" --task-history-limit 2 >/dev/null
  fi
  manager=$(swarm_id 1)
  token=$(dk 1 swarm join-token -q worker)
  for ((k = 2; k <= n; k++)); do
    if [ "$(swarm_state "$k")" = active ] && [ "$(swarm_id "$k")" = "$manager" ]; then continue; fi
    # A worker knows no cluster id: ask the manager whether this host is one of its ready nodes.
    if [ "$(swarm_state "$k")" = active ] \
      && [ "$(dk 1 node inspect --format '{{.Status.State}}' "$(dk "$k" info --format '{{.Swarm.NodeID}}')" 2>/dev/null)" = ready ]; then
      continue
    fi
    dk "$k" swarm leave --force >/dev/null 2>&1 || true
    dk "$k" swarm join --token "$token" --advertise-addr "$(addr_of "$k")" --listen-addr "$(addr_of "$k"):2377" "$(addr_of 1):2377" >/dev/null
  done
  # The coordinator knows each Swarm node by this label: its agent's PODS_NODE_ID (hK here).
  for ((k = 1; k <= n; k++)); do
    dk 1 node update --label-add "pods.node=h$k" "$(dk "$k" info --format '{{.Swarm.NodeID}}')" >/dev/null
  done
  # Nodes of hosts that are gone (an earlier, larger cluster) or that left and joined again.
  dk 1 node ls --format '{{.ID}} {{.Status}}' | awk '$2 == "Down" { print $1 }' | while read -r id; do
    dk 1 node rm --force "$id" >/dev/null 2>&1 || true
  done
}

main() {
  local cmd=${1:-}
  case $cmd in
    up)
      bash "$HOSTS" "$@"
      join_swarm "${2:?usage: $0 up N}"
      # Like the containers (hosts.sh up removes them), no service is left from an earlier run:
      # the Swarm's state outlives `down` in the manager's data root.
      local ids
      ids=$(dk 1 service ls -q)
      # shellcheck disable=SC2086
      [ -z "$ids" ] || dk 1 service rm $ids >/dev/null
      pods_log "swarm of ${2} hosts ready"
      ;;
    *) exec bash "$HOSTS" "$@" ;;
  esac
}

main "$@"
