"""The local fault backend's whole catalog against replicas that are not the ByteBot stand-in.

The replicas run `tests/support/plain_echo_worker.py`, a plain temporalio worker with a task
queue of its own per replica, no Kafka and an exec readiness probe, under the same real parts
as tests/test_local_faults.py: a Temporal dev server, a single-node Kafka, the fault proxy and
the stand-in's Deployment (supervisor) with cgroup v1, stress-ng. So every fault here proves
the backend needs only what any worker command gets: a process, its cgroups, its proxy routes.

Effects are read from outside: the supervisor's state.json, the replica cgroups' CPU and memory,
the proxy's counters, and the worker's own work: a ``plainEcho`` workflow on one replica's
queue crosses that replica's Temporal route and answers with the pid that ran it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from activities.faults.local.backend import LocalBackend
from devstack.kafka import KafkaBroker
from devstack.sut import LocalSut, SutPorts
from devstack.temporal import BYTEBOT_NAMESPACE, TemporalDevServer
from faultproxy import procs
from faultproxy.control import read_status, rules_dir
from models.ledger import Injection
from tests.conftest import assert_eventually
from tests.support import plain_echo_worker
from tests.support.local_requests import confirmed, request, stress_pids
from tests.support.measure import cgroup_cores, cgroup_memory, replica, temporal_client

pytestmark = pytest.mark.timeout(120)
REPLICAS = 2
TASK_QUEUE = f"plain-{uuid4().hex[:8]}"  # replica i polls "<TASK_QUEUE>-replica-i"
DURATION_S = 10  # every fault's expiry: recovered explicitly well before that
DELAY_S = 0.2  # the seed's network-delay latency
# Cores, best of a few 1 s windows: the seed's 80% load of one core gets as little as a sixth
# of that on a 2-core machine with ten runnable processes; the idle plain worker uses ~0.
CPU_RISE = 0.1
STRESS_S = 20  # long enough for those windows after confirmation
needs_stress_ng = pytest.mark.skipif(
    shutil.which("stress-ng") is None, reason="run scripts/install-system-packages.sh"
)


@pytest.fixture(scope="module")
def sut(
    temporal_server: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSut]:
    """Kafka, the fault proxy and the Deployment running the plain worker (no load, no consumer)."""
    root = tmp_path_factory.mktemp("local-any-worker")
    ports = SutPorts.pick(REPLICAS)
    with KafkaBroker(root / "kafka", chaos_advertised=ports.kafka_advertised) as broker:
        sut = LocalSut.for_broker(
            root,
            broker,
            ports,
            temporal_server.address,
            load=False,
            consumer=False,
            **plain_echo_worker.deployment(root / "ready"),
            extra_args=["--task-queue", TASK_QUEUE, "--termination-grace-s", "3"],
        )
        with sut:
            yield sut


@pytest.fixture(scope="module")
async def backend(sut: LocalSut, tmp_path_factory: pytest.TempPathFactory) -> LocalBackend:
    backend = LocalBackend(tmp_path_factory.mktemp("backend-state"), sut.state_dir, sut.control_dir)
    assert await backend.sweep() == []
    return backend


class PlainWorkers:
    """Runs ``plainEcho`` on one replica's own task queue, through a direct client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def start(self, name: str, text: str = "") -> WorkflowHandle[Any, Any]:
        """Start an echo that only replica ``name`` can run."""
        return await self.client.start_workflow(
            "plainEcho",
            text,
            id=f"echo-{name}-{uuid4().hex[:8]}",
            task_queue=f"{TASK_QUEUE}-{name}",
            execution_timeout=timedelta(minutes=2),  # a forgotten echo ends by itself
        )

    async def echo(
        self, name: str, text: str = "", timeout_s: float = 30
    ) -> tuple[dict[str, str], float]:
        """The replica's answer, and the seconds from start to result."""
        started = time.monotonic()
        handle = await self.start(name, text)
        answer = await asyncio.wait_for(handle.result(), timeout_s)
        return answer, time.monotonic() - started

    def traffic(self, name: str) -> Callable[[], Awaitable[object]]:
        """Some of the replica's own work: its poll and completion cross its Temporal route."""
        return lambda: self.echo(name, timeout_s=3)


