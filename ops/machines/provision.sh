#!/usr/bin/env bash
# The one way a Pods cluster of a coordinator and Docker hosts is provisioned, by the machine
# tests (test/machines/) and by the Vagrantfile alike, so the two cannot drift:
#
#   ops/machines/provision.sh secrets DIR NET          on the admin's machine, once
#   ops/machines/provision.sh coordinator DIR NET      on the coordinator, as root
#   ops/machines/provision.sh host K DIR NET           on Docker host K (1, 2, ...), as root
#
# NET is the cluster's /24 (e.g. 192.168.56): the coordinator is NET.10, host K is NET.(10+K).
# `secrets` makes DIR (mode 700) once: the admin token, one node token per host (host1..hostN,
# N = PODS_CLUSTER_HOSTS, default 2) and the site's CA with the coordinator's certificate
# (make_tls in ops/lib.sh). The other two run the installers from the copy of the repository
# this script is in (ops/machines/stage.sh makes one), with DIR copied to the machine:
#   coordinator: API and agents' endpoint on https://NET.10:8000 (wss://), Redis with AOF
#   host K:      agent as node hostK, checking the coordinator's certificate against DIR's CA;
#                its Caddy serves pods on http://NET.(10+K):8080
# Running either again is an upgrade in place from this copy (and changes nothing when the
# copy and DIR are the same).
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

API_PORT=8000
HTTP_PORT=8080

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
check_net() { [[ $1 =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || pods_die "NET must be the first three numbers of a /24, e.g. 192.168.56"; }

cmd_secrets() {
  local dir=$1 net=$2 k hosts=${PODS_CLUSTER_HOSTS:-2}
  check_net "$net"
  mkdir -p "$dir"
  chmod 700 "$dir"
  (
    umask 077
    [ -s "$dir/admin-token" ] || random_token >"$dir/admin-token"
    for ((k = 1; k <= hosts; k++)); do
      [ -s "$dir/node-host$k-token" ] || random_token >"$dir/node-host$k-token"
    done
  )
  make_tls "$dir/tls" coordinator "$net.10" 127.0.0.1
  printf '%s\n' "$net" >"$dir/net"
}

cmd_coordinator() {
  local dir=$1 net=$2 f args=()
  check_net "$net"
  for f in "$dir"/node-host*-token; do
    f=${f##*/node-}
    args+=(--node-token-file "${f%-token}=$dir/node-$f")
  done
  "$PODS_ROOT/ops/install-coordinator.sh" --listen "0.0.0.0:$API_PORT" --public-url "https://$net.10:$API_PORT" \
    --tls-cert "$dir/tls/coordinator.crt" --tls-key "$dir/tls/coordinator.key" \
    --admin-token-file "$dir/admin-token" "${args[@]}"
}

cmd_host() {
  local k=$1 dir=$2 net=$3
  check_net "$net"
  [[ $k =~ ^[1-9][0-9]?$ ]] || pods_die "host number must be 1..99"
  "$PODS_ROOT/ops/install-agent.sh" --coordinator "wss://$net.10:$API_PORT/v3/agents/connect" \
    --token-file "$dir/node-host$k-token" --ca "$dir/tls/ca.crt" --node-id "host$k" \
    --http-listen "$net.$((10 + k)):$HTTP_PORT"
}

case ${1:-} in
  secrets) [ $# -eq 3 ] || usage; cmd_secrets "$2" "$3" ;;
  coordinator) [ $# -eq 3 ] || usage; cmd_coordinator "$2" "$3" ;;
  host) [ $# -eq 4 ] || usage; cmd_host "$2" "$3" "$4" ;;
  *) usage ;;
esac
