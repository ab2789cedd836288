"""What a user does with tapipy against the machines' coordinator (test/machines/install.test.ts).

    python tapipy_user.py create|get|restart|logs POD_ID

Settings from the environment: PODS_BASE_URL, PODS_CA (the site's CA, which tapipy checks the
coordinator's certificate against), PODS_USERNAME, PODS_PASSWORD, PODS_IMAGE. Prints one JSON
object: the pod's status, node and container (create and restart wait until it is RUNNING), or
its logs.
"""
import json
import os
import sys
import time

from tapipy.tapis import Tapis


def main(action, pod_id):
    t = Tapis(base_url=os.environ["PODS_BASE_URL"], username=os.environ["PODS_USERNAME"],
              password=os.environ["PODS_PASSWORD"], verify=os.environ["PODS_CA"])
    t.get_tokens()
    if action == "logs":
        print(json.dumps({"logs": t.pods.get_pod_logs(pod_id=pod_id).logs}))
        return
    if action == "create":
        t.pods.create_pod(pod_id=pod_id, image=os.environ["PODS_IMAGE"])
    if action == "restart":
        t.pods.restart_pod(pod_id=pod_id)
        time.sleep(1)
    deadline = time.time() + 120
    while True:
        pod = t.pods.get_pod(pod_id=pod_id)
        if action == "get" or pod.status == "RUNNING" or time.time() > deadline:
            break
        time.sleep(0.5)
    container = pod.status_container
    print(json.dumps({"status": pod.status, "url": pod.url, "node": getattr(container, "node", None),
                      "container_id": getattr(container, "container_id", None)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
