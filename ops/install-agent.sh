#!/usr/bin/env bash
# Install (or upgrade in place) the Pods agent on a Debian/Ubuntu Docker host, as root, from
# a copy of this repository with a build in it (a checkout after `npm ci && npm run build`, or
# a copy made by ops/machines/stage.sh):
#
#   ops/install-agent.sh --coordinator wss://pods.example.org/v3/agents/connect --token-file FILE \
#       [--ca FILE] [--node-id ID] [--http-listen ADDR:PORT] [--publish-host ADDR]
#       [--caddy-admin-port PORT] [--backend agents|swarm]
#   ops/install-agent.sh --uninstall [--purge]
#
#   --coordinator       the coordinator's agent endpoint (ws:// or wss://.../v3/agents/connect)
#   --token-file        a file holding this node's token: its entry in the coordinator's
#                       PODS_NODE_TOKENS (NODE_ID=TOKEN) or one issued for it (`pods admin
#                       node token add --node ID`); --token TOKEN gives it on the command line
#   --ca                the CA that signed the coordinator's certificate, when it is not one
#                       the system trusts (install-coordinator.sh's /etc/pods/tls/ca.crt)
#   --node-id           this host's name in the cluster (default: the hostname, lowercased)
#   --http-listen       where this host's Caddy serves the pods over HTTP (default 127.0.0.1:8080;
#                       give the private address when an edge proxy in front must reach it)
#   --publish-host      the address pods' ports are published on (default 127.0.0.1)
#   --caddy-admin-port  Caddy's admin API on this 127.0.0.1 port instead of its default, the
#                       unix socket /run/pods-caddy/admin.sock that only Caddy's user and root
#                       may write to
#   --backend           the coordinator's PODS_BACKEND (default agents); swarm: this host's dockerd
#                       runs without --live-restore (Swarm refuses it) and the agent takes charge
#                       of Swarm's task containers (the host must join the Swarm itself)
#   --uninstall         stop and remove the agent's and Caddy's units, /usr/local/bin/pods-caddy,
#                       /opt/pods (unless the coordinator is installed here too), the
#                       configuration and the pods user; pods' containers and data are kept
#   --purge             with --uninstall: also remove the pods' containers and their data
#                       (/var/lib/pods)
#
# What it does: installs docker.io; installs the layer4 Caddy into /usr/local/bin/pods-caddy
# (from var/cache/caddy of this copy when ops/build-caddy.sh put it there, else built with
# Go); the Node.js runtime (see ensure_node_runtime in ops/lib.sh) into /opt/pods-node; the
# built project (dist, production node_modules, package.json) into /opt/pods; writes
# /etc/pods/agent.env (mode 600) and /etc/pods/caddy.json; installs and enables
# pods-caddy.service and pods-agent.service, run as the system user `pods` (in group docker).
# Run again to upgrade: options left out keep the values in /etc/pods/agent.env, and nothing
# is restarted unless something changed. Containers keep running while the agent restarts; on
# reconnect it reports them and is told what to keep.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PODS_CACHE_DIR=${PODS_CACHE_DIR:-$PODS_ROOT/var/cache}

usage() { sed -n '2,/^set -e/{/^set -e/!p}' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

env_file=/etc/pods/agent.env
coordinator=$(env_value "$env_file" PODS_COORDINATOR_URL)
token=$(env_value "$env_file" PODS_NODE_TOKEN)
node_id=$(env_value "$env_file" PODS_NODE_ID)
http_listen=$(env_value "$env_file" PODS_CADDY_HTTP_LISTEN)
publish_host=$(env_value "$env_file" PODS_PUBLISH_HOST)
admin_url=$(env_value "$env_file" PODS_CADDY_ADMIN_URL)
backend=$(env_value "$env_file" PODS_BACKEND)
ca_file=/etc/pods/coordinator-ca.crt
ca=$(env_value "$env_file" NODE_EXTRA_CA_CERTS)
admin_port="" uninstall="" purge=""
case $admin_url in http://*) admin_port=${admin_url##*:} ;; esac

while [ $# -gt 0 ]; do
  case $1 in
    --coordinator) coordinator=${2:?}; shift 2 ;;
    --token) token=${2:?}; shift 2 ;;
    --token-file) token=$(read_secret "${2:?}"); shift 2 ;;
    --ca) ca=${2:?}; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --node-id) node_id=${2:?}; shift 2 ;;
    --http-listen) http_listen=${2:?}; shift 2 ;;
    --publish-host) publish_host=${2:?}; shift 2 ;;
    --caddy-admin-port) admin_port=${2:?}; shift 2 ;;
    --backend) backend=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) pods_log "unknown argument: $1"; usage ;;
  esac
