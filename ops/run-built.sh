#!/usr/bin/env bash
# `npm run coordinator|agent|pods -- ARGS`: node dist/ENTRY ARGS, building first when there is
# no build yet (a fresh clone; `npm run build` installs the node modules too). The build's
# output goes to stderr, so a command's own output stays clean.
#
#   ops/run-built.sh coordinator/cli.js user add alice
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -ge 1 ] || pods_die "usage: $0 ENTRY.js [ARGS...] (ENTRY relative to dist/)"
entry=$PODS_ROOT/dist/$1
shift
if [ ! -f "$entry" ]; then
  pods_log "no build yet ($entry): running npm run build"
  (cd "$PODS_ROOT" && npm run --silent build) >&2
fi
exec node "$entry" "$@"
