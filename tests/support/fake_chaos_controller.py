"""FakeChaosController: a test-side STAND-IN for the Chaos Mesh controller.

The real Chaos Mesh controller runs in tests/test_chaos_mesh_real*.py. This stand-in stays
for what the real one cannot be made to do on demand (hold its finalizer while the targets are
gone, for the sweeper's stuck report) and for the quick cancel/terminate/sweeper tests of
tests/test_chaos_mesh*.py. It does, on the real API server, what the controller does to the
objects the chaos worker creates (finalizers, deletion, status, strict validation):

- adds the finalizer `chaos-mesh/records` to each new PodChaos/NetworkChaos/DNSChaos/StressChaos;
- selects the pods its selector and mode match and writes `status.conditions`
  (Selected, AllInjected) and `status.experiment.containerRecords`;
- pod-kill: deletes the selected pods and, as a Deployment would, creates replacements with
  the same labels, new names and new uids, Ready; container-kill: bumps the container's restart
  count (last state terminated, exit 137);
- honours the pause annotation (Paused, records recovered) and the `duration` (recovers when it
  has passed since creation, as Chaos Mesh does, leaving the object in place);
- on deletion: sets AllRecovered, then removes its finalizer, unless `hold_finalizers` is set
  (a controller that cannot recover, e.g. its target is gone).

`worker_pods` creates plain Pod objects with status patched to Running/Ready: they play the
ByteBot worker pods.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from models.durations import parse_duration

GROUP, VERSION = "chaos-mesh.org", "v1alpha1"
PLURALS = ("podchaos", "networkchaos", "dnschaos", "stresschaos")
FINALIZER = "chaos-mesh/records"
PAUSE = "experiment.chaos-mesh.org/pause"
MERGE = "application/merge-patch+json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ready_status(containers: list[str], restarts: dict[str, int] | None = None) -> dict[str, Any]:
    restarts = restarts or {}
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": c,
                "ready": True,
                "restartCount": restarts.get(c, 0),
                "image": "worker",
                "imageID": "",
                "state": {"running": {"startedAt": _now()}},
            }
            for c in containers
        ],
    }


def create_ready_pod(
    api: client.ApiClient,
    namespace: str,
    name: str,
    labels: dict[str, str],
    containers: tuple[str, ...] = ("worker",),
) -> dict[str, Any]:
    """Create a plain Pod (no kubelet runs) and patch its status to Running and Ready."""
    core = client.CoreV1Api(api)
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": c, "image": "worker"} for c in containers]},
    }
    # Raw JSON (no model deserialization): the generated client's models are slow to build.
    core.create_namespaced_pod(namespace, pod, _preload_content=False)  # type: ignore[arg-type]
    core.patch_namespaced_pod_status(
        name, namespace, {"status": _ready_status(list(containers))}, _preload_content=False
    )
    return pod


def worker_pods(
    api: client.ApiClient,
    namespace: str,
    count: int = 3,
    labels: dict[str, str] | None = None,
) -> list[str]:
    """`count` Ready pods labelled like the ByteBot worker; their names."""
    labels = labels or {"app": "bytebot-temporal-worker"}
    names = [f"bytebot-temporal-worker-{secrets.token_hex(3)}" for _ in range(count)]
    for name in names:
        create_ready_pod(api, namespace, name, labels)
    return names


class FakeChaosController:
    """Stand-in for the Chaos Mesh controller (see the module docstring), polling in a thread."""

    def __init__(
        self, api: client.ApiClient, namespaces: list[str], interval_s: float = 0.1
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespaces = namespaces
        self.interval_s = interval_s
        self.hold_finalizers = False
        self.killed: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-chaos-mesh", daemon=True)

    def __enter__(self) -> FakeChaosController:
        self._thread.start()
        # The API server's first list of each kind can take ~1s (its watch cache warming up).
        if not self._ready.wait(timeout=30):
            raise RuntimeError(f"fake chaos controller not ready: {self.errors}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for namespace in list(self.namespaces):
                for plural in PLURALS:
                    try:
                        # resourceVersion "0": served from the watch cache at once, as an
                        # informer would be (a consistent list may wait ~1s on this server).
                        listed: Any = self.custom.list_namespaced_custom_object(
                            GROUP, VERSION, namespace, plural, resource_version="0"
                        )
                        for obj in listed["items"]:
                            self._reconcile(plural, obj)
                    except client.ApiException as err:
                        if err.status not in (404, 409):  # races with the backend are normal
                            self.errors.append(f"{plural} in {namespace}: {err.status} {err.body}")
                    except Exception as err:  # noqa: BLE001 - a stand-in must report, not die
                        self.errors.append(f"{plural} in {namespace}: {err!r}")
            self._ready.set()
            time.sleep(self.interval_s)

    # -- reconciliation ---------------------------------------------------------------------

    def _patch(self, plural: str, obj: dict[str, Any], body: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], plural, meta["name"], body, _content_type=MERGE
        )

    def _set_status(self, plural: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
        # The v2.6.7 CRDs declare no status subresource: status is written with the object.
        self._patch(plural, obj, {"status": status})

    def _reconcile(self, plural: str, obj: dict[str, Any]) -> None:
        meta, spec = obj["metadata"], obj["spec"]
        status = obj.get("status") or {}
        records = (status.get("experiment") or {}).get("containerRecords") or []
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp"):
            if FINALIZER not in finalizers:
                return
            if not _condition(status, "AllRecovered"):
                self._set_status(plural, obj, _status(records, injected=False))
            if not self.hold_finalizers:
                rest = [f for f in finalizers if f != FINALIZER]
                self._patch(plural, obj, {"metadata": {"finalizers": rest or None}})
            return
        if FINALIZER not in finalizers:
            self._patch(plural, obj, {"metadata": {"finalizers": [*finalizers, FINALIZER]}})
        paused = (meta.get("annotations") or {}).get(PAUSE) == "true"
        expired = (
            "duration" in spec and _age_s(meta) >= parse_duration(spec["duration"]).total_seconds()
        )
        if not records:
            records = self._inject(plural, obj)
            self._set_status(plural, obj, _status(records, injected=not paused))
        elif (paused or expired) and _condition(status, "AllInjected"):
            self._set_status(plural, obj, _status(records, injected=False, paused=paused))
        elif not paused and not expired and not _condition(status, "AllInjected"):
            self._set_status(plural, obj, _status(records, injected=True))

    def _inject(self, plural: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
        spec, namespace = obj["spec"], obj["metadata"]["namespace"]
        selector = spec["selector"]
        labels = ",".join(f"{k}={v}" for k, v in (selector.get("labelSelectors") or {}).items())
        pods: list[dict[str, Any]] = []
        for ns in selector.get("namespaces") or [namespace]:
            listed: Any = self.core.list_namespaced_pod(
                ns, label_selector=labels, _preload_content=False
            )
            pods += json.loads(listed.data)["items"]
        pods = sorted(pods, key=lambda p: p["metadata"]["name"])
        count = len(pods)
        value = int(spec.get("value") or 0)
        count = {"one": 1, "all": count, "fixed": value}.get(spec["mode"], count * value // 100)
        chosen = pods[:count]
        action = spec.get("action")
        ids = []
        for pod in chosen:
            pod_id = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if plural == "podchaos" and action == "container-kill":
                for container in spec.get("containerNames") or []:
                    self._restart(pod, container)
                    ids.append(f"{pod_id}/{container}")
            else:
                ids.append(pod_id)
            if plural == "podchaos" and action == "pod-kill":
                self._kill_and_replace(pod)
        return [
            {
                "id": i,
                "selectorKey": ".",
                "phase": "Injected",
                "injectedCount": 1,
                "recoveredCount": 0,
                "events": [{"operation": "Apply", "type": "Succeeded", "timestamp": _now()}],
            }
            for i in ids
        ]

    def _kill_and_replace(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.core.delete_namespaced_pod(
            meta["name"], meta["namespace"], grace_period_seconds=0, _preload_content=False
        )
        self.killed.append(meta["name"])
        base = meta["name"].rsplit("-", 1)[0]
        containers = tuple(c["name"] for c in pod["spec"]["containers"])
        create_ready_pod(
            self.core.api_client,
            meta["namespace"],
            f"{base}-{secrets.token_hex(3)}",
            dict(meta.get("labels") or {}),
            containers,
        )

    def _restart(self, pod: dict[str, Any], container: str) -> None:
        statuses = pod["status"].get("containerStatuses") or []
        restarts = {
            s["name"]: s.get("restartCount", 0) + (1 if s["name"] == container else 0)
            for s in statuses
        }
        status = _ready_status([s["name"] for s in statuses], restarts)
        for s in status["containerStatuses"]:
            if s["name"] == container:
                ended = {
                    "exitCode": 137,
                    "reason": "Error",
                    "startedAt": _now(),
                    "finishedAt": _now(),
                }
                s["lastState"] = {"terminated": ended}
        self.core.patch_namespaced_pod_status(
            pod["metadata"]["name"],
            pod["metadata"]["namespace"],
            {"status": status},
            _preload_content=False,
        )


def _age_s(meta: dict[str, Any]) -> float:
    created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    return (datetime.now(UTC) - created).total_seconds()


def _condition(status: dict[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or []
    )


def _status(
    records: list[dict[str, Any]], *, injected: bool, paused: bool = False
) -> dict[str, Any]:
    """Chaos Mesh's status: conditions and records, injected or recovered."""
    if not injected:
        records = [
            r | {"phase": "Not Injected", "recoveredCount": r.get("injectedCount", 1)}
            for r in records
        ]
    flag = {True: "True", False: "False"}
    return {
        "conditions": [
            {"type": "Selected", "status": flag[bool(records)]},
            {"type": "AllInjected", "status": flag[injected]},
            {"type": "AllRecovered", "status": flag[not injected]},
            {"type": "Paused", "status": flag[paused]},
        ],
        "experiment": {"desiredPhase": "Run" if injected else "Stop", "containerRecords": records},
    }