@pytest.fixture(scope="module")
async def plain(temporal_server: TemporalDevServer) -> PlainWorkers:
    client = await Client.connect(temporal_server.address, namespace=BYTEBOT_NAMESPACE)
    return PlainWorkers(client)


@pytest.fixture(autouse=True)
async def steady(sut: LocalSut, plain: PlainWorkers) -> AsyncIterator[None]:
    """Each test starts with every replica ready, and ends so, each worker doing its work."""
    await assert_eventually(sut.all_ready, timeout_s=30)
    yield
    await assert_eventually(sut.all_ready, timeout_s=30)
    for i in range(REPLICAS):
        answer, _ = await plain.echo(f"replica-{i}")
        assert answer["pid"] == str(replica(sut, f"replica-{i}")["pid"])
    assert not list(rules_dir(sut.control_dir).glob("*.json"))
    assert not list((sut.state_dir / "hold").glob("*"))


def touched(effect: Injection) -> str:
    """The evidence line saying which routes' traffic met the rule."""
    return next(e for e in effect.evidence if e.startswith("traffic touched since injection"))


async def cpu_rises(sut: LocalSut, name: str, before: float) -> None:
    """The replica's cgroup uses at least CPU_RISE cores more than ``before``, soon."""

    async def risen() -> None:
        cores = await asyncio.to_thread(cgroup_cores, sut, name)
        assert cores >= before + CPU_RISE, (cores, before)

    await assert_eventually(risen, timeout_s=10)


def other(name: str) -> str:
    return next(f"replica-{i}" for i in range(REPLICAS) if f"replica-{i}" != name)


async def test_the_replicas_are_plain_workers_each_serving_its_own_queue(
    sut: LocalSut, plain: PlainWorkers
) -> None:
    for i in range(REPLICAS):
        name = f"replica-{i}"
        pid = replica(sut, name)["pid"]
        cmdline = procs.cmdline(pid)
        assert "plain_echo_worker.py" in cmdline and "standin" not in cmdline
        answer, _ = await plain.echo(name, "hello")
        assert answer == {"replica": name, "pid": str(pid), "echo": "hello"}


# --- pod faults ------------------------------------------------------------------------------


async def test_pod_kill_replaces_the_plain_worker_with_a_new_process(
    sut: LocalSut, backend: LocalBackend, plain: PlainWorkers
) -> None:
    req = request({"action": "pod-kill"}, DURATION_S)
    [target] = (await backend.inject(req)).targets
    old_pid, old_restarts = int(target.uid), target.restarts or 0
    effect = await confirmed(backend, req)
    assert "last exit 137 Killed" in " ".join(effect.evidence)

    def restarted() -> None:
        assert replica(sut, target.name)["pid"] not in (None, old_pid)

    await assert_eventually(restarted, timeout_s=20)
    now = replica(sut, target.name)
    assert now["restarts"] == old_restarts + 1 and now["last_exit_reason"] == "Killed"
    answer, _ = await plain.echo(target.name)  # the new process took over the queue
    assert answer["pid"] == str(now["pid"])

    recovery = await backend.recover(req)
    assert recovery.recovered and f"back as pid {now['pid']}" in " ".join(recovery.evidence)


async def test_pod_failure_holds_the_plain_worker_down_and_its_work_waits(
    sut: LocalSut, backend: LocalBackend, plain: PlainWorkers
) -> None:
    req = request({"action": "pod-failure"}, DURATION_S)
    [target] = (await backend.inject(req)).targets
    effect = await confirmed(backend, req)
    assert "down" in effect.evidence[0]
    waiting = await plain.start(target.name, "held")
    await asyncio.sleep(2)  # the supervisor does not restart a held replica
    assert replica(sut, target.name)["pid"] is None
    assert replica(sut, target.name)["phase"] == "Held"
    assert (await waiting.describe()).status == WorkflowExecutionStatus.RUNNING

    recovery = await backend.recover(req)
    assert recovery.recovered and any("back as pid" in e for e in recovery.evidence)
    answer = await asyncio.wait_for(waiting.result(), 30)  # the new process did the held work
    assert answer["pid"] == str(replica(sut, target.name)["pid"]) != target.uid


