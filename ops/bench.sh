#!/usr/bin/env bash
# `npm run bench` (create-to-url, templates, then backends), `npm run bench:restart` (agent-restart), `npm
# run bench:scale` (scale) and `npm run bench:api` (api-read): build, then run bench/NAME.ts for
# each NAME given. Each first makes sure of what it runs against, so it works on a fresh clone:
#   create-to-url  pods on the real Docker engine through a real Caddy, as `npm test` needs them
#   templates      (ensure_test_host in ops/lib.sh: as root whatever is missing is installed,
#   agent-restart  built or started; otherwise each missing piece is named);
#   scale          the node modules and redis-server (no Docker);
#   api-read       the same (a coordinator on Redis, no agent);
#   backends       three hosts in network namespaces with each backend (agents, then Swarm),
#                  as the cluster tests make them (root; skipped otherwise).
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PODS_ROOT"

[ $# -gt 0 ] || pods_die "usage: $0 create-to-url|templates|agent-restart|backends|scale|api-read..."
test_host="" scale=""
for name in "$@"; do
  case $name in
    create-to-url | templates | agent-restart | backends) test_host=1 ;;
    scale | api-read) scale=1 ;;
    *) pods_die "usage: $0 create-to-url|templates|agent-restart|backends|scale|api-read..." ;;
  esac
done
if [ -n "$test_host" ]; then ensure_test_host; fi
if [ -n "$scale" ]; then
  if is_root; then ensure_packages; fi
  ensure_node_deps
  command -v redis-server >/dev/null || pods_die "redis-server is not on PATH: apt-get install redis-server (or run this as root once)"
fi
npm run --silent build
for name in "$@"; do
  node "dist/bench/$name.js"
done
