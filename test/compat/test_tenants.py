"""Two tenants on one server, told apart by base URL: each has its own pods namespace, and a
pod of one is served at its own URL and invisible from the other."""
import time

import pytest
from tapipy.errors import NotFoundError, UnauthorizedError
from tapipy.tapis import Tapis

from support import delete_quietly, fetch, new_pod_id, pod_host, setting, wait_for_status


@pytest.fixture(scope="module")
def same_id(alice, carol):
    pod_id = new_pod_id("twin")
    yield pod_id
    delete_quietly(alice, pod_id)
    delete_quietly(carol, pod_id)


def test_clients_find_their_tenant_by_base_url(alice, carol):
    assert alice.tenant_id == setting("PODS_TENANT_ID")
    assert carol.tenant_id == setting("PODS_OTHER_TENANT_ID")
    assert carol.access_token.claims["tapis/tenant_id"] == carol.tenant_id


def test_one_pod_id_in_two_tenants(alice, carol, image, same_id):
    alice.pods.create_pod(pod_id=same_id, image=image)
    carol.pods.create_pod(pod_id=same_id, image=image)
    mine = wait_for_status(alice, same_id, "RUNNING")
    theirs = wait_for_status(carol, same_id, "RUNNING")
    assert pod_host(mine) != pod_host(theirs)
    a, c = fetch(pod_host(mine)), fetch(pod_host(theirs))
    assert a[0] == 200 and c[0] == 200, (a, c)
    assert a[1] != c[1], "two tenants' pods are two containers"

    # Deleting carol's leaves alice's alone.
    carol.pods.delete_pod(pod_id=same_id)
    deadline = time.monotonic() + 30
    with pytest.raises(NotFoundError):
        while time.monotonic() < deadline:
            carol.pods.get_pod(pod_id=same_id)
            time.sleep(0.2)
    assert alice.pods.get_pod(pod_id=same_id).status == "RUNNING"
    assert fetch(pod_host(mine)) == a


def test_a_user_of_one_tenant_cannot_log_in_at_another(base_url):
    # alice exists in tenant A only; at tenant B's base_url she is unknown.
    t = Tapis(base_url=setting("PODS_OTHER_BASE_URL"), username=setting("PODS_USERNAME"), password=setting("PODS_PASSWORD"))
    with pytest.raises(UnauthorizedError):
        t.get_tokens()
