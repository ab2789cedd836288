"""The whole API surface tapipy knows: every operation of its pods spec (the reference) reaches a
handler here, built or answering 501 with the envelope, and the OpenAPI document the service
serves keeps the reference's paths, operationIds and request fields."""
import json
import urllib.error
import urllib.request

import pytest
from tapipy.errors import BaseTapyException
from tapipy.tapis import RESOURCE_SPECS

from support import setting

REFERENCE = RESOURCE_SPECS["pods"]["paths"]

# What the service does not do yet, each shown as "xfailed" in the summary (and "XPASS" once it
# works: then delete its line here).
GAPS: dict = {}


def gap(name):
    return [pytest.mark.xfail(reason=GAPS[name], strict=False)] if name in GAPS else []


def known_gap(name):
    """Decorator: the test is expected to fail while GAPS names `name`."""
    return pytest.mark.xfail(reason=GAPS[name], strict=False) if name in GAPS else (lambda test: test)


OPERATIONS = [
    pytest.param(op["operationId"], method.upper(), path, id=op["operationId"], marks=gap(op["operationId"]))
    for path, ops in sorted(REFERENCE.items())
    for method, op in sorted(ops.items())
]


def dummy_arguments(op):
    """Arguments tapipy insists on, with values that name nothing that exists."""
    kwargs = {p["name"]: "nosuchthing" for p in op.path_parameters}
    if "status" in kwargs:
        kwargs["status"] = "404"
    for content in op.request_body.get("content", {}).values():
        for field in content.get("schema", {}).get("required", []):
            kwargs[field] = "x"
    return kwargs


@pytest.fixture(scope="module")
def no_route_message(base_url, alice):
    """How the service words a 404 for a path it has no handler for (up to the path)."""
    req = urllib.request.Request(base_url + "/v3/pods/nosuchthing/no/such/endpoint",
                                 headers={"X-Tapis-Token": alice.access_token.access_token})
    try:
        urllib.request.urlopen(req, timeout=5)
    except urllib.error.HTTPError as err:
        assert err.code == 404
        return json.loads(err.read())["message"].split("/v3/")[0]
    pytest.fail("an unknown path answered 200")


@pytest.mark.parametrize("operation_id,method,path", OPERATIONS)
def test_every_reference_operation_reaches_a_handler(alice, no_route_message, operation_id, method, path):
    op = getattr(alice.pods, operation_id)
    try:
        op(**dummy_arguments(op))
        return
    except BaseTapyException as err:
        res = err.response
    assert res is not None, f"{method} {path}: no response"
    assert res.headers.get("content-type") == "application/json", f"{method} {path}: {res.status_code} {res.text[:200]}"
    message = res.json().get("message") or ""
    assert res.status_code in (400, 403, 404, 501), f"{method} {path}: {res.status_code} {message}"
    assert not (res.status_code == 404 and message.startswith(no_route_message)), (
        f"tapipy's {operation_id}() sends {res.request.method} {res.request.path_url}, which has no handler: {message}"
    )


@known_gap("get_image_slash")
def test_get_image_whose_name_has_a_slash(alice):
    # tapipy puts the image id into the path as it is: /v3/pods/images/pods-test/httpd
    image = setting("PODS_IMAGE", "pods-test/httpd")
    assert alice.pods.get_image(image_id=image).image == image


@known_gap("healthcheck")
def test_healthcheck(alice):
    alice.pods.healthcheck()


def request_fields(op):
    for content in op.get("requestBody", {}).get("content", {}).values():
        return set(content.get("schema", {}).get("properties", {}))
    return set()


@known_gap("served_healthcheck_path")
def test_served_openapi_document_keeps_the_references_names(base_url):
    with urllib.request.urlopen(base_url + "/v3/pods/openapi.json", timeout=10) as res:
        assert res.headers.get("content-type") == "application/json"
        doc = json.loads(res.read())
    problems = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ref = REFERENCE.get(path, {}).get(method)
            if ref is None:
                problems.append(f"{method.upper()} {path} ({op.get('operationId')}) is not in the reference")
                continue
            if op.get("operationId") != ref["operationId"]:
                problems.append(f"{method.upper()} {path} is {op.get('operationId')}, the reference says {ref['operationId']}")
            missing = request_fields(ref) - request_fields(op)
            if missing:
                problems.append(f"{method.upper()} {path} lacks request fields tapipy sends: {sorted(missing)}")
    assert not problems, "\n".join(problems)
