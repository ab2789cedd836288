#!/usr/bin/env bash
# Install (or upgrade in place) the Pods coordinator on a Debian/Ubuntu host, as root, from a
# checkout of this repository:
#
#   ops/install-coordinator.sh [--listen ADDR:PORT] [--base-domain DOMAIN] [--tenant NAME]
#       [--admin-token TOKEN] [--node-token NODE_ID=TOKEN]...
#
#   --listen        where the API and the agents' WebSocket listen (default 127.0.0.1:8000;
#                   put a TLS proxy in front for wss:// and https://)
#   --base-domain   pods are served at {pod}.pods.{tenant}.{base domain} (default localhost)
#   --tenant        the tenant of the static admin token (default dev)
#   --admin-token   the admin's X-Tapis-Token (default: generated once)
#   --node-token    NODE_ID=TOKEN: the token the agent of node NODE_ID presents (each token
#                   admits that node only); repeat for each host. Hosts can also be given
#                   tokens later: `npm run pods -- node token add --node NODE_ID`
#
# Installs redis-server (AOF on, via /etc/pods/redis.conf included from Debian's config),
# copies the built project to /opt/pods, writes /etc/pods/coordinator.env (mode 600) and
# enables pods-coordinator.service. Run again to upgrade: options left out keep the values
# in /etc/pods/coordinator.env. Prints the admin token and the node tokens.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

env_file=/etc/pods/coordinator.env
listen_host=$(env_value "$env_file" PODS_LISTEN_HOST)
listen_port=$(env_value "$env_file" PODS_LISTEN_PORT)
base_domain=$(env_value "$env_file" PODS_BASE_DOMAIN)
tenant=$(env_value "$env_file" PODS_TENANT)
admin_token=$(env_value "$env_file" PODS_ADMIN_TOKEN)
node_tokens=$(env_value "$env_file" PODS_NODE_TOKENS)
redis_url=$(env_value "$env_file" PODS_REDIS_URL)
new_node_tokens=()

while [ $# -gt 0 ]; do
  case $1 in
    --listen) listen_host=${2%:*} listen_port=${2##*:}; shift 2 ;;
    --base-domain) base_domain=${2:?}; shift 2 ;;
    --tenant) tenant=${2:?}; shift 2 ;;
    --admin-token) admin_token=${2:?}; shift 2 ;;
    --node-token) new_node_tokens+=("${2:?}"); shift 2 ;;
    -h | --help) usage ;;
    *) pods_log "unknown argument: $1"; usage ;;
  esac
done

is_root || pods_die "run this as root (sudo $0 ...)"
listen_host=${listen_host:-127.0.0.1}
listen_port=${listen_port:-8000}
base_domain=${base_domain:-localhost}
tenant=${tenant:-dev}
admin_token=${admin_token:-$(random_token)}
if [ ${#new_node_tokens[@]} -gt 0 ]; then
  node_tokens=$(IFS=,; printf '%s' "${new_node_tokens[*]}")
fi
for entry in ${node_tokens//,/ }; do
  [[ $entry =~ ^[a-z0-9][a-z0-9.-]*=.{16,}$ ]] || pods_die "--node-token takes NODE_ID=TOKEN (a token of 16 or more characters, bound to that node id)"
done

step() { printf '==> %s\n' "$*"; }

step "packages"
PODS_APT_PACKAGES=(redis-server:redis-server redis-tools:redis-cli curl:curl ca-certificates:-)
ensure_packages
ensure_node_runtime

step "Redis with the append-only file and a password"
install -d -m 755 /etc/pods
redis_before=$(cat /etc/pods/redis.conf /etc/pods/redis-auth.conf /etc/redis/redis.conf 2>/dev/null | sha256sum)
install -m 644 "$PODS_ROOT/ops/redis.conf" /etc/pods/redis.conf
# Redis answers only with a password, kept in files root (and Redis) read, never on a command
# line: /etc/pods/redis-auth.conf (included by Debian's config) and the coordinator's env file.
redis_password=${redis_url#redis://:}
redis_password=${redis_password%@*}
if [ -z "$redis_url" ] || [ "$redis_password" = "$redis_url" ]; then redis_password=$(random_token); fi
(
  umask 027
  printf 'requirepass "%s"\n' "$redis_password" >/etc/pods/redis-auth.conf.new
)
chown root:redis /etc/pods/redis-auth.conf.new 2>/dev/null || true
mv -f /etc/pods/redis-auth.conf.new /etc/pods/redis-auth.conf
redis_url="redis://:$redis_password@127.0.0.1:6379"
redis_conf=/etc/redis/redis.conf
if [ -f "$redis_conf" ] && ! grep -qx 'include /etc/pods/redis.conf' "$redis_conf"; then
  # Last, so that its settings win over Debian's.
  printf '\n# Pods: durability settings (ops/install-coordinator.sh)\ninclude /etc/pods/redis.conf\n' >>"$redis_conf"
fi
if [ -f "$redis_conf" ] && ! grep -qx 'include /etc/pods/redis-auth.conf' "$redis_conf"; then
  printf '# Pods: the password (ops/install-coordinator.sh)\ninclude /etc/pods/redis-auth.conf\n' >>"$redis_conf"
fi
if has_systemd; then
  if [ "$redis_before" != "$(cat /etc/pods/redis.conf /etc/pods/redis-auth.conf /etc/redis/redis.conf 2>/dev/null | sha256sum)" ]; then
    systemctl restart redis-server.service
  fi
  systemctl enable --now redis-server.service >/dev/null 2>&1
fi

step "coordinator -> /opt/pods"
if [ ! -f "$PODS_ROOT/dist/coordinator/main.js" ] || [ ! -d "$PODS_ROOT/node_modules" ]; then
  ensure_node_deps
  (cd "$PODS_ROOT" && npm run --silent build)
fi
install_app /opt/pods
ensure_system_user pods

step "configuration in /etc/pods"
(
  umask 077
  cat >"$env_file.new" <<EOF
# Written by ops/install-coordinator.sh; running it again keeps what its options do not change.
PODS_LISTEN_HOST=$listen_host
PODS_LISTEN_PORT=$listen_port
PODS_REDIS_URL=$redis_url
PODS_BASE_DOMAIN=$base_domain
PODS_TENANT=$tenant
PODS_ADMIN_TOKEN=$admin_token
PODS_NODE_TOKENS=$node_tokens
EOF
)
mv -f "$env_file.new" "$env_file"

if ! has_systemd; then
  pods_log "no systemd here: installed, but not started. Start by hand:"
  pods_log "  set -a; . $env_file; set +a; node /opt/pods/dist/coordinator/main.js"
else
  step "systemd unit"
  install_unit pods-coordinator.service && systemctl daemon-reload
  systemctl enable pods-coordinator.service >/dev/null 2>&1
  systemctl restart pods-coordinator.service
  wait_http "http://$( [ "$listen_host" = 0.0.0.0 ] && echo 127.0.0.1 || echo "$listen_host"):$listen_port/v3/pods/healthcheck" 30 \
    || { journalctl -u pods-coordinator --no-pager -n 30 || true; pods_die "the coordinator did not come up"; }
fi

cat <<EOF
==> done: API on http://$listen_host:$listen_port (agents: ws://<this host>:$listen_port/v3/agents/connect)
admin token (X-Tapis-Token): $admin_token
node tokens (ops/install-agent.sh --token): $node_tokens
EOF
