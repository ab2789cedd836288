"""Fixtures of the tapipy compatibility tests; support.py says where their settings come from."""
import pytest

from support import login, setting


@pytest.fixture(scope="session")
def base_url():
    return setting("PODS_BASE_URL")


@pytest.fixture(scope="session")
def image():
    return setting("PODS_IMAGE", "pods-test/httpd")


@pytest.fixture(scope="session")
def alice(base_url):
    return login(base_url, setting("PODS_USERNAME"), setting("PODS_PASSWORD"))


@pytest.fixture(scope="session")
def bob_name():
    return setting("PODS_USERNAME2")


@pytest.fixture(scope="session")
def bob(base_url, bob_name):
    return login(base_url, bob_name, setting("PODS_PASSWORD2"))


@pytest.fixture(scope="session")
def carol():
    return login(setting("PODS_OTHER_BASE_URL"), setting("PODS_OTHER_USERNAME"), setting("PODS_OTHER_PASSWORD"))
