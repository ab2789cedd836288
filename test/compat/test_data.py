"""Volumes, snapshots, exec and uploads as a researcher uses them with tapipy: a volume made and
filled with upload_to_volume, mounted into a pod, written by exec_pod_commands, copied by
create_snapshot, and a file put into a pod with upload_to_pod. The tests run in file order."""
import io

import pytest
from tapipy.errors import BadRequestError, NotFoundError
from tapipy.tapis import Tapis

from support import delete_quietly, new_pod_id, setting, wait_for_status

VOL = new_pod_id("vol")
SNAP = new_pod_id("snap")
POD_ID = new_pod_id("mounts")


@pytest.fixture(scope="module")
def t(base_url):
    t = Tapis(base_url=base_url, username=setting("PODS_USERNAME"), password=setting("PODS_PASSWORD"))
    t.get_tokens()
    yield t
    delete_quietly(t, POD_ID)


def names(listing):
    return sorted(f.name for f in listing)


def test_create_volume_and_upload(t):
    vol = t.pods.create_volume(volume_id=VOL, description="results", size_limit=10)
    assert vol.volume_id == VOL
    assert vol.size_limit == 10
    assert vol.status == "AVAILABLE"
    t.pods.upload_to_volume(volume_id=VOL, path="input/data.csv", file=io.BytesIO(b"x,y\n1,2\n"))
    assert names(t.pods.list_volume_files(volume_id=VOL)) == ["input"]
    assert [v.volume_id for v in t.pods.list_volumes()].count(VOL) == 1


def test_mount_the_volume_and_exec(t, image):
    t.pods.create_pod(pod_id=POD_ID, image=image, volume_mounts={VOL: {"type": "tapisvolume", "mount_path": "/work"}})
    wait_for_status(t, POD_ID, "RUNNING")
    r = t.pods.exec_pod_commands(pod_id=POD_ID, commands=[["cat", "/work/input/data.csv"], "echo done > /work/output.txt"])
    assert r.total_commands == 2
    assert r.successful_commands == 2
    assert r.execution_results[0].stdout == "x,y\n1,2\n"
    assert names(t.pods.list_volume_files(volume_id=VOL)) == ["input", "output.txt"]


def test_snapshot_keeps_the_files_of_its_time(t):
    snap = t.pods.create_snapshot(snapshot_id=SNAP, source_volume_id=VOL, source_volume_path="")
    assert snap.status == "AVAILABLE"
    t.pods.upload_to_volume(volume_id=VOL, path="later.txt", file=io.BytesIO(b"later\n"))
    assert names(t.pods.list_snapshot_files(snapshot_id=SNAP)) == ["input", "output.txt"]
    assert t.pods.get_snapshot(snapshot_id=SNAP).source_volume_id == VOL


def test_upload_to_pod(t):
    r = t.pods.upload_to_pod(pod_id=POD_ID, file=io.BytesIO(b"uploaded\n"), dest_path="/tmp/in.txt")
    assert r.path == "/tmp/in.txt"
    out = t.pods.exec_pod_commands(pod_id=POD_ID, commands=[["cat", "/tmp/in.txt"]])
    assert out.execution_results[0].stdout == "uploaded\n"


def test_bad_paths_and_missing_volumes(t):
    before = names(t.pods.list_volume_files(volume_id=VOL))
    # requests folds the "../" away before it is sent (a 404 of another path); either way nothing is written.
    with pytest.raises((BadRequestError, NotFoundError)):
        t.pods.upload_to_volume(volume_id=VOL, path="../../escape.txt", file=io.BytesIO(b"x"))
    with pytest.raises(BadRequestError) as e:
        t.pods.upload_to_volume(volume_id=VOL, path="a/%2E%2E/%2E%2E/escape.txt", file=io.BytesIO(b"x"))
    assert "path" in e.value.message
    assert names(t.pods.list_volume_files(volume_id=VOL)) == before
    with pytest.raises(NotFoundError):
        t.pods.get_volume(volume_id=new_pod_id("ghost"))
    with pytest.raises(BadRequestError):
        t.pods.create_pod(pod_id=new_pod_id("bad"), image="pods-test/httpd", volume_mounts={"ghost": {"type": "tapisvolume", "mount_path": "/g"}})
