"""Every networking field of the reference spec, set from tapipy: accepted, shown back by get_pod,
and a bad value refused with a 400 that names the field. (What the fields do to a pod's URL is
tested with real Caddy and a browser in test/e2e/pod-access.test.ts.)"""
import pytest
from tapipy.errors import BadRequestError

from support import delete_quietly, new_pod_id

ENTRY = {
    "protocol": "http",
    "port": 5000,
    "ip_allow_list": ["127.0.0.1/32", "192.168.1.7"],
    "tapis_auth": True,
    "tapis_auth_response_headers": {"X-Tapis-Username": "<<tapisusername>>@tapis.io", "FROM": "pods of <<tapistenantid>>"},
    "tapis_auth_allowed_users": ["alice", "AUTHORIZED_USERS"],
    "tapis_auth_return_path": "/lab",
    "cors_allow_origins": ["https://tacc.tapis.io"],
    "cors_allow_methods": ["GET", "POST"],
    "cors_allow_headers": ["Content-Type", "X-Tapis-Token"],
    "cors_allow_credentials": True,
    "cors_max_age": 600,
    "tapis_ui_uri": "/lab/tree",
    "tapis_ui_uri_redirect": True,
    "tapis_ui_uri_description": "JupyterLab",
}


def plain(value):
    """tapipy turns JSON objects into TapisResult objects: back to dicts, to compare."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items()}
    return value


def test_create_pod_with_every_networking_field(alice, image):
    pod_id = new_pod_id("netall")
    try:
        pod = alice.pods.create_pod(pod_id=pod_id, image=image, status_requested="OFF", networking={"default": ENTRY})
        shown = alice.pods.get_pod(pod_id=pod_id).networking.default
        for field, value in ENTRY.items():
            assert plain(getattr(shown, field)) == value, field
        assert pod.networking.default.url
    finally:
        delete_quietly(alice, pod_id)


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"ip_allow_list": ["10.0.0.0/40"]}, "ip_allow_list"),
        ({"protocol": "tcp", "tapis_auth": True}, "tapis_auth"),
        ({"tapis_auth_return_path": "//elsewhere.example/"}, "tapis_auth_return_path"),
        ({"cors_allow_origins": ["not an origin"]}, "cors_allow_origins"),
        ({"cors_max_age": -5}, "cors_max_age"),
    ],
)
def test_bad_networking_field_is_a_400_naming_it(alice, image, extra, field):
    with pytest.raises(BadRequestError) as err:
        alice.pods.create_pod(pod_id=new_pod_id("netbad"), image=image, networking={"default": {"port": 5000, **extra}})
    assert field in str(err.value)