async def test_container_kill_oom_kills_the_plain_worker_in_its_memory_cgroup(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "container-kill"}, DURATION_S)
    [planned] = (await backend.preview(req)).targets
    old = replica(sut, planned.name)
    assert old["cgroup"]["memory"], "the Deployment must run replicas in a memory cgroup"
    [target] = (await backend.inject(req)).targets

    effect = await confirmed(backend, req)
    assert "OOMKilled" in effect.evidence[0]
    now = replica(sut, target.name)
    assert now["last_exit_code"] == 137 and now["last_exit_reason"] == "OOMKilled"
    assert now["cgroup"]["oom_kills"] > old["cgroup"]["oom_kills"]

    def restarted() -> None:
        assert replica(sut, target.name)["pid"] not in (None, old["pid"])

    await assert_eventually(restarted, timeout_s=20)
    assert (await backend.recover(req)).recovered


# --- network faults --------------------------------------------------------------------------


async def test_network_delay_slows_the_plain_workers_own_work_until_recovered(
    backend: LocalBackend, plain: PlainWorkers
) -> None:
    req = request({"action": "network-delay"}, DURATION_S)  # 200 ms to Temporal and Kafka
    [target] = (await backend.preview(req)).targets
    await backend.inject(req)
    effect = await confirmed(backend, req, traffic=plain.traffic(target.name))
    assert f"{target.name}/temporal" in touched(effect)  # the worker's own connection
    _, during = await plain.echo(target.name)
    assert during >= DELAY_S, during  # its completion waited at the proxy
    bystander = min([(await plain.echo(other(target.name)))[1] for _ in range(3)])

    recovery = await backend.recover(req)
    assert recovery.recovered and "no longer applies" in recovery.evidence[0]
    after = min([(await plain.echo(target.name))[1] for _ in range(3)])
    assert after < during and bystander < during, (after, bystander, during)


async def test_network_loss_drops_chunks_of_the_plain_workers_traffic(
    sut: LocalSut, backend: LocalBackend, plain: PlainWorkers
) -> None:
    req = request({"action": "network-loss", "loss_pct": 25}, DURATION_S)
    [target] = (await backend.inject(req)).targets
    effect = await confirmed(backend, req, traffic=plain.traffic(target.name))
    assert f"{target.name}/temporal" in touched(effect)
    status = read_status(sut.control_dir)
    assert status is not None and status.routes[f"{target.name}/temporal"].chunks_lost >= 1
    assert status.routes[f"{other(target.name)}/temporal"].active_rules == []

    recovery = await backend.recover(req)
    assert recovery.recovered and "no longer applies" in recovery.evidence[0]


async def test_network_partition_cuts_the_plain_worker_off_until_healed(
    backend: LocalBackend, plain: PlainWorkers
) -> None:
    req = request({"action": "network-partition"}, DURATION_S)
    [target] = (await backend.inject(req)).targets
    effect = await confirmed(backend, req, traffic=plain.traffic(target.name))
    assert "chunks held back" in touched(effect)
    cut_off = await plain.start(target.name, "cut off")
    await asyncio.sleep(2)
    assert (await cut_off.describe()).status == WorkflowExecutionStatus.RUNNING
    await plain.echo(other(target.name), timeout_s=10)  # the bystander still works

    recovery = await backend.recover(req)
    assert recovery.recovered
    answer = await asyncio.wait_for(cut_off.result(), 30)  # done over the healed connection
    assert answer == {"replica": target.name, "pid": target.uid, "echo": "cut off"}


