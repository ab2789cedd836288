# shellcheck shell=bash
# pods-test/redis:bookworm: redis-server on 6379 with `requirepass` from REDIS_PASSWORD (required).
# Data (RDB) in /var/lib/pods/redis. Arguments go to redis-server (e.g. --maxmemory 64mb).
IMAGE_TAG=bookworm
PACKAGES=(redis-server)
IMAGE_ENV=(REDIS_DATA=/var/lib/pods/redis)
PORTS=(6379)
