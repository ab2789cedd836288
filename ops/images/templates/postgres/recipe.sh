# shellcheck shell=bash
# pods-test/postgres:bookworm: PostgreSQL on 5432; POSTGRES_PASSWORD (required), POSTGRES_USER
# (postgres), POSTGRES_DB (= POSTGRES_USER). initdb on first start into PGDATA
# (/var/lib/pods/postgres/data); `ssl = on` with a self-signed certificate made at first start;
# scram-sha-256 password auth for every TCP client, TLS or not (a proxy that ends TLS, like
# Caddy, reaches it in plaintext over loopback). Arguments go to postgres (-c work_mem=8MB).
IMAGE_TAG=bookworm
# ssl-cert comes with postgresql-common; openssl makes the server's certificate.
PACKAGES=(postgresql openssl libnss-wrapper)
IMAGE_ENV=(PGDATA=/var/lib/pods/postgres/data)
PORTS=(5432)

# postgresql-common makes no "main" cluster: each container makes its own at first start.
before_apt() {
  mkdir -p "$rootfs/etc/postgresql-common"
  echo 'create_main_cluster = false' >"$rootfs/etc/postgresql-common/createcluster.conf"
}

after_apt() {
  # The JIT (llvmjit.so and the LLVM it loads, 130 MB) is optional and off here (jit=off).
  rm -rf "$rootfs"/usr/lib/postgresql/*/lib/llvmjit* "$rootfs"/usr/lib/postgresql/*/lib/bitcode \
    "$rootfs"/usr/lib/*/libLLVM-*.so* "$rootfs"/usr/lib/*/libz3.so*
  local bin
  bin=$(cd "$rootfs" && echo usr/lib/postgresql/*/bin)
  [ -d "$rootfs/$bin" ] || pods_die "no PostgreSQL bin directory in the rootfs"
  IMAGE_PATH=/$bin:$IMAGE_PATH
}
