#!/usr/bin/env bash
# `npm run test:unit|test:cluster|test:swarm|test:machines`: build, then run the tests of one
# directory, test/SUITE/*.test.ts, as `npm test` runs them (ops/test.sh): one file at a time, a
# file that hangs stopped after 15 minutes. Unlike `npm test` it installs and starts nothing but
# the node modules (the build does that on a fresh clone). Extra arguments go to `node --test`.
#
#   ops/test-suite.sh unit --test-name-pattern=placement
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PODS_ROOT"

[ $# -ge 1 ] || pods_die "usage: $0 SUITE [node --test ARGS...] (SUITE: a directory under test/)"
suite=$1
shift
[ -d "test/$suite" ] || pods_die "no test suite test/$suite"

npm run --silent build

mapfile -t files < <(compiled_tests "dist/test/$suite")
[ ${#files[@]} -gt 0 ] || pods_die "no tests: nothing matches test/$suite/*.test.ts"
exec "${PODS_TEST_RUNNER[@]}" "$@" "${files[@]}"