done

is_root || pods_die "run this as root (sudo $0 ...)"
step() { printf '==> %s\n' "$*"; }

if [ -n "$uninstall" ]; then
  step "removing the agent"
  if has_systemd; then systemctl disable --now pods-agent.service pods-caddy.service >/dev/null 2>&1 || true; fi
  rm -f /etc/systemd/system/pods-agent.service /etc/systemd/system/pods-caddy.service
  if has_systemd; then systemctl daemon-reload; fi
  rm -f "$env_file" "$ca_file" /etc/pods/caddy.json /usr/local/bin/pods-caddy
  if [ -n "$purge" ]; then
    step "removing the pods' containers and data"
    if docker info >/dev/null 2>&1; then
      docker ps -aq --filter label=pods.managed | xargs -r docker rm -f >/dev/null
    fi
    rm -rf /var/lib/pods
  fi
  if [ ! -f /etc/pods/coordinator.env ]; then
    rm -rf /opt/pods "$PODS_NODE_DIR"
    userdel pods 2>/dev/null || true
  fi
  rmdir /etc/pods 2>/dev/null || true
  step "done: the agent is removed$( [ -n "$purge" ] || echo "; pods' containers and /var/lib/pods are kept (--purge removes them)")"
  exit 0
fi

[ -n "$coordinator" ] || pods_die "--coordinator is required (e.g. wss://pods.example.org/v3/agents/connect)"
[ -n "$token" ] || pods_die "--token is required (this node's token: PODS_NODE_TOKENS on the coordinator binds it to the node id)"
case $coordinator in ws://* | wss://*) ;; *) pods_die "--coordinator must start with ws:// or wss://" ;; esac
[ ${#token} -ge 16 ] || pods_die "--token must be at least 16 characters"
node_id=${node_id:-$(hostname | tr '[:upper:]' '[:lower:]')}
[[ $node_id =~ ^[a-z0-9][a-z0-9.-]*$ ]] || pods_die "--node-id must be lowercase letters, digits, dots and dashes"
http_listen=${http_listen:-127.0.0.1:8080}
backend=${backend:-agents}
case $backend in agents | swarm) ;; *) pods_die "--backend must be agents or swarm" ;; esac
publish_host=${publish_host:-127.0.0.1}
# Caddy's admin API: a unix socket only its own user may write to (root, the agent, may too),
# unless --caddy-admin-port asks for a loopback TCP port, which any local user could reach.
admin_socket=/run/pods-caddy/admin.sock
if [ -n "$admin_port" ]; then
  admin_url=http://127.0.0.1:$admin_port admin_listen=127.0.0.1:$admin_port
else
  admin_url=unix://$admin_socket admin_listen=unix/$admin_socket
fi

changed=""

step "packages"
PODS_APT_PACKAGES=(docker.io:dockerd curl:curl ca-certificates:- iproute2:ip)
PODS_APT_GO="" ensure_packages
ensure_node_runtime && changed=1
# Pods share Docker's default bridge; --icc=false keeps them from reaching each other.
mkdir -p /etc/docker
# Swarm mode refuses --live-restore: on a Swarm node a dockerd restart restarts its pods.
live_restore=true
[ "$backend" = swarm ] && live_restore=false
if [ ! -f /etc/docker/daemon.json ]; then
  printf '{\n  "icc": false,\n  "live-restore": %s\n}\n' "$live_restore" >/etc/docker/daemon.json
  if has_systemd; then systemctl restart docker.service 2>/dev/null || true; fi
elif ! grep -q '"icc": *false' /etc/docker/daemon.json; then
  pods_log "warning: /etc/docker/daemon.json exists without \"icc\": false; add it so pods cannot reach each other"
