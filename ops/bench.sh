#!/usr/bin/env bash
# `npm run bench` (create-to-url) and `npm run bench:scale` (scale): build, then run
# bench/NAME.ts. Each first makes sure of what it runs against, so it works on a fresh clone:
#   create-to-url  pods on the real Docker engine through a real Caddy, as `npm test` needs them
#                  (ensure_test_host in ops/lib.sh: as root whatever is missing is installed,
#                  built or started; otherwise each missing piece is named);
#   scale          the node modules and redis-server (no Docker).
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PODS_ROOT"

name=${1:-}
case $name in
  create-to-url) ensure_test_host ;;
  scale)
    if is_root; then ensure_packages; fi
    ensure_node_deps
    command -v redis-server >/dev/null || pods_die "redis-server is not on PATH: apt-get install redis-server (or run this as root once)"
    ;;
  *) pods_die "usage: $0 create-to-url|scale" ;;
esac
npm run --silent build
exec node "dist/bench/$name.js"
