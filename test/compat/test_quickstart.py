"""The Tapis Pods quickstart, written as a researcher writes it with tapipy, with only base_url
pointing at this service. The tests run in file order and share one pod."""
import os
import time

import pytest
from tapipy.errors import BadRequestError, ForbiddenError, NotFoundError
from tapipy.tapis import Tapis

from support import delete_quietly, fetch, new_pod_id, pod_host, setting, wait_for_status

POD_ID = new_pod_id("quick")
seen = {}


@pytest.fixture(scope="module")
def t(base_url):
    t = Tapis(base_url=base_url, username=setting("PODS_USERNAME"), password=setting("PODS_PASSWORD"))
    t.get_tokens()
    yield t
    delete_quietly(t, POD_ID)


def test_get_tokens(t, base_url):
    # The constructor found the tenant by its base_url in GET /v3/tenants.
    assert t.tenant_id == setting("PODS_TENANT_ID", os.environ.get("PODS_TENANT"))
    claims = t.access_token.claims
    assert claims["tapis/username"] == setting("PODS_USERNAME")
    assert claims["tapis/tenant_id"] == t.tenant_id
    assert claims["jti"]
    # Tapis tokens last 4 hours.
    assert 3 * 3600 < t.access_token.expires_in().total_seconds() <= 4 * 3600 + 60


def test_create_pod_and_wait_until_running(t, image):
    pod = t.pods.create_pod(pod_id=POD_ID, image=image, description="my first pod")
    assert pod.pod_id == POD_ID
    assert pod.image == image
    assert pod.description == "my first pod"
    assert pod.status in ("REQUESTED", "SPAWNER_SETUP", "CREATING", "RUNNING")
    assert pod.networking.default.protocol == "http"
    assert pod.networking.default.port == 5000
    pod = wait_for_status(t, POD_ID, "RUNNING")
    status, body = fetch(pod_host(pod))
    assert status == 200, body
    assert body.startswith("hello from "), body
    seen["hello"] = body


def test_list_pods(t):
    assert POD_ID in [p.pod_id for p in t.pods.list_pods()]


def test_get_pod_logs(t):
    logs = t.pods.get_pod_logs(pod_id=POD_ID)
    assert isinstance(logs.logs, str)
    assert isinstance(logs.action_logs, list) and logs.action_logs
    assert all(isinstance(line, str) for line in logs.action_logs)


def test_get_pod_credentials(t):
    creds = t.pods.get_pod_credentials(pod_id=POD_ID)
    assert creds.user_username == POD_ID
    assert isinstance(creds.user_password, str) and len(creds.user_password) >= 8


def test_get_derived_pod(t, image):
    derived = t.pods.get_derived_pod(pod_id=POD_ID)
    assert derived.pod_id == POD_ID
    assert derived.image == image


def test_update_pod(t):
    pod = t.pods.update_pod(pod_id=POD_ID, description="still my first pod")
    assert pod.description == "still my first pod"
    assert t.pods.get_pod(pod_id=POD_ID).description == "still my first pod"


def test_stop_and_start(t):
    pod = t.pods.stop_pod(pod_id=POD_ID)
    assert pod.status_requested == "OFF"
    pod = wait_for_status(t, POD_ID, "STOPPED")
    status, _ = fetch(pod_host(pod))
    assert status != 200
    pod = t.pods.start_pod(pod_id=POD_ID)
    assert pod.status_requested == "ON"
    pod = wait_for_status(t, POD_ID, "RUNNING")
    status, body = fetch(pod_host(pod))
    assert status == 200 and body.startswith("hello from "), body
    seen["hello"] = body


def test_restart_gives_a_new_container(t):
    before = seen.get("hello")
    t.pods.restart_pod(pod_id=POD_ID)
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        pod = t.pods.get_pod(pod_id=POD_ID)
        if pod.status == "RUNNING":
            status, body = fetch(pod_host(pod))
            last = (status, body)
            if status == 200 and body != before:
                assert body.startswith("hello from "), body
                return
        time.sleep(0.2)
    raise AssertionError(f"no new container answered after restart_pod; before: {before!r}, last: {last!r}")


def test_permissions(t, bob, bob_name):
    me = setting("PODS_USERNAME")
    perms = t.pods.get_pod_permissions(pod_id=POD_ID).permissions
    assert f"{me}:ADMIN" in perms

    # READ: bob sees the pod and its logs, and can neither delete it nor read its credentials.
    perms = t.pods.set_pod_permission(pod_id=POD_ID, user=bob_name, level="READ").permissions
    assert f"{bob_name}:READ" in perms
    assert bob.pods.get_pod(pod_id=POD_ID).pod_id == POD_ID
    bob.pods.get_pod_logs(pod_id=POD_ID)
    with pytest.raises(ForbiddenError):
        bob.pods.delete_pod(pod_id=POD_ID)
    with pytest.raises(ForbiddenError):
        bob.pods.get_pod_credentials(pod_id=POD_ID)

    # USER: credentials too, still no stopping it.
    t.pods.set_pod_permission(pod_id=POD_ID, user=bob_name, level="USER")
    assert bob.pods.get_pod_credentials(pod_id=POD_ID).user_username == POD_ID
    with pytest.raises(ForbiddenError):
        bob.pods.stop_pod(pod_id=POD_ID)

    # Revoked: the pod is no longer bob's to see.
    perms = t.pods.delete_pod_permission(pod_id=POD_ID, user=bob_name).permissions
    assert not any(p.startswith(f"{bob_name}:") for p in perms)
    with pytest.raises(ForbiddenError):
        bob.pods.get_pod(pod_id=POD_ID)

    # The last ADMIN stays.
    with pytest.raises(BadRequestError):
        t.pods.delete_pod_permission(pod_id=POD_ID, user=me)
    assert f"{me}:ADMIN" in t.pods.get_pod_permissions(pod_id=POD_ID).permissions


def test_delete_pod(t):
    host = pod_host(t.pods.get_pod(pod_id=POD_ID))
    t.pods.delete_pod(pod_id=POD_ID)
    deadline = time.monotonic() + 30
    while True:
        try:
            t.pods.get_pod(pod_id=POD_ID)
        except NotFoundError:
            break
        assert time.monotonic() < deadline, "the deleted pod is still there"
        time.sleep(0.2)
    assert POD_ID not in [p.pod_id for p in t.pods.list_pods()]
    while fetch(host)[0] == 200:
        assert time.monotonic() < deadline, "the deleted pod is still served"
        time.sleep(0.2)


def test_create_pod_with_the_usual_fields(t, image):
    # The fields researchers' scripts pass, nested dicts included, as tapipy sends them.
    pod_id = new_pod_id("full")
    try:
        pod = t.pods.create_pod(
            pod_id=pod_id,
            image=image,
            description="a pod with everything",
            environment_variables={"GREETING": "hi", "MODE": "test"},
            networking={"default": {"protocol": "http", "port": 5000}},
            resources={"cpu_request": 250, "cpu_limit": 1000, "mem_request": 128, "mem_limit": 512},
            time_to_stop_default=-1,
        )
        assert pod.environment_variables.GREETING == "hi"
        assert pod.networking.default.port == 5000
        assert pod.resources.cpu_limit == 1000 and pod.resources.mem_limit == 512
        assert pod.time_to_stop_default == -1
        pod = wait_for_status(t, pod_id, "RUNNING")
        status, body = fetch(pod_host(pod))
        assert status == 200 and body.startswith("hello from "), body
    finally:
        delete_quietly(t, pod_id)
