#!/usr/bin/env bash
# Install (or upgrade in place) the Pods coordinator on a Debian/Ubuntu host, as root, from a
# copy of this repository with a build in it (a checkout after `npm ci && npm run build`, or a
# copy made by ops/machines/stage.sh):
#
#   ops/install-coordinator.sh [--listen ADDR:PORT] [--public-url URL] [--base-domain DOMAIN]
#       [--tenant NAME] [--admin-token-file FILE] [--node-token-file NODE_ID=FILE]...
#       [--tls-cert FILE --tls-key FILE | --tls-name NAME... | --no-tls]
#   ops/install-coordinator.sh --uninstall [--purge]
#
#   --listen        where the API and the agents' endpoint listen (default 127.0.0.1:8000)
#   --public-url    the API's URL as clients use it (tapipy's base_url), e.g. https://pods.example.org
#                   (default: https://<first TLS name>:<port>)
#   --base-domain   pods are served at {pod}.pods.{tenant}.{base domain} (default localhost)
#   --tenant        the tenant of the static admin token (default dev)
#   --admin-token-file  a file holding the admin's X-Tapis-Token (default: generated once);
#                   --admin-token TOKEN gives it on the command line instead
#   --node-token-file   NODE_ID=FILE: a file holding the token the agent of node NODE_ID
#                   presents (each token admits that node only); repeat for each host
#                   (--node-token NODE_ID=TOKEN: on the command line). Hosts can also be
#                   given tokens later: `pods admin node token add --node NODE_ID`
#   --tls-cert/--tls-key  the API's certificate and key (PEM), e.g. from your CA or ACME
#   --tls-name      without --tls-cert: a name or address the coordinator is reached by (repeat);
#                   a CA of this site is made once in /etc/pods/tls (ca.crt: give it to
#                   install-agent.sh --ca) and signs a certificate for these names
#                   (default: this host's name and 127.0.0.1)
#   --no-tls        plain HTTP, for a TLS proxy in front (agents then use its wss:// URL)
#   --uninstall     stop and remove the coordinator's unit, /opt/pods (unless an agent is
#                   installed here too), its configuration and the pods user; the data in
#                   Redis is kept, and so are Redis's settings and the TLS files in /etc/pods
#   --purge         with --uninstall: also the Pods data in Redis, /etc/pods/tls and the
#                   Redis settings this script added
#
# Installs redis-server (AOF on, via /etc/pods/redis.conf included from Debian's config, and a
# generated password), the Node.js runtime (see ensure_node_runtime in ops/lib.sh) into
# /opt/pods-node, the built project into /opt/pods, writes /etc/pods/coordinator.env (mode 600)
# and enables pods-coordinator.service. Run again to upgrade: options left out keep the values
# in /etc/pods/coordinator.env, and nothing is restarted unless something changed.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PODS_CACHE_DIR=${PODS_CACHE_DIR:-$PODS_ROOT/var/cache}

usage() { sed -n '2,/^set -e/{/^set -e/!p}' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

env_file=/etc/pods/coordinator.env
tls_dir=/etc/pods/tls
listen_host=$(env_value "$env_file" PODS_LISTEN_HOST)
listen_port=$(env_value "$env_file" PODS_LISTEN_PORT)
public_url=$(env_value "$env_file" PODS_PUBLIC_URL)
base_domain=$(env_value "$env_file" PODS_BASE_DOMAIN)
tenant=$(env_value "$env_file" PODS_TENANT)
admin_token=$(env_value "$env_file" PODS_ADMIN_TOKEN)
node_tokens=$(env_value "$env_file" PODS_NODE_TOKENS)
redis_url=$(env_value "$env_file" PODS_REDIS_URL)
tls_cert_file=$(env_value "$env_file" PODS_TLS_CERT_FILE)
tls_mode=$( [ -f "$env_file" ] && [ -z "$tls_cert_file" ] && echo none || true)
tls_names=() new_node_tokens=() tls_cert="" tls_key="" uninstall="" purge=""

while [ $# -gt 0 ]; do
  case $1 in
    --listen) listen_host=${2%:*} listen_port=${2##*:}; shift 2 ;;
    --public-url) public_url=${2:?}; shift 2 ;;
    --base-domain) base_domain=${2:?}; shift 2 ;;
    --tenant) tenant=${2:?}; shift 2 ;;
    --admin-token) admin_token=${2:?}; shift 2 ;;
    --admin-token-file) admin_token=$(read_secret "${2:?}"); shift 2 ;;
    --node-token) new_node_tokens+=("${2:?}"); shift 2 ;;
    --node-token-file) new_node_tokens+=("${2%%=*}=$(read_secret "${2#*=}")"); shift 2 ;;
    --tls-cert) tls_cert=${2:?}; tls_mode=own; shift 2 ;;
    --tls-key) tls_key=${2:?}; shift 2 ;;
    --tls-name) tls_names+=("${2:?}"); tls_mode=site-ca; shift 2 ;;
    --no-tls) tls_mode=none; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    -h | --help) usage ;;
    *) pods_log "unknown argument: $1"; usage ;;
  esac
