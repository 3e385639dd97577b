"""A STAND-IN for the scheduler and kubelet, for pods the real controllers act on.

No node runs here. kube-controller-manager creates a Deployment's pods; this stand-in does what
the scheduler and a kubelet would do to them on the real API server, so that the real Chaos Mesh
controller sees pods as in a cluster:

- binds each new pod to `devstack.chaos_mesh.NODE` (a real Binding) and reports it Running and
  Ready, with a pod IP and container statuses carrying container ids (Chaos Mesh's daemon calls
  name containers by id);
- finishes the deletion of a terminating pod (the kubelet's part of a graceful delete);
- restarts a container when chaos-daemon (its stand-in) was asked to kill it, and when Chaos
  Mesh's pod-failure swapped its image (restart count up, last state terminated, a new id).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from devstack.chaos_mesh import NODE


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container(name: str, image: str, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": True,
        "restartCount": restarts,
        "image": image,
        "imageID": f"{image}@sha256:{secrets.token_hex(32)}",
        "containerID": f"containerd://{secrets.token_hex(16)}",
        "started": True,
        "state": {"running": {"startedAt": _now()}},
    }


class KubeletStandIn:
    """Plays scheduler and kubelet for the pods of some namespaces, polling in a thread."""

    def __init__(self, api: client.ApiClient, namespaces: list[str], interval_s: float = 0.2):
        self.core = client.CoreV1Api(api)
        self.namespaces = namespaces
        self.interval_s = interval_s
        self.errors: list[str] = []
        self._kills: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet-stand-in", daemon=True)

    def __enter__(self) -> KubeletStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def kill_container(self, container_id: str) -> None:
        """chaos-daemon was asked to kill this container: restart it on the next turn."""
        with self._lock:
            self._kills.append(container_id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for namespace in list(self.namespaces):
                try:
                    listed: Any = self.core.list_namespaced_pod(
                        namespace, resource_version="0", _preload_content=False
                    )
                    for pod in json.loads(listed.data)["items"]:
                        self._tend(pod)
                except client.ApiException as err:
                    if err.status not in (404, 409, 422):  # races with the controllers
                        self.errors.append(f"{namespace}: {err.status} {err.body}")
                except Exception as err:  # noqa: BLE001 - a stand-in must report, not die
                    self.errors.append(f"{namespace}: {err!r}")
            time.sleep(self.interval_s)

    def _tend(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        name, namespace = meta["name"], meta["namespace"]
        if meta.get("deletionTimestamp"):
            self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=0, _preload_content=False
            )
            return
        if not spec.get("nodeName"):
            binding = {"metadata": {"name": name}, "target": {"kind": "Node", "name": NODE}}
            self.core.create_namespaced_binding(namespace, binding, _preload_content=False)
            return
        status = pod.get("status") or {}
        statuses = {s["name"]: s for s in status.get("containerStatuses") or []}
        with self._lock:
            kills, self._kills = self._kills, []
        changed, out = not statuses, []
        for container in spec["containers"]:
            old = statuses.get(container["name"])
            if old is None:
                out.append(_container(container["name"], container["image"]))
                continue
            killed = old.get("containerID") in kills
            if killed or old["image"] != container["image"]:
                new = _container(container["name"], container["image"], old["restartCount"] + 1)
                reason = "Error" if killed else "Completed"
                new["lastState"] = {
                    "terminated": {
                        "exitCode": 137 if killed else 0,
                        "reason": reason,
                        "containerID": old.get("containerID"),
                        "startedAt": _now(),
                        "finishedAt": _now(),
                    }
                }
                out.append(new)
                changed = True
                kills = [k for k in kills if k != old.get("containerID")]
            else:
                out.append(old)
        with self._lock:  # kills for containers of other pods wait for their pod's turn
            self._kills += kills
        if not changed:
            return
        ready = {"type": "Ready", "status": "True"}
        body = {
            "status": {
                "phase": "Running",
                "podIP": status.get("podIP")
                or f"10.244.{secrets.randbelow(250)}.{secrets.randbelow(250) + 2}",
                "hostIP": "10.0.0.1",
                "conditions": [ready, {"type": "ContainersReady", "status": "True"}],
                "containerStatuses": out,
            }
        }
        self.core.patch_namespaced_pod_status(name, namespace, body, _preload_content=False)
