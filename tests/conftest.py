"""Shared fixtures: one real Temporal dev server, one real kube-apiserver, a client, helpers."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import KubeClient
from activities.faults.chaos_mesh.render import PeerMap, PeerTarget
from devstack.kube import KubeApiServer
from devstack.temporal import TemporalDevServer
from tests.support.chaos_mesh_stack import (
    RealChaosMesh,
    deployment,
    real_chaos_mesh,
    wait_ready_pods,
)
from tests.support.fake_chaos_controller import FakeChaosController, worker_pods
from tests.support.scenario_runs import Harness
from tests.support.standins import MarkerBackend


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[TemporalDevServer]:
    """The real `temporal server start-dev`, with this product's search attributes."""
    with TemporalDevServer() as server:
        yield server


@pytest.fixture(scope="session")
async def client(temporal_server: TemporalDevServer) -> AsyncIterator[Client]:
    """A client of the dev server's default namespace, with the pydantic converter."""
    yield await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    """The real kube-apiserver + etcd with the Chaos Mesh CRDs, shared by the files that need it.

    Tests share its `bytebot` namespace: they use their own object names there, or a fresh
    namespace of their own.
    """
    with KubeApiServer(tmp_path_factory.mktemp("kube")) as server:
        yield server


async def assert_eventually(
    check: Callable[[], Awaitable[Any] | Any], timeout_s: float = 20, interval_s: float = 0.2
) -> Any:
    """Poll `check` until it returns without AssertionError (and truthy if it returns)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            assert result is None or result, f"check returned {result!r}"
            return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(interval_s)


@pytest.fixture
async def harness(client: Client, tmp_path: Path) -> AsyncIterator[Harness]:
    """A chaos worker on a fresh task queue with the stand-in marker backend."""
    h = Harness(client, MarkerBackend(tmp_path / "faults"))
    async with h.worker():
        yield h


# -- the Chaos Mesh tests' apiserver fixtures (test_chaos_mesh*.py) --------------------------


@pytest.fixture(scope="session")
def admin(kube: KubeApiServer) -> Iterator[k8s.ApiClient]:
    with kube.api_client() as api:
        yield api


@pytest.fixture
def ns(kube: KubeApiServer) -> str:
    """A fresh namespace per test, holding three Ready stand-in worker pods."""
    name = f"chaos-{secrets.token_hex(3)}"
    kube.ensure_namespace(name)
    with kube.api_client() as api:
        worker_pods(api, name, 3)
    return name


@pytest.fixture
def controller(kube: KubeApiServer, ns: str) -> Iterator[FakeChaosController]:
    with kube.api_client() as api, FakeChaosController(api, [ns]) as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def kc(kube: KubeApiServer) -> Iterator[KubeClient]:
    kube_client = KubeClient(kube.api_client())
    yield kube_client
    kube_client.close()


@pytest.fixture
def backend(kc: KubeClient, ns: str) -> ChaosMeshBackend:
    return ChaosMeshBackend(kc, allowed_namespaces=[ns], poll_s=0.1, recover_wait_s=10)


# -- the real Chaos Mesh controller (tests/test_chaos_mesh_real*.py) --------------------------


@pytest.fixture(scope="session")
def chaos_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealChaosMesh]:
    """The real chaos-controller-manager (+ webhooks) and kube-controller-manager.

    They get a kube-apiserver of their own: the real controller acts on every namespace, and
    must not meet the objects the `FakeChaosController` tests drive by hand. Stand-ins for what
    needs a node: chaos-daemon, the chaos DNS server and the kubelet
    (tests/support/chaos_mesh_stack.py says which part is which).
    """
    work = tmp_path_factory.mktemp("chaos-mesh")
    with KubeApiServer(work / "kube") as kube, real_chaos_mesh(kube, work) as stack:
        yield stack
        assert stack.kubelet.errors == []


@pytest.fixture
def real_admin(chaos_mesh: RealChaosMesh) -> Iterator[k8s.ApiClient]:
    """An admin client of the real controller's API server."""
    with chaos_mesh.kube.api_client() as api:
        yield api


@pytest.fixture
def real_kc(chaos_mesh: RealChaosMesh) -> Iterator[KubeClient]:
    """The backend's client, on the real controller's API server."""
    kube_client = KubeClient(chaos_mesh.kube.api_client())
    yield kube_client
    kube_client.close()


@pytest.fixture
def real_ns(chaos_mesh: RealChaosMesh, real_admin: k8s.ApiClient) -> str:
    """A fresh namespace with a 3-replica worker Deployment whose pods are Ready."""
    name = f"real-{secrets.token_hex(3)}"
    chaos_mesh.kube.ensure_namespace(name)
    chaos_mesh.kubelet.namespaces.append(name)
    deployment(real_admin, name, 3, containers=("worker", "sidecar"))
    wait_ready_pods(real_admin, name, 3)
    return name


@pytest.fixture
def real_backend(real_kc: KubeClient, real_ns: str) -> ChaosMeshBackend:
    """The backend on the real controller; network peers are IPs (no DNS lookups leave here)."""
    peers = PeerMap(
        temporal=PeerTarget(hosts=["10.96.10.10"]), kafka=PeerTarget(hosts=["10.96.10.20"])
    )
    return ChaosMeshBackend(
        real_kc, allowed_namespaces=[real_ns], peers=peers, poll_s=0.1, recover_wait_s=20
    )