elif [ "$backend" = swarm ] && grep -q '"live-restore": *true' /etc/docker/daemon.json; then
  pods_log "warning: /etc/docker/daemon.json sets \"live-restore\": true, which Swarm mode refuses; set it to false"
fi
if has_systemd; then systemctl enable --now docker.service >/dev/null; fi
ensure_dockerd /var/log/pods-dockerd.log

step "Caddy with layer4 -> /usr/local/bin/pods-caddy"
caddy_before=$(files_digest /usr/local/bin/pods-caddy)
# Go only when this copy holds no built Caddy (ops/machines/stage.sh puts one in).
if [ ! -x "$(caddy_cache_path)" ]; then
  PODS_APT_PACKAGES=()
  PODS_APT_GO=1 ensure_packages
fi
"$PODS_ROOT/ops/build-caddy.sh" --out /usr/local/bin/pods-caddy
caddy_changed=""
[ "$caddy_before" = "$(files_digest /usr/local/bin/pods-caddy)" ] || caddy_changed=1

step "agent -> /opt/pods"
if [ ! -f "$PODS_ROOT/dist/agent/main.js" ] || [ ! -d "$PODS_ROOT/node_modules" ]; then
  ensure_node_deps
  (cd "$PODS_ROOT" && npm run --silent build)
fi
install_app /opt/pods && changed=1

step "configuration in /etc/pods"
ensure_system_user pods docker
install -d -m 755 /etc/pods
# The agent checks the coordinator's certificate against the system's CAs and this one.
if [ -n "$ca" ] && [ "$ca" != "$ca_file" ]; then
  [ -f "$ca" ] || pods_die "--ca $ca: no such file"
  install -m 644 "$ca" "$ca_file.new"
  replace_if_changed "$ca_file.new" "$ca_file" && changed=1
fi
[ -z "$ca" ] || ca=$ca_file
(
  umask 077
  cat >"$env_file.new" <<EOF
# Written by ops/install-agent.sh; running it again keeps what its options do not change.
PODS_COORDINATOR_URL=$coordinator
PODS_NODE_TOKEN=$token
PODS_NODE_ID=$node_id
PODS_CADDY_ADMIN_URL=$admin_url
PODS_CADDY_HTTP_LISTEN=$http_listen
PODS_PUBLISH_HOST=$publish_host
PODS_BACKEND=$backend
NODE_EXTRA_CA_CERTS=$ca
EOF
)
# systemd reads it as root before it drops to the pods user: root-only is enough.
chown root:root "$env_file.new"
chmod 600 "$env_file.new"
replace_if_changed "$env_file.new" "$env_file" && changed=1
printf '{"admin":{"listen":"%s"}}\n' "$admin_listen" >/etc/pods/caddy.json.new
chmod 644 /etc/pods/caddy.json.new
replace_if_changed /etc/pods/caddy.json.new /etc/pods/caddy.json && caddy_changed=1

if ! has_systemd; then
  install -d -m 750 -o pods -g pods "$(dirname "$admin_socket")"
  pods_log "no systemd here: installed, but not started. Start by hand:"
  pods_log "  /usr/local/bin/pods-caddy run --config /etc/pods/caddy.json &"
  pods_log "  set -a; . $env_file; set +a; $PODS_NODE_DIR/bin/node /opt/pods/dist/agent/main.js"
  exit 0
fi

step "systemd units"
units_changed=""
install_unit pods-caddy.service && units_changed=1
install_unit pods-agent.service && units_changed=1
[ -z "$units_changed" ] || systemctl daemon-reload
systemctl enable pods-caddy.service pods-agent.service >/dev/null 2>&1
if [ -n "$caddy_changed" ] || [ -n "$units_changed" ]; then
  systemctl restart pods-caddy.service
else
  systemctl start pods-caddy.service
fi
# Containers keep running while the agent restarts.
if [ -n "$changed" ] || [ -n "$units_changed" ]; then
  systemctl restart pods-agent.service
else
  systemctl start pods-agent.service
fi
step "done: node $node_id -> $coordinator (logs: journalctl -u pods-agent -u pods-caddy)"
