#!/usr/bin/env bash
# `npm run build`: compile the TypeScript into dist/. On a fresh clone, with no node modules
# yet, it installs them first (npm ci); an existing node_modules is left as it is (`npm run up`
# and `npm test` also reinstall it when package-lock.json changed). Extra arguments go to tsc.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tsc=$PODS_ROOT/node_modules/.bin/tsc
[ -x "$tsc" ] || ensure_node_deps
[ -x "$tsc" ] || pods_die "no TypeScript compiler in $PODS_ROOT/node_modules (installed without devDependencies?): run npm ci"
"$tsc" -p "$PODS_ROOT/tsconfig.json" "$@"
# The web console: tsc compiled its modules into dist/coordinator/console/; its page and
# stylesheet go beside them (served from there by coordinator/api/console.ts).
mkdir -p "$PODS_ROOT/dist/coordinator/console"
cp "$PODS_ROOT/coordinator/console/index.html" "$PODS_ROOT/coordinator/console/console.css" "$PODS_ROOT/dist/coordinator/console/"
