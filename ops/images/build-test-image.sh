#!/usr/bin/env bash
# Build the local test image pods-test/httpd:latest without any registry: a rootfs holding
# Debian's static busybox (package busybox-static), imported with `docker import`.
#
#   ops/images/build-test-image.sh [--force]
#
# The container prints "pod starting", writes "hello from $(hostname)" to
# /tmp/www/index.html and serves it with busybox httpd on port 5000, logging each request
# to stderr (-v). It runs as uid 1000 with every capability dropped, as the agent runs pods.
# Does nothing when the image exists, unless --force.
set -euo pipefail

image=pods-test/httpd:latest
busybox=/bin/busybox
applets=(sh httpd echo cat hostname sleep ls mkdir ln true false id rm nc wget)
cmd='echo pod starting; mkdir -p /tmp/www; echo "hello from $(hostname)" > /tmp/www/index.html; exec httpd -f -v -p 5000 -h /tmp/www'

force=
case ${1:-} in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

# The image says what it holds; an image of an older version of this script is built again.
version=$(printf '%s ' "${applets[@]}" | sha256sum | cut -c1-12)
old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
have=$(docker image inspect --format '{{index .Config.Labels "pods.test-image"}}' "$image" 2>/dev/null || true)
[ -n "$old" ] && [ -z "$force" ] && [ "$have" = "$version" ] && exit 0

# busybox (dynamic) and busybox-static conflict; only the static one works in an empty rootfs.
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "error: $busybox is missing or not statically linked; install busybox-static" >&2
  exit 1
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
chmod 755 "$rootfs" "$rootfs/bin" "$rootfs/etc"
chmod 1777 "$rootfs/tmp"
install -m 755 "$busybox" "$rootfs/bin/busybox"
for a in "${applets[@]}"; do ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\npods:x:1000:1000:pods:/tmp:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\npods:x:1000:\n' >"$rootfs/etc/group"
chmod 644 "$rootfs/etc/passwd" "$rootfs/etc/group"

cmd_json=$(printf '["/bin/sh","-c","%s"]' "$(printf '%s' "$cmd" | sed 's/\\/\\\\/g; s/"/\\"/g')")
tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf - . |
  docker import \
    --change 'EXPOSE 5000' \
    --change 'USER 1000:1000' \
    --change "LABEL pods.test-image=$version" \
    --change "CMD $cmd_json" \
    --message 'pods test image: busybox httpd on :5000' \
    - "$image" >/dev/null

new=$(docker image inspect --format '{{.Id}}' "$image")
echo "built $image ($new)"
# The image that had the tag before is now untagged; drop it unless something still uses it.
if [ -n "$old" ] && [ "$old" != "$new" ]; then
  docker image rm "$old" >/dev/null 2>&1 || true
fi