async def test_network_bandwidth_caps_the_plain_workers_upload(
    backend: LocalBackend, plain: PlainWorkers
) -> None:
    size, rate_bytes_s = 200_000, 1000 * 1000 / 8  # the seed's 1mbps
    text = base64.b64encode(os.urandom(size * 3 // 4)).decode()  # incompressible
    req = request({"action": "network-bandwidth"}, DURATION_S)
    [target] = (await backend.inject(req)).targets
    effect = await confirmed(backend, req, traffic=plain.traffic(target.name))
    assert f"{target.name}/temporal" in touched(effect)
    answer, seconds = await plain.echo(target.name, text)  # the result goes up the route
    assert answer["echo"] == text
    assert seconds >= 0.7 * size / rate_bytes_s, seconds  # ~1.6 s at the rate

    recovery = await backend.recover(req)
    assert recovery.recovered
    _, after = await plain.echo(target.name, text)
    assert after < 0.5 * seconds, (after, seconds)


async def test_dns_error_fails_new_connections_and_spares_the_plain_workers_open_one(
    sut: LocalSut, backend: LocalBackend, plain: PlainWorkers
) -> None:
    req = request({"action": "dns-error"}, DURATION_S)
    [target] = (await backend.inject(req)).targets
    effect = await confirmed(backend, req)  # the backend's own lookup through each route
    assert "connections refused" in touched(effect)
    with pytest.raises((RuntimeError, TimeoutError)):
        async with asyncio.timeout(10):
            await temporal_client(sut, target.name)  # a new connection does not resolve
    answer, _ = await plain.echo(target.name)  # the worker's open connection still works
    assert answer["pid"] == target.uid

    assert (await backend.recover(req)).recovered
    await temporal_client(sut, target.name)


# --- stress ----------------------------------------------------------------------------------


@needs_stress_ng
async def test_cpu_stress_loads_the_plain_workers_cgroup_until_recovered(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "cpu-stress"}, STRESS_S)  # the seed's 80% load, one worker
    [target] = (await backend.preview(req)).targets
    before = await asyncio.to_thread(cgroup_cores, sut, target.name)
    assert before < 0.3

    await backend.inject(req)
    effect = await confirmed(backend, req)
    assert "CPU use" in effect.evidence[0]
    await cpu_rises(sut, target.name, before)

    assert (await backend.recover(req)).recovered
    assert not any(procs.group_members(pid) for pid in stress_pids(backend, req))
    assert await asyncio.to_thread(cgroup_cores, sut, target.name) < 0.3


@needs_stress_ng
async def test_memory_stress_fills_the_plain_workers_cgroup_until_recovered(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "memory-stress"}, STRESS_S)  # the seed's 256MB
    [target] = (await backend.preview(req)).targets
    baseline = cgroup_memory(sut, target.name)

    await backend.inject(req)
    await confirmed(backend, req)
    assert cgroup_memory(sut, target.name) - baseline >= 200 * 2**20
    assert replica(sut, target.name)["pid"] == int(target.uid)  # under its limit: not killed

    assert (await backend.recover(req)).recovered
    assert not any(procs.group_members(pid) for pid in stress_pids(backend, req))
    assert cgroup_memory(sut, target.name) - baseline < 64 * 2**20


@needs_stress_ng
async def test_combined_stress_loads_the_plain_workers_cpu_and_memory_together(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "combined-stress"}, STRESS_S)
    [target] = (await backend.preview(req)).targets
    baseline = cgroup_memory(sut, target.name)
    before = await asyncio.to_thread(cgroup_cores, sut, target.name)

    await backend.inject(req)
    effect = await confirmed(backend, req)
    assert "CPU use" in effect.evidence[0] and "cgroup memory" in effect.evidence[0]
    await cpu_rises(sut, target.name, before)
    assert cgroup_memory(sut, target.name) - baseline >= 200 * 2**20

    assert (await backend.recover(req)).recovered
    assert not any(procs.group_members(pid) for pid in stress_pids(backend, req))
    assert cgroup_memory(sut, target.name) - baseline < 64 * 2**20
