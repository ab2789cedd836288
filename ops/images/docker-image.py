#!/usr/bin/env python3
"""Write a Docker image archive (the `docker save` layout) to stdout, for `docker load`.

    docker-image.py --tag pods-test/redis:bookworm --layer base.tar --layer redis.tar \
        --env PATH=... --port 6379 --label pods.image-key=... | docker load

Each --layer is an uncompressed tar, applied in order (the first is the shared Debian base),
so images made from one base share its layer on disk. The image runs --entrypoint
(/usr/local/bin/pods-entrypoint) as --user (1000:1000) in --workdir (/tmp). A layer's sha256
is kept beside it (LAYER.sha256) and reused while the layer is not newer.
"""
import argparse
import hashlib
import io
import json
import os
import platform
import sys
import tarfile
import time

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def layer_digest(path):
    sidecar = path + ".sha256"
    if os.path.exists(sidecar) and os.path.getmtime(sidecar) >= os.path.getmtime(path):
        with open(sidecar) as f:
            return f.read().strip()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with open(sidecar + ".tmp", "w") as f:
        f.write(digest + "\n")
    os.replace(sidecar + ".tmp", sidecar)
    return digest


def add_bytes(tar, name, data, mtime):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tag", required=True)
    p.add_argument("--layer", action="append", required=True, help="an uncompressed layer tar, base first")
    p.add_argument("--history", action="append", default=[], help="what made each layer, in order")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE")
    p.add_argument("--port", action="append", default=[], help="an exposed TCP port")
    p.add_argument("--label", action="append", default=[], help="NAME=VALUE")
    p.add_argument("--entrypoint", default="/usr/local/bin/pods-entrypoint")
    p.add_argument("--user", default="1000:1000")
    p.add_argument("--workdir", default="/tmp")
    a = p.parse_args()

    digests = [layer_digest(path) for path in a.layer]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(os.path.getmtime(x) for x in a.layer)))
    history = [{"created": created, "created_by": a.history[i] if i < len(a.history) else f"layer {i}"} for i in range(len(a.layer))]
    config = {
        "architecture": ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": created,
        "config": {
            "Env": a.env,
            "Entrypoint": [a.entrypoint],
            "User": a.user,
            "WorkingDir": a.workdir,
            "ExposedPorts": {f"{port}/tcp": {} for port in a.port},
            "Labels": dict(label.split("=", 1) for label in a.label),
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in digests]},
        "history": history,
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [a.tag], "Layers": [f"{d}/layer.tar" for d in digests]}]
    now = int(time.time())
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, config_name, config_bytes, now)
        for digest, path in zip(digests, a.layer):
            tar.add(path, arcname=f"{digest}/layer.tar")
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode(), now)


if __name__ == "__main__":
    main()
