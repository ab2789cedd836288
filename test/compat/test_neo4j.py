"""The Tapis user guide's headline example, written as the guide writes it with tapipy: a Neo4j
pod from its template with no tag, its credentials, the official Neo4j Python driver over Bolt
through the shared TLS port (bolt+ssc: Caddy's certificate is its own), the HTTP entry, and the
pod's logs. The tests run in file order and share one pod.

The pod's host name ({pod_id}.pods.{tenant}.{base_domain}) has no DNS record here, where a site
has a wildcard record: names under the base domain resolve to 127.0.0.1 for these tests, and the
driver's TLS names the pod (SNI), which routes it. (The driver's own `resolver` option would send
the connection there too, but without the name in the TLS handshake.)"""
import socket
import urllib.parse

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError

from support import delete_quietly, fetch, new_pod_id, setting, wait_for_status

POD_ID = new_pod_id("docpod")
seen = {}


@pytest.fixture(scope="module")
def t(alice):
    yield alice
    delete_quietly(alice, POD_ID)


@pytest.fixture(scope="module", autouse=True)
def wildcard_dns():
    """*.{base_domain} -> 127.0.0.1, as a site's wildcard DNS record sends it to its Caddy."""
    suffix = "." + setting("PODS_BASE_DOMAIN")
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(suffix):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    yield
    socket.getaddrinfo = real


def bolt_driver(url, username, password):
    """A driver for bolt+ssc://<pod url>, as the guide connects."""
    return GraphDatabase.driver(f"bolt+ssc://{url}", auth=(username, password), connection_timeout=10)


def test_create_pod_from_the_template_and_wait_until_running(t):
    pod = t.pods.create_pod(pod_id=POD_ID, template="neo4j")
    assert pod.pod_id == POD_ID
    pod = wait_for_status(t, POD_ID, "RUNNING", timeout=180)
    host, port = pod.networking.default.url.rsplit(":", 1)
    assert host == f"{POD_ID}.pods.{setting('PODS_TENANT_ID')}.{setting('PODS_BASE_DOMAIN')}"
    assert int(port) == int(setting("PODS_TLS_PORT")), "Bolt is served on the shared TLS port"
    seen["pod"] = pod


def test_credentials_and_the_neo4j_driver(t):
    creds = t.pods.get_pod_credentials(pod_id=POD_ID)
    assert creds.user_username and len(creds.user_password) >= 16
    seen["creds"] = creds
    with bolt_driver(seen["pod"].networking.default.url, creds.user_username, creds.user_password) as driver:
        driver.verify_connectivity()
        records, _, _ = driver.execute_query(
            "CREATE (p:Pod {name: $name, guide: 'quickstart'}) RETURN p.name AS name", name=POD_ID, database_="neo4j")
        assert [r["name"] for r in records] == [POD_ID]
        records, _, _ = driver.execute_query(
            "MATCH (p:Pod {guide: 'quickstart'}) RETURN p.name AS name", database_="neo4j")
        assert [r["name"] for r in records] == [POD_ID]


def test_a_wrong_password_is_refused():
    creds = seen["creds"]
    with bolt_driver(seen["pod"].networking.default.url, creds.user_username, "not-" + creds.user_password) as driver:
        with pytest.raises(AuthError):
            driver.verify_connectivity()


def test_the_http_entry_answers(t):
    pod = t.pods.get_pod(pod_id=POD_ID)
    url = pod.networking.browser.url
    host = urllib.parse.urlsplit(url).netloc if "://" in url else url.split("/")[0]
    assert host == f"{POD_ID}-browser.pods.{setting('PODS_TENANT_ID')}.{setting('PODS_BASE_DOMAIN')}"
    status, body = fetch(host)
    assert status == 200, body
    assert '"neo4j_version":"5.' in body.replace(" ", ""), body


def test_logs_show_the_server_started_and_the_users_made(t):
    logs = t.pods.get_pod_logs(pod_id=POD_ID).logs
    assert "Changed password for user 'neo4j'" in logs, logs
    assert "Started." in logs, logs
    assert f"created user {seen['creds'].user_username}" in logs, logs
