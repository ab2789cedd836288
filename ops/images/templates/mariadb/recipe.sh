# shellcheck shell=bash
# pods-test/mariadb:bookworm: MariaDB (Debian's mariadb-server) on 3306. MARIADB_ROOT_PASSWORD
# (required) for root@localhost; MARIADB_USER and MARIADB_PASSWORD make a user that may connect
# from anywhere, MARIADB_DATABASE a database it owns, both on first start (an empty data dir,
# /var/lib/pods/mariadb). Arguments go to mariadbd (e.g. --max-connections=50).
IMAGE_TAG=bookworm
PACKAGES=(mariadb-server libnss-wrapper)
IMAGE_ENV=(MARIADB_DATA=/var/lib/pods/mariadb)
PORTS=(3306)

after_apt() {
  # The Debian package's own data dir, made for a mysql user the containers never run as.
  rm -rf "$rootfs/var/lib/mysql"/*
}