done

is_root || pods_die "run this as root (sudo $0 ...)"
step() { printf '==> %s\n' "$*"; }

if [ -n "$uninstall" ]; then
  step "removing the coordinator"
  if has_systemd; then systemctl disable --now pods-coordinator.service >/dev/null 2>&1 || true; fi
  rm -f /etc/systemd/system/pods-coordinator.service "$env_file"
  if has_systemd; then systemctl daemon-reload; fi
  if [ ! -f /etc/pods/agent.env ]; then
    rm -rf /opt/pods "$PODS_NODE_DIR"
    userdel pods 2>/dev/null || true
  fi
  if [ -n "$purge" ]; then
    step "removing the coordinator's data"
    if [ -f /etc/pods/redis-auth.conf ] && command -v redis-cli >/dev/null; then
      REDISCLI_AUTH=$(sed -n 's/^requirepass "\(.*\)"$/\1/p' /etc/pods/redis-auth.conf) redis-cli --no-auth-warning FLUSHALL >/dev/null || true
    fi
    sed -i '/^# Pods: .*(ops\/install-coordinator.sh)$/d; /^include \/etc\/pods\/redis\(-auth\)\{0,1\}\.conf$/d' /etc/redis/redis.conf 2>/dev/null || true
    rm -rf "$tls_dir" /etc/pods/redis.conf /etc/pods/redis-auth.conf
    if has_systemd; then systemctl restart redis-server.service 2>/dev/null || true; fi
  fi
  rmdir /etc/pods 2>/dev/null || true
  step "done: the coordinator is removed$( [ -n "$purge" ] || echo "; its data is kept in Redis (--purge removes it)")"
  exit 0
fi

