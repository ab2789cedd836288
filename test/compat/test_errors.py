"""The errors a user meets through tapipy: each HTTP status becomes tapipy's exception class,
with the server's message."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tapipy.errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError
from tapipy.tapis import Tapis

from support import delete_quietly, new_pod_id, setting


@pytest.fixture(scope="module")
def alices_pod(alice, image):
    pod_id = new_pod_id("errs")
    alice.pods.create_pod(pod_id=pod_id, image=image)
    yield pod_id
    delete_quietly(alice, pod_id)


# ---- 400: validation, the message names the field ----------------------------------------

@pytest.mark.parametrize("pod_id", ["Bad_Id", "ab", "9lives", "has-dash", "x" * 65, "images", "templates"])
def test_bad_pod_id_is_a_bad_request(alice, image, pod_id):
    with pytest.raises(BadRequestError) as err:
        alice.pods.create_pod(pod_id=pod_id, image=image)
    assert "pod_id" in str(err.value.message)


def test_pod_without_image_or_template_is_a_bad_request(alice):
    with pytest.raises(BadRequestError):
        alice.pods.create_pod(pod_id=new_pod_id("noimg"))


def test_image_off_the_allow_list_is_a_bad_request(alice):
    with pytest.raises(BadRequestError) as err:
        alice.pods.create_pod(pod_id=new_pod_id("badimg"), image="no-such-org/not-allowed")
    assert "image" in str(err.value.message)


def test_bad_permission_level_is_a_bad_request(alice, alices_pod, bob_name):
    with pytest.raises(BadRequestError):
        alice.pods.set_pod_permission(pod_id=alices_pod, user=bob_name, level="OWNER")


# ---- 404 and 403 ----------------------------------------------------------------------------

def test_unknown_pod_is_not_found(alice):
    with pytest.raises(NotFoundError):
        alice.pods.get_pod(pod_id=new_pod_id("nosuch"))
    with pytest.raises(NotFoundError):
        alice.pods.delete_pod(pod_id=new_pod_id("nosuch"))


def test_another_users_pod_is_forbidden(bob, alices_pod):
    with pytest.raises(ForbiddenError):
        bob.pods.get_pod(pod_id=alices_pod)
    with pytest.raises(ForbiddenError):
        bob.pods.get_pod_logs(pod_id=alices_pod)
    with pytest.raises(ForbiddenError):
        bob.pods.delete_pod(pod_id=alices_pod)
    with pytest.raises(ForbiddenError):
        bob.pods.set_pod_permission(pod_id=alices_pod, user=bob.username, level="ADMIN")


def test_another_tenants_pod_does_not_exist(carol, alices_pod):
    # carol logs in at tenant B's base_url on the same server; tapipy finds her tenant by it.
    assert carol.tenant_id == setting("PODS_OTHER_TENANT_ID")
    assert alices_pod not in [p.pod_id for p in carol.pods.list_pods()]
    with pytest.raises(NotFoundError):
        carol.pods.get_pod(pod_id=alices_pod)
    with pytest.raises(NotFoundError):
        carol.pods.delete_pod(pod_id=alices_pod)


# ---- 401: tokens ----------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj).encode())


def random_rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def with_token(base_url, token):
    """A tapipy client handed a ready token, as scripts running inside Tapis are."""
    return Tapis(base_url=base_url, access_token=token)


def assert_unauthorized(t):
    with pytest.raises(UnauthorizedError):
        t.pods.list_pods()


def test_no_token_is_unauthorized(base_url):
    assert_unauthorized(Tapis(base_url=base_url))


def test_tampered_token_is_unauthorized(alice, base_url, bob_name):
    # alice's own token, its payload changed to say bob; the signature no longer matches.
    head, body, sig = alice.access_token.access_token.split(".")
    claims = dict(alice.access_token.claims, **{"tapis/username": bob_name})
    assert_unauthorized(with_token(base_url, f"{head}.{b64url_json(claims)}.{sig}"))
    # ... and with its signature cut short.
    cut = sig[:-8] + ("B" * 8 if sig.endswith("A" * 8) else "A" * 8)
    assert_unauthorized(with_token(base_url, f"{head}.{body}.{cut}"))


def test_token_signed_by_another_key_is_unauthorized(alice, base_url):
    claims = dict(alice.access_token.claims, exp=int(time.time()) + 3600)
    assert_unauthorized(with_token(base_url, jwt.encode(claims, random_rsa_key(), algorithm="RS256")))


def test_forged_expired_token_is_unauthorized(alice, base_url):
    now = int(time.time())
    claims = dict(alice.access_token.claims, iat=now - 5 * 3600, exp=now - 3600)
    assert_unauthorized(with_token(base_url, jwt.encode(claims, random_rsa_key(), algorithm="RS256")))


def test_expired_token_is_unauthorized(base_url):
    # Signed with the server's own key (test/compat/tapipy.test.ts makes both), expired an hour
    # ago; its control, made the same way but valid now, is accepted.
    with_token(base_url, setting("PODS_CONTROL_TOKEN")).pods.list_pods()
    assert_unauthorized(with_token(base_url, setting("PODS_EXPIRED_TOKEN")))


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_token_with_another_algorithm_is_unauthorized(alice, base_url, alg):
    claims = dict(alice.access_token.claims, exp=int(time.time()) + 3600)
    head = b64url_json({"alg": alg, "typ": "JWT"})
    body = b64url_json(claims)
    if alg == "none":
        token = f"{head}.{body}."
    else:
        # The classic confusion: HMAC keyed with the tenant's public key, which anyone can read.
        public_key = alice.tenant_cache.get_tenant_config(alice.tenant_id).public_key
        sig = hmac.new(public_key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        token = f"{head}.{body}.{b64url(sig)}"
    t = Tapis(base_url=base_url)
    with pytest.raises(UnauthorizedError):
        t.pods.list_pods(_tapis_headers={"X-Tapis-Token": token})


def test_garbage_token_is_unauthorized(base_url):
    t = Tapis(base_url=base_url)
    with pytest.raises(UnauthorizedError):
        t.pods.list_pods(_tapis_headers={"X-Tapis-Token": "not-a-jwt"})


def test_another_tenants_token_is_unauthorized(carol, base_url):
    # carol's genuine token (tenant B), sent to tenant A's base_url.
    assert_unauthorized(with_token(base_url, carol.access_token.access_token))


def test_wrong_password_is_unauthorized(base_url):
    t = Tapis(base_url=base_url, username=setting("PODS_USERNAME"), password="not-the-password")
    with pytest.raises(UnauthorizedError):
        t.get_tokens()
