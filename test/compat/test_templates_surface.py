"""Templates shared as researchers share them, with tapipy: a user's own template and its
permissions, a pod saved as a template tag with no secret in it, the image allow-list filled in
bulk by a tenant admin, and the Jupyter helpers with the site's jupyter template. The tests run in
file order."""
import io
import json
import urllib.error
import urllib.request
import uuid

import pytest
from tapipy.errors import BadRequestError, ForbiddenError, NotFoundError

from support import delete_quietly, login, new_pod_id, pod_host, setting, wait_for_status

TEMPLATE = new_pod_id("shared")
SAVED_POD = new_pod_id("savedpod")
FROM_TAG = new_pod_id("fromtag")
SECRET = f"tok-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def dana(base_url):
    """An admin of alice's tenant."""
    return login(base_url, setting("PODS_TENANT_ADMIN_USERNAME"), setting("PODS_TENANT_ADMIN_PASSWORD"))


@pytest.fixture(scope="module", autouse=True)
def cleanup(alice):
    yield
    for pod_id in (SAVED_POD, FROM_TAG):
        delete_quietly(alice, pod_id)


def raw_get(t, path):
    """The body of a GET as the service sends it, for looking for what must not be in it."""
    req = urllib.request.Request(setting("PODS_BASE_URL") + path, headers={"X-Tapis-Token": t.access_token.access_token})
    with urllib.request.urlopen(req, timeout=10) as res:
        return res.read().decode()


def test_a_users_template_is_shared_by_its_permissions(alice, bob, carol, image):
    alice.pods.add_template(template_id=TEMPLATE, description="alice's web server")
    alice.pods.add_template_tag(template_id=TEMPLATE, tag="v1", commit_message="first",
                                pod_definition={"image": image, "environment_variables": {"MODE": "shared"}})
    assert alice.pods.get_template_permissions(template_id=TEMPLATE).permissions == ["alice:ADMIN"]
    assert TEMPLATE not in [t.template_id for t in bob.pods.list_templates()]
    with pytest.raises(ForbiddenError):
        bob.pods.get_template(template_id=TEMPLATE)
    with pytest.raises(ForbiddenError):
        bob.pods.create_pod(pod_id=new_pod_id("bobs"), template=f"{TEMPLATE}:v1")

    assert alice.pods.set_template_permission(template_id=TEMPLATE, user="bob", level="READ").permissions == ["alice:ADMIN", "bob:READ"]
    assert bob.pods.get_template(template_id=TEMPLATE).template_id == TEMPLATE
    pod_id = new_pod_id("bobs")
    try:
        assert bob.pods.create_pod(pod_id=pod_id, template=f"{TEMPLATE}:v1").environment_variables.MODE == "shared"
    finally:
        delete_quietly(bob, pod_id)
    with pytest.raises(ForbiddenError):
        bob.pods.add_template_tag(template_id=TEMPLATE, tag="bob", commit_message="x", pod_definition={"image": image})
    with pytest.raises(ForbiddenError):
        bob.pods.get_template_permissions(template_id=TEMPLATE)

    assert alice.pods.delete_template_permission(template_id=TEMPLATE, user="bob").permissions == ["alice:ADMIN"]
    with pytest.raises(ForbiddenError):
        bob.pods.get_template(template_id=TEMPLATE)
    with pytest.raises(BadRequestError):
        alice.pods.delete_template_permission(template_id=TEMPLATE, user="alice")


def test_another_tenant_never_sees_the_template(carol):
    assert TEMPLATE not in [t.template_id for t in carol.pods.list_templates()]
    for call in (
        lambda: carol.pods.get_template(template_id=TEMPLATE),
        lambda: carol.pods.list_template_tags(template_id=TEMPLATE),
        lambda: carol.pods.get_template_permissions(template_id=TEMPLATE),
        lambda: carol.pods.set_template_permission(template_id=TEMPLATE, user="carol", level="ADMIN"),
        lambda: carol.pods.delete_template(template_id=TEMPLATE),
    ):
        with pytest.raises(NotFoundError):
            call()
    with pytest.raises(BadRequestError, match="does not exist"):
        carol.pods.create_pod(pod_id=new_pod_id("carols"), template=f"{TEMPLATE}:v1")


