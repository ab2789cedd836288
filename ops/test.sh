#!/usr/bin/env bash
# `npm test`: build, then run every test/**/*.test.ts (compiled to dist/test/) with node's
# test runner, one file at a time (the integration tests share one Docker engine).
#
# The tests need a running Docker engine, the layer4 Caddy at var/bin/caddy (exported as
# PODS_CADDY_BIN), the image pods-test/httpd and the database images pods-test/redis:bookworm
# and pods-test/postgres:bookworm; redis-server, redis-cli and psql must be on PATH (tests
# start their own servers). As root, whatever is missing is installed, built or started first
# (ensure_test_host in ops/lib.sh), so `npm test` works on a fresh clone; otherwise it says what
# is missing and the tests that need it skip or fail. Extra arguments go to `node --test`
# (e.g. --test-name-pattern=...).
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PODS_ROOT"

ensure_test_host
if is_root; then
  ensure_python_deps
else
  ensure_python_deps || pods_log "warning: no Python test dependencies; the tapipy tests will fail"
fi

npm run --silent build

# test/cluster/ makes network namespaces and a dockerd per host: only root can, so it runs when
# npm test runs as root (CI does) unless PODS_SKIP_CLUSTER=1; `npm run test:cluster` runs it alone.
# So does test/swarm/ (the same hosts joined into one Swarm; `npm run test:swarm`).
# test/machines/ boots Debian machines with systemd-nspawn and installs the service on them with
# ops/install-*.sh: root too, unless PODS_SKIP_MACHINES=1; `npm run test:machines` runs it alone.
left_out=(-not -path 'dist/test/cluster/*' -not -path 'dist/test/swarm/*')
if is_root && [ -z "${PODS_SKIP_CLUSTER:-}" ]; then left_out=(); fi
if ! is_root || [ -n "${PODS_SKIP_MACHINES:-}" ]; then left_out+=(-not -path 'dist/test/machines/*'); fi
mapfile -t files < <(compiled_tests dist/test "${left_out[@]}")
[ ${#files[@]} -gt 0 ] || pods_die "no tests: nothing matches test/**/*.test.ts"
exec "${PODS_TEST_RUNNER[@]}" "$@" "${files[@]}"
