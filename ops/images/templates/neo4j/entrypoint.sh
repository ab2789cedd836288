#!/bin/sh
# pods-test/neo4j: Neo4j community (org.neo4j.server.CommunityEntryPoint) on Bolt 7687 and
# HTTP 7474. Sets the service user's initial password before the first start, then, once the
# server answers, makes the pod's own user through the HTTP API (curl: cypher-shell is not
# among Maven's jars), and only then says it is ready (/usr/local/bin/pods-ready).
. /usr/local/lib/pods/common.sh
pods_one_line NEO4J_PASSWORD
if [ -n "${NEO4J_POD_USER:-}" ]; then pods_one_line NEO4J_POD_PASSWORD; fi

run=/tmp/neo4j
conf=$run/conf
ready=/tmp/pods-ready
mkdir -p "$conf" "$run/logs" "$run/run" "$run/import" "$NEO4J_DATA"
rm -f "$ready"
cat >"$conf/neo4j.conf" <<CONF
server.default_listen_address=0.0.0.0
server.bolt.listen_address=:7687
server.http.listen_address=:7474
server.https.enabled=false
server.directories.data=$NEO4J_DATA
server.directories.logs=$run/logs
server.directories.run=$run/run
server.directories.import=$run/import
server.directories.plugins=$NEO4J_HOME/plugins
server.memory.pagecache.size=${NEO4J_PAGECACHE:-128m}
dbms.usage_report.enabled=false
CONF
export NEO4J_CONF="$conf"
classpath="$NEO4J_HOME/lib/*"

# A JSON string, for the HTTP API.
json() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

umask 077
first_start=""
# The system database is made at the first start, from data/dbms/auth.ini if it is there.
if [ ! -d "$NEO4J_DATA/databases/system" ]; then
  # neo4j-admin dbms set-initial-password, reading the password from a file (picocli's @file),
  # so that it is never on a command line.
  pwfile=$(mktemp /tmp/pw.XXXXXX)
  printf '%s\n' "$NEO4J_PASSWORD" >"$pwfile"
  java -cp "$classpath" org.neo4j.cli.AdminTool dbms set-initial-password "@$pwfile" ||
    { rm -f "$pwfile"; pods_die "could not set the initial password of the service user neo4j"; }
  rm -f "$pwfile"
  echo "pods: service user neo4j has its initial password"
  first_start=1
fi

# What the `neo4j` launcher passes to the server's JVM, less the tuning this size does not need.
pods_run_server java -Xms"${NEO4J_HEAP:-512m}" -Xmx"${NEO4J_HEAP:-512m}" -XX:+UseG1GC \
  -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow -Djdk.nio.maxCachedBufferSize=1024 \
  -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.disable.jmx=true \
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
  -cp "$classpath" org.neo4j.server.CommunityEntryPoint \
  --home-dir="$NEO4J_HOME" --config-dir="$conf" --console-mode "$@"

# query DATABASE USER PASSWORD JSON_STATEMENTS: POST to the HTTP API; the credentials go to
# curl in a config file, the body on stdin. Prints the answer; fails unless it has no errors.
query() {
  cfg=$(mktemp /tmp/curl.XXXXXX)
  printf 'user = %s\n' "$(json "$2:$3")" >"$cfg"
  answer=$(printf '{"statements":%s}' "$4" |
    curl -sS --max-time 10 -K "$cfg" -H 'Content-Type: application/json' --data-binary @- \
      "http://127.0.0.1:7474/db/$1/tx/commit" 2>&1) || { rm -f "$cfg"; printf '%s\n' "$answer"; return 1; }
  rm -f "$cfg"
  printf '%s\n' "$answer"
  case $answer in *'"errors":[]'*) return 0 ;; *) return 1 ;; esac
}

# Up once the service user can run a query (the HTTP API answers before the databases are online).
# NEO4J_START_TIMEOUT (600 s) is generous: a JVM on two busy cores can take minutes.
deadline=$(($(date +%s) + ${NEO4J_START_TIMEOUT:-600}))
until query neo4j neo4j "$NEO4J_PASSWORD" '[{"statement":"RETURN 1"}]' >/dev/null 2>&1; do
  kill -0 "$pods_server" 2>/dev/null || pods_wait_server
  [ "$(date +%s)" -lt "$deadline" ] || pods_die "neo4j did not answer queries within ${NEO4J_START_TIMEOUT:-600} s"
  sleep 0.1
done
if [ -n "${NEO4J_POD_USER:-}" ]; then
  statement='CREATE USER $name IF NOT EXISTS SET PASSWORD $password CHANGE NOT REQUIRED'
  params=$(printf '{"name":%s,"password":%s}' "$(json "$NEO4J_POD_USER")" "$(json "$NEO4J_POD_PASSWORD")")
  answer=$(query system neo4j "$NEO4J_PASSWORD" "[{\"statement\":$(json "$statement"),\"parameters\":$params}]") ||
    { echo "$answer" >&2; pods_die "could not create the user $NEO4J_POD_USER"; }
  if [ -n "$first_start" ]; then echo "pods: created user $NEO4J_POD_USER"; else echo "pods: user $NEO4J_POD_USER is there from an earlier start"; fi
fi
: >"$ready"
echo "pods: ready"
pods_wait_server
