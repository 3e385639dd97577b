"""The Temporal frontend and the Kafka broker as local fault targets (namespaces temporal, kafka).

Real parts only: a Temporal dev server and a Kafka broker of this module's own (the suite's
shared dev server must not be killed), each under the local Deployment supervisor
(`devstack.targets`), faulted through the local backend as ByteBot's suite faults their pods:
pod-kill restarts them on the same address with their data, pod-failure keeps the frontend
down until the supervisor itself ends the hold, cpu-stress runs stress-ng in its (memory)
cgroup.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from temporalio.client import Client

from activities.faults.backend import FaultRejected
from activities.faults.local.backend import LocalBackend
from devstack.kafka import KafkaBroker
from devstack.ports import wait_for_port
from devstack.targets import KAFKA_TARGET, TARGETS_DIR, TEMPORAL_TARGET
from devstack.temporal import TemporalDevServer
from faultproxy import procs
from models.ledger import FaultRequest, ReplicaQuery
from models.targets import PodTarget
from tests.conftest import assert_eventually
from tests.support.local_requests import SPEC, confirmed, stress_pids

pytestmark = pytest.mark.timeout(150)
ALLOWED = ["bytebot", "temporal", "kafka"]
FRONTEND = {"namespace": "temporal", "labels": {"app.kubernetes.io/component": "frontend"}}
BROKER = {"namespace": "kafka", "labels": {"strimzi.io/kind": "Kafka"}}


@pytest.fixture(scope="module")
def local_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra-local")


@pytest.fixture(scope="module")
def frontend(local_root: Path) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(
        db_file=local_root / "temporal.db",
        supervise_dir=local_root / TARGETS_DIR / str(TEMPORAL_TARGET["name"]),
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def broker(local_root: Path) -> Iterator[KafkaBroker]:
    with KafkaBroker(
        local_root / "kafka", supervise_dir=local_root / TARGETS_DIR / str(KAFKA_TARGET["name"])
    ) as kafka:
        yield kafka


@pytest.fixture
def backend(local_root: Path, tmp_path: Path) -> LocalBackend:
    # No stand-in here: only the supervised infrastructure is there to be faulted.
    return LocalBackend(
        state_dir=tmp_path / "faults",
        sut_state_dir=local_root / "no-standin",
        proxy_control_dir=local_root / "no-proxy",
        targets_dir=local_root / TARGETS_DIR,
    )


def request(fault: dict[str, Any], seconds: float) -> FaultRequest:
    """A request for ``fault``, allowed in ByteBot's three namespaces."""
    return FaultRequest(
        fault_id=f"t-{fault['action']}-{uuid4().hex[:8]}",
        scenario_id="infra-test",
        step=0,
        fault=SPEC.validate_python({"duration": f"{seconds:g}s", **fault}),
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
        allowed_namespaces=ALLOWED,
    )


async def test_the_frontend_and_the_broker_are_pods_of_their_namespaces(
    frontend: TemporalDevServer, broker: KafkaBroker, backend: LocalBackend
) -> None:
    temporal = await backend.read_replicas(ReplicaQuery(target=PodTarget(**FRONTEND)))
    kafka = await backend.read_replicas(ReplicaQuery(target=PodTarget(**BROKER)))
    assert [(r.namespace, r.name, r.ready) for r in temporal.replicas] == [
        ("temporal", "temporal-frontend-0", True)
    ]
    assert [(r.namespace, r.name, r.ready) for r in kafka.replicas] == [
        ("kafka", "core-cluster-kafka-0", True)
    ]
    assert temporal.replicas[0].uid == str(frontend.supervised and frontend.supervised.pid)
    nothing = request(
        {"action": "pod-kill", "target": {"namespace": "kafka", "labels": {"app": "zookeeper"}}}, 5
    )
    with pytest.raises(FaultRejected, match="the local pods are .*kafka/strimzi.io/cluster"):
        await backend.inject(nothing)


async def test_pod_kill_restarts_the_frontend_on_its_address_with_its_history(
    frontend: TemporalDevServer, backend: LocalBackend
) -> None:
    client = await Client.connect(frontend.address, namespace="bytebot")
    handle = await client.start_workflow(
        "goalRunWorkflow", id=f"kept-{uuid4().hex[:6]}", task_queue="nobody-polls"
    )
    req = request({"action": "pod-kill", "target": FRONTEND}, 20)
    [target] = (await backend.inject(req)).targets
    effect = await confirmed(backend, req)
    assert "last exit 137 Killed" in " ".join(effect.evidence)

    async def back() -> None:  # the same client reconnects to the same address
        assert (await handle.describe()).id == handle.id  # the database survived the kill

    await assert_eventually(back, timeout_s=30)
    recovery = await backend.recover(req)
    assert recovery.recovered
    [now] = (await backend.read_replicas(ReplicaQuery(target=PodTarget(**FRONTEND)))).replicas
    assert now.uid != target.uid and now.restarts == (target.restarts or 0) + 1
    await handle.terminate()


async def test_pod_failure_holds_the_frontend_down_and_its_supervisor_ends_the_hold(
    frontend: TemporalDevServer, backend: LocalBackend
) -> None:
    req = request({"action": "pod-failure", "target": FRONTEND}, 8)
    started = time.monotonic()
    await backend.inject(req)
    effect = await confirmed(backend, req)
    assert "down (phase Held" in " ".join(effect.evidence)
    assert not wait_for_port("127.0.0.1", frontend.port, 0.5)  # refused while held
    # Nobody recovers it (as if the chaos worker died): the hold file's expiry alone ends it.
    assert wait_for_port("127.0.0.1", frontend.port, 30)
    assert time.monotonic() - started >= 7
    assert frontend.healthy(time.monotonic() + 30)
    assert (await backend.recover(req)).recovered


@pytest.mark.skipif(shutil.which("stress-ng") is None, reason="needs stress-ng")
async def test_cpu_stress_runs_beside_the_frontend_in_its_memory_cgroup_and_ends(
    frontend: TemporalDevServer, backend: LocalBackend
) -> None:
    req = request(
        {"action": "cpu-stress", "cpu": {"workers": 1, "load_pct": 50}, "target": FRONTEND}, 5
    )
    await backend.inject(req)
    effect = await confirmed(backend, req)
    assert any("temporal-frontend-0" in e for e in effect.evidence)
    [helper] = stress_pids(backend, req)
    assert (await backend.recover(req)).recovered
    await assert_eventually(lambda: not procs.group_members(helper), timeout_s=10)


async def test_pod_kill_restarts_the_broker_with_its_log_dir(
    broker: KafkaBroker, backend: LocalBackend
) -> None:
    topic = f"kept-{uuid4().hex[:6]}"
    await broker.create_topics([topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_direct)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before the kill")
    finally:
        await producer.stop()
    req = request({"action": "pod-kill", "target": BROKER}, 30)
    await backend.inject(req)
    await confirmed(backend, req)
    assert (await backend.recover(req)).recovered  # waits until the broker is back and ready

    async def kept() -> None:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=broker.bootstrap_direct, auto_offset_reset="earliest"
        )
        try:
            await consumer.start()
        except KafkaConnectionError as e:  # still restarting (slow on a loaded machine)
            await consumer.stop()
            raise AssertionError(f"the broker is not back yet: {e}") from e
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=10)
        finally:
            await consumer.stop()
        assert record.value == b"before the kill"

    await assert_eventually(kept, timeout_s=90)
