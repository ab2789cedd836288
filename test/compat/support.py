"""Helpers for the tapipy compatibility tests (conftest.py has the fixtures).

Everything comes from the environment, which test/compat/tapipy.test.ts fills in after starting
a whole stack. The quickstart also runs against `npm run up` (`. var/up.env` gives PODS_BASE_URL,
PODS_USERNAME, PODS_PASSWORD, PODS_HTTP_URL); tests needing settings it lacks are skipped there.
With PODS_COMPAT_STRICT=1 (as in `npm test`) a missing setting fails instead.

  PODS_BASE_URL, PODS_TENANT_ID          tenant A, where alice and bob live
  PODS_USERNAME, PODS_PASSWORD           alice
  PODS_USERNAME2, PODS_PASSWORD2         bob (tenant A)
  PODS_OTHER_BASE_URL, PODS_OTHER_TENANT_ID, PODS_OTHER_USERNAME, PODS_OTHER_PASSWORD
                                         tenant B and carol, on the same server
  PODS_TENANT_ADMIN_USERNAME, PODS_TENANT_ADMIN_PASSWORD
                                         dana, an admin of tenant A
  PODS_HTTP_URL                          Caddy, which serves the pods by Host header
  PODS_TLS_PORT, PODS_BASE_DOMAIN        Caddy's shared TLS port (TCP pods by SNI), the pods' domain
  PODS_IMAGE                             an allowed image answering HTTP on port 5000
  PODS_EXPIRED_TOKEN, PODS_CONTROL_TOKEN  tokens signed with the server's key: expired, and valid
"""
import os
import time
import uuid
import urllib.error
import urllib.parse
import http.client
import urllib.request

import pytest
from tapipy.tapis import Tapis


def setting(name, default=None):
    value = os.environ.get(name) or default
    if value:
        return value
    if os.environ.get("PODS_COMPAT_STRICT"):
        pytest.fail(f"{name} is not set", pytrace=False)
    pytest.skip(f"{name} is not set")


def login(base_url, username, password):
    """A Tapis client with tokens, as every tapipy script starts."""
    t = Tapis(base_url=base_url, username=username, password=password)
    t.get_tokens()
    return t


def new_pod_id(prefix):
    """A fresh pod id: [a-z][a-z0-9]+."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def wait_for_status(t, pod_id, want, timeout=60):
    """Poll get_pod until its status is `want`, as the docs' quickstart does."""
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pod = t.pods.get_pod(pod_id=pod_id)
        if pod.status == want:
            return pod
        time.sleep(0.2)
    raise AssertionError(f"pod {pod_id} did not become {want} within {timeout}s; last seen: {pod.status if pod else None}")


def pod_host(pod):
    """The host name a pod is served at, from its networking entry (a bare host or a URL)."""
    url = pod.networking.default.url
    if "://" in url:
        url = urllib.parse.urlsplit(url).netloc
    return url.split("/")[0]


def fetch(host, timeout=5):
    """GET / from Caddy with the pod's host name: (status, body).

    A connection Caddy accepted just as it applied a new config (another pod's route added or
    removed) can be reset; a client tries again, and so does this, twice at most.
    """
    http_url = setting("PODS_HTTP_URL")
    req = urllib.request.Request(http_url.rstrip("/") + "/", headers={"Host": host})
    for attempt in range(3):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return res.status, res.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except (ConnectionResetError, http.client.RemoteDisconnected, urllib.error.URLError) as err:
            # urlopen wraps a reset met while connecting in URLError; anything else is not retried.
            reason = getattr(err, "reason", err)
            if attempt == 2 or not isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected)):
                raise
            time.sleep(0.2)


def delete_quietly(t, pod_id):
    try:
        t.pods.delete_pod(pod_id=pod_id)
    except Exception:
        pass
