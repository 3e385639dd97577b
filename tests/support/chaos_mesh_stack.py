"""The real Chaos Mesh stack of the tests: real controllers, stand-ins only for the node.

Real: kube-apiserver (the suite's `kube`), kube-controller-manager (Deployments keep their
replicas), chaos-controller-manager with its admission webhooks (devstack.chaos_mesh).
Stand-ins, named as such: chaos-daemon and the chaos DNS server (tests/support/chaos_mesh_daemon.py)
and the scheduler/kubelet (tests/support/chaos_mesh_kubelet.py), because no container runs here.
`deployment()` makes worker pods the way a cluster would: a Deployment whose pods the real
replicaset controller creates.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from devstack import builds
from devstack.chaos_mesh import ChaosControllerManager, host_ip
from devstack.kube import KubeApiServer
from devstack.kube_controllers import KubeControllerManager
from devstack.ports import free_port
from tests.support.chaos_mesh_daemon import ChaosDaemonStandIn
from tests.support.chaos_mesh_kubelet import KubeletStandIn

WORKER_LABELS = {"app": "bytebot-temporal-worker"}


@dataclass
class RealChaosMesh:
    """What `real_chaos_mesh()` started; the tests read the stand-ins' records through it."""

    kube: KubeApiServer
    controller: ChaosControllerManager
    daemon: ChaosDaemonStandIn
    kubelet: KubeletStandIn
    kube_controllers: KubeControllerManager


@contextlib.contextmanager
def real_chaos_mesh(kube: KubeApiServer, work_dir: Path) -> Iterator[RealChaosMesh]:
    """Start the stand-ins and the real controllers; stop them all on the way out."""
    build = builds.chaos_mesh()
    ip, daemon_port, dns_port = host_ip(), free_port(), free_port()
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(kube.api_client())
        kubelet = stack.enter_context(KubeletStandIn(api, []))
        daemon = stack.enter_context(
            ChaosDaemonStandIn(build, ip, daemon_port, dns_port, kubelet.kill_container)
        )
        kcm = stack.enter_context(KubeControllerManager(kube, work_dir))
        ccm = stack.enter_context(
            ChaosControllerManager(
                kube,
                work_dir,
                daemon_ip=ip,
                daemon_port=daemon_port,
                dns_port=dns_port,
                binary=build.controller,
            )
        )
        yield RealChaosMesh(kube, ccm, daemon, kubelet, kcm)


def deployment(
    api: client.ApiClient,
    namespace: str,
    replicas: int = 3,
    labels: dict[str, str] | None = None,
    containers: tuple[str, ...] = ("worker",),
) -> dict[str, Any]:
    """A Deployment of `replicas` worker pods (created by the real replicaset controller)."""
    labels = labels or WORKER_LABELS
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": labels["app"], "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": c, "image": f"bytebot/{c}:1"} for c in containers],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(namespace, body, _preload_content=False)
    return body


def wait_ready_pods(
    api: client.ApiClient, namespace: str, count: int, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """Wait until `count` pods of the namespace are Ready with container ids; return them."""
    import json

    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout_s
    while True:
        listed: Any = core.list_namespaced_pod(namespace, _preload_content=False)
        pods = [
            p
            for p in json.loads(listed.data)["items"]
            if not p["metadata"].get("deletionTimestamp")
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]
        if len(pods) >= count:
            return pods
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pods)} of {count} pods ready in {namespace}")
        time.sleep(0.2)