listen_host=${listen_host:-127.0.0.1}
listen_port=${listen_port:-8000}
base_domain=${base_domain:-localhost}
tenant=${tenant:-dev}
admin_token=${admin_token:-$(random_token)}
tls_mode=${tls_mode:-site-ca}
if [ ${#new_node_tokens[@]} -gt 0 ]; then
  node_tokens=$(IFS=,; printf '%s' "${new_node_tokens[*]}")
fi
for entry in ${node_tokens//,/ }; do
  [[ $entry =~ ^[a-z0-9][a-z0-9.-]*=.{16,}$ ]] || pods_die "--node-token takes NODE_ID=TOKEN (a token of 16 or more characters, bound to that node id)"
done
if [ "$tls_mode" = own ]; then
  [ -f "$tls_cert" ] && [ -f "${tls_key:-}" ] || pods_die "--tls-cert and --tls-key take a certificate and its key (PEM files), both"
fi
changed=""

step "packages"
PODS_APT_PACKAGES=(redis-server:redis-server redis-tools:redis-cli curl:curl ca-certificates:- openssl:openssl)
PODS_APT_GO="" ensure_packages
ensure_node_runtime && changed=1

step "Redis with the append-only file and a password"
install -d -m 755 /etc/pods
redis_conf=/etc/redis/redis.conf
redis_before=$(files_digest /etc/pods/redis.conf /etc/pods/redis-auth.conf "$redis_conf")
install -m 644 "$PODS_ROOT/ops/redis.conf" /etc/pods/redis.conf.new
replace_if_changed /etc/pods/redis.conf.new /etc/pods/redis.conf || true
# Redis answers only with a password, kept in files root (and Redis) read, never on a command
# line: /etc/pods/redis-auth.conf (included by Debian's config) and the coordinator's env file.
redis_password=$(redis_password_of "$redis_url")
[ -n "$redis_password" ] || redis_password=$(random_token)
(
  umask 027
  printf 'requirepass "%s"\n' "$redis_password" >/etc/pods/redis-auth.conf.new
)
chown root:redis /etc/pods/redis-auth.conf.new 2>/dev/null || true
replace_if_changed /etc/pods/redis-auth.conf.new /etc/pods/redis-auth.conf || true
redis_url="redis://:$redis_password@127.0.0.1:6379"
if [ -f "$redis_conf" ] && ! grep -qx 'include /etc/pods/redis.conf' "$redis_conf"; then
  # Last, so that its settings win over Debian's.
  printf '\n# Pods: durability settings (ops/install-coordinator.sh)\ninclude /etc/pods/redis.conf\n' >>"$redis_conf"
fi
if [ -f "$redis_conf" ] && ! grep -qx 'include /etc/pods/redis-auth.conf' "$redis_conf"; then
  printf '# Pods: the password (ops/install-coordinator.sh)\ninclude /etc/pods/redis-auth.conf\n' >>"$redis_conf"
fi
if has_systemd; then
  systemctl enable redis-server.service >/dev/null 2>&1
  if [ "$redis_before" != "$(files_digest /etc/pods/redis.conf /etc/pods/redis-auth.conf "$redis_conf")" ]; then
    systemctl restart redis-server.service
  else
    systemctl start redis-server.service
  fi
fi

step "coordinator -> /opt/pods"
if [ ! -f "$PODS_ROOT/dist/coordinator/main.js" ] || [ ! -d "$PODS_ROOT/node_modules" ]; then
  ensure_node_deps
  (cd "$PODS_ROOT" && npm run --silent build)
fi
install_app /opt/pods && changed=1
ensure_system_user pods

step "TLS"
tls_key_file="" tls_cert_file="" scheme=http
case $tls_mode in
  own)
    install -d -m 755 "$tls_dir"
    install -m 644 "$tls_cert" "$tls_dir/coordinator.crt.new"
    replace_if_changed "$tls_dir/coordinator.crt.new" "$tls_dir/coordinator.crt" && changed=1
    install -m 640 -g pods "$tls_key" "$tls_dir/coordinator.key.new"
    replace_if_changed "$tls_dir/coordinator.key.new" "$tls_dir/coordinator.key" && changed=1
    ;;
  site-ca)
    # Run again without --tls-name: the certificate made before is kept.
    if [ ${#tls_names[@]} -gt 0 ] || [ ! -f "$tls_dir/coordinator.crt" ]; then
      [ ${#tls_names[@]} -gt 0 ] || tls_names=("$(hostname)" 127.0.0.1)
      tls_before=$(files_digest "$tls_dir/coordinator.crt")
      make_tls "$tls_dir" "${tls_names[@]}"
      [ "$tls_before" = "$(files_digest "$tls_dir/coordinator.crt")" ] || changed=1
    fi
    ;;
esac
if [ "$tls_mode" != none ]; then
  chgrp pods "$tls_dir/coordinator.key" && chmod 640 "$tls_dir/coordinator.key"
  tls_cert_file=$tls_dir/coordinator.crt tls_key_file=$tls_dir/coordinator.key scheme=https
  [ -n "$public_url" ] || public_url="https://${tls_names[0]:-$(hostname)}:$listen_port"
fi

step "configuration in /etc/pods"
(
  umask 077
  cat >"$env_file.new" <<EOF
# Written by ops/install-coordinator.sh; running it again keeps what its options do not change.
PODS_LISTEN_HOST=$listen_host
PODS_LISTEN_PORT=$listen_port
PODS_PUBLIC_URL=$public_url
PODS_TLS_CERT_FILE=$tls_cert_file
PODS_TLS_KEY_FILE=$tls_key_file
PODS_REDIS_URL=$redis_url
PODS_BASE_DOMAIN=$base_domain
PODS_TENANT=$tenant
PODS_ADMIN_TOKEN=$admin_token
PODS_NODE_TOKENS=$node_tokens
EOF
)
replace_if_changed "$env_file.new" "$env_file" && changed=1

if ! has_systemd; then
  pods_log "no systemd here: installed, but not started. Start by hand:"
  pods_log "  set -a; . $env_file; set +a; $PODS_NODE_DIR/bin/node /opt/pods/dist/coordinator/main.js"
  exit 0
fi
step "systemd unit"
if install_unit pods-coordinator.service; then systemctl daemon-reload; changed=1; fi
systemctl enable pods-coordinator.service >/dev/null 2>&1
if [ -n "$changed" ]; then systemctl restart pods-coordinator.service; else systemctl start pods-coordinator.service; fi
health_host=$listen_host
[ "$health_host" != 0.0.0.0 ] || health_host=127.0.0.1
# Whether it answers, on this host; a certificate of the site's CA is checked against it.
curl_ca=()
[ "$tls_mode" != site-ca ] || curl_ca=(--cacert "$tls_dir/ca.crt")
for ((i = 0; i < 60; i++)); do
  curl -fsS -o /dev/null --max-time 2 "${curl_ca[@]}" $( [ "$tls_mode" = own ] && echo --insecure) \
    "$scheme://$health_host:$listen_port/v3/pods/healthcheck" 2>/dev/null && break
  sleep 0.5
done
if ((i == 60)); then
  journalctl -u pods-coordinator --no-pager -n 30 || true
  pods_die "the coordinator did not come up"
fi

agent_url=$(printf '%s' "${public_url:-http://$listen_host:$listen_port}" | sed 's#^http#ws#')/v3/agents/connect
cat <<EOF
==> done: API on ${public_url:-http://$listen_host:$listen_port}; agents: $agent_url$( [ "$tls_mode" != site-ca ] || printf '\n    (the agents need --ca %s)' "$tls_dir/ca.crt")
admin token (X-Tapis-Token): in $env_file (PODS_ADMIN_TOKEN)
node tokens (install-agent.sh --token): in $env_file (PODS_NODE_TOKENS)
EOF
