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
# when there is no Go at all). Runs `apt-get update` once, and only when something is missing.
# Not root and something missing: say what to run, and fail.
ensure_packages() {
  local entry pkg cmd missing=()
  for entry in "${PODS_APT_PACKAGES[@]}"; do
    pkg=${entry%%:*} cmd=${entry#*:}
    if [ "$cmd" != "-" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
    pkg_installed "$pkg" || missing+=("$pkg")
  done
  [ -n "$(go_candidates)" ] || missing+=(golang-go)
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

# ensure_node_runtime: Node.js >= 20.18 as `node`; from Debian when its nodejs is new
# enough (Debian 13), otherwise say how to get it (NodeSource's node_20.x packages).
ensure_node_runtime() {
  local cand
  if command -v node >/dev/null && version_ge "$(node -p process.versions.node)" 20.18; then return 0; fi
  cand=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ { print $2 }')
  cand=${cand#*:}
  if [ -n "$cand" ] && [ "$cand" != "(none)" ] && version_ge "${cand%%[-~+]*}" 20.18; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs || return 1
    return 0
  fi
  pods_die "Node.js >= 20.18 is required and this system's packages offer ${cand:-none}; install Node.js 20 (e.g. NodeSource's node_20.x apt repository) and run again"
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

# install_app DEST: copy the built project (dist, node_modules without devDependencies,
# package.json, templates/) to DEST, replacing an older copy in one rename.
install_app() {
  local dest=$1 stage
  [ -f "$PODS_ROOT/dist/agent/main.js" ] && [ -f "$PODS_ROOT/dist/coordinator/main.js" ] \
    || pods_die "no build in $PODS_ROOT/dist (run npm ci && npm run build there first)"
  stage=$dest.new
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -a "$PODS_ROOT/dist" "$PODS_ROOT/node_modules" "$PODS_ROOT/package.json" "$PODS_ROOT/package-lock.json" "$stage/"
  [ -d "$PODS_ROOT/templates" ] && cp -a "$PODS_ROOT/templates" "$stage/"
  rm -rf "$stage/dist/test" "$stage/dist/bench"
  (cd "$stage" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  chown -R root:root "$stage"
  chmod -R go-w "$stage"
  rm -rf "$dest.old"
  [ -e "$dest" ] && mv "$dest" "$dest.old"
  mv "$stage" "$dest"
  rm -rf "$dest.old"
}

# install_unit NAME: copy ops/systemd/NAME into /etc/systemd/system; true when it changed.
install_unit() {
  local src=$PODS_ROOT/ops/systemd/$1 dst=/etc/systemd/system/$1
  cmp -s "$src" "$dst" && return 1
  install -m 644 "$src" "$dst"
}

# env_value FILE NAME: the value of NAME=... in an env file written by these scripts.
env_value() {
  [ -f "$1" ] || return 0
  sed -n "s/^$2=//p" "$1" | tail -n 1
}
