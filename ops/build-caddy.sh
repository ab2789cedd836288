#!/usr/bin/env bash
# Build Caddy with the layer4 app (ops/caddy) and install it.
#
#   ops/build-caddy.sh [--out PATH]     (default PATH: var/bin/caddy in the repository)
#
# The binary is cached in ${PODS_CACHE_DIR:-$HOME/.cache/pods}/caddy/<sha256>-<arch>/caddy,
# keyed by the sha256 of ops/caddy/{main.go,go.mod,go.sum}; a cached binary is never
# rebuilt. Quiet unless it builds. Go: see resolve_go in ops/lib.sh.
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out=$PODS_ROOT/var/bin/caddy
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a path}; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) pods_die "unknown argument: $1" ;;
  esac
done

src=$PODS_ROOT/ops/caddy
bin=$(caddy_cache_path)
cache=$(dirname "$bin")

work=""
trap 'rm -rf "$work"' EXIT

build() {
  resolve_go
  pods_log "building Caddy with layer4 ($("$PODS_GO" version | cut -d' ' -f3 || true), GOTOOLCHAIN=$GOTOOLCHAIN); this takes a few minutes the first time"
  mkdir -p "$cache"
  # Build from a copy, so -mod=mod can never rewrite the committed go.mod/go.sum.
  work=$(mktemp -d "$cache/build.XXXXXX")
  cp "$src/main.go" "$src/go.mod" "$src/go.sum" "$work/"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" \
    "$PODS_GO" build -trimpath -ldflags='-s -w' -o "$work/caddy" .)
  "$work/caddy" list-modules 2>/dev/null | grep -x 'layer4' >/dev/null \
    || pods_die "the built Caddy has no layer4 module"
  mv -f "$work/caddy" "$bin"
  pods_log "cached $bin"
}

if [ ! -x "$bin" ]; then
  mkdir -p "$(dirname "$cache")"
  # One build at a time per cache entry; a second caller waits, then finds the binary.
  exec 9>"$cache.lock"
  flock 9
  [ -x "$bin" ] || build
  flock -u 9
fi

mkdir -p "$(dirname "$out")"
if [ "$bin" -ef "$out" ] || cmp -s "$bin" "$out"; then
  exit 0
fi
# Hardlink when on the same filesystem, else copy. Neither writes into the old file (a
# new inode takes the name), so a Caddy running from it keeps running.
if ! ln -f "$bin" "$out" 2>/dev/null; then
  cp "$bin" "$out.tmp.$$"
  chmod 755 "$out.tmp.$$"
  mv -f "$out.tmp.$$" "$out"
fi
