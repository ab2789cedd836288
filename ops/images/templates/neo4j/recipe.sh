# shellcheck shell=bash
# pods-test/neo4j:5: Neo4j 5 community (org.neo4j:neo4j from Maven Central, see pom.xml) on
# Debian's Java 17: Bolt on 7687, HTTP on 7474, data in /var/lib/pods/neo4j.
# NEO4J_PASSWORD (required) is the initial password of the service user `neo4j`, set before the
# first start; NEO4J_POD_USER and NEO4J_POD_PASSWORD make the pod's own user once the server is
# up (IF NOT EXISTS: a restart keeps it). /usr/local/bin/pods-ready exits 0 once both are done.
# NEO4J_HEAP (512m) and NEO4J_PAGECACHE (128m) size its memory; arguments go to the server.
IMAGE_TAG=5
PACKAGES=(openjdk-17-jre-headless curl)
IMAGE_ENV=(NEO4J_HOME=/opt/neo4j NEO4J_DATA=/var/lib/pods/neo4j)
PORTS=(7474 7687)

# On the host: the jars, resolved by Maven into the shared cache's m2/ (cached there).
fetch() {
  command -v mvn >/dev/null || pods_die "mvn is missing (apt-get install maven)"
  mvn -B -q -Dmaven.repo.local="$cache_root/m2" -f "$recipe_dir/pom.xml" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$stage/lib" >"$stage.mvn.log" 2>&1 ||
    { tail -n 30 "$stage.mvn.log" >&2; pods_die "mvn could not resolve org.neo4j:neo4j (log: $stage.mvn.log)"; }
  ls "$stage/lib"/neo4j-5.*.jar >/dev/null || pods_die "no neo4j jar among the resolved dependencies"
}

after_apt() {
  mkdir -p "$rootfs/opt/neo4j/plugins"
  cp -r "$stage/lib" "$rootfs/opt/neo4j/lib"
  chmod -R a+rX "$rootfs/opt/neo4j"
}