def test_save_pod_as_template_tag_keeps_no_secret(alice):
    alice.pods.create_pod(pod_id=SAVED_POD, template=f"{TEMPLATE}:v1", environment_variables={"MODE": "mine", "API_TOKEN": SECRET})
    password = alice.pods.get_pod_credentials(pod_id=SAVED_POD).user_password
    alice.pods.update_pod(pod_id=SAVED_POD, environment_variables={"MODE": "mine", "API_TOKEN": SECRET, "DB_URL": f"postgres://u:{password}@db/x"})

    tag = alice.pods.save_pod_as_template_tag(pod_id_net=SAVED_POD, template_id=TEMPLATE, commit_message="from my pod", tag="frompod")
    assert tag.tag == "frompod"
    assert tag.pod_definition.template == f"{TEMPLATE}:v1"
    env = tag.pod_definition.environment_variables
    assert (env.MODE, env.API_TOKEN, env.DB_URL) == ("mine", "{{user_password}}", "postgres://u:{{user_password}}@db/x")
    stored = raw_get(alice, f"/v3/pods/templates/{TEMPLATE}/tags")
    assert SECRET not in stored and password not in stored

    pod = alice.pods.create_pod(pod_id=FROM_TAG, template=f"{TEMPLATE}:frompod")
    assert pod.environment_variables.MODE == "mine"
    assert alice.pods.get_pod_credentials(pod_id=FROM_TAG).user_password != password


def test_save_pod_as_template_tag_needs_user_on_the_template(bob, carol):
    with pytest.raises(ForbiddenError):
        bob.pods.save_pod_as_template_tag(pod_id_net=SAVED_POD, template_id=TEMPLATE, commit_message="x", tag="bob")
    with pytest.raises(NotFoundError):
        carol.pods.save_pod_as_template_tag(pod_id_net=SAVED_POD, template_id=TEMPLATE, commit_message="x", tag="carol")


def test_add_images_in_bulk(dana, alice):
    tenant = setting("PODS_TENANT_ID")
    names = [f"lib/{new_pod_id('img')}" for _ in range(3)]
    added = dana.pods.add_images(request_body=[{"image": names[0]}, {"image": f"{names[1]}:1.0", "description": "two"}])
    assert [i.image for i in added] == names[:2]
    assert [i.tenants for i in added] == [[tenant], [tenant]]

    with pytest.raises(BadRequestError, match="already on the allow-list"):
        dana.pods.add_images(request_body=[{"image": names[2]}, {"image": names[0]}])
    with pytest.raises(NotFoundError):
        dana.pods.get_image(image_id=names[2])
    added = dana.pods.add_images(request_body=[{"image": names[2]}, {"image": names[0]}], skip_duplicates=True)
    assert [i.image for i in added] == [names[2]]

    with pytest.raises(ForbiddenError):
        alice.pods.add_images(request_body=[{"image": "lib/notmine"}])
    with pytest.raises(ForbiddenError):
        dana.pods.add_images(request_body=[{"image": "lib/notmine", "tenants": [setting("PODS_OTHER_TENANT_ID")]}])
    with pytest.raises(BadRequestError):
        dana.pods.add_images(request_body=[{"image": "Not An Image"}])


def test_ensure_jupyter_pod_and_upload_to_it(alice, bob, carol):
    first = alice.pods.ensure_jupyter_pod()
    again = alice.pods.ensure_jupyter_pod()
    assert first.pod_id == again.pod_id == "alicejupyter"
    assert alice.pods.get_pod(pod_id=first.pod_id).template == "jupyter"
    pod = wait_for_status(alice, first.pod_id, "RUNNING", timeout=180)

    notebook = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    r = alice.pods.upload_to_jupyter(pod_id=first.pod_id, file=io.BytesIO(notebook), path="hello.ipynb")
    assert r.upload_path == "hello.ipynb"
    with pytest.raises(ForbiddenError):
        bob.pods.upload_to_jupyter(pod_id=first.pod_id, file=io.BytesIO(b"x"), path="bob.ipynb")
    with pytest.raises(NotFoundError):
        carol.pods.upload_to_jupyter(pod_id=first.pod_id, file=io.BytesIO(b"x"), path="carol.ipynb")
    with pytest.raises(BadRequestError):
        alice.pods.upload_to_jupyter(pod_id=first.pod_id, file=io.BytesIO(b"x"), path="../escape.ipynb")

    # Jupyter itself lists the notebook, through the pod's URL, with the pod's password as its token.
    token = alice.pods.get_pod_credentials(pod_id=first.pod_id).user_password
    req = urllib.request.Request(setting("PODS_HTTP_URL").rstrip("/") + "/api/contents/hello.ipynb?content=0",
                                 headers={"Host": pod_host(pod), "Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            model = json.loads(res.read())
    except urllib.error.HTTPError as err:
        pytest.fail(f"Jupyter answered {err.code}: {err.read()[:300]!r}")
    assert (model["name"], model["type"]) == ("hello.ipynb", "notebook")
