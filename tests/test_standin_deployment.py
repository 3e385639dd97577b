"""The local Deployment (standin/deployment/) and the replica process, for real.

``python -m standin up`` processes against the real dev server (namespace ``bytebot``) and
broker: the stand-in's replicas (HTTP readiness, pollers by pid, kill, hold, OOM, SIGTERM grace,
the consumer, the load), a worker that is not the stand-in (placeholders, environment, probe,
SIGKILL after the pod's grace, back-off), and the defects that live outside a goal run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.kafka import KafkaBroker
from devstack.temporal import TemporalDevServer
from standin.consumer import ConsumerSettings, EventConsumer
from standin.contract import NAMESPACE, GoalRunResult
from standin.deployment.probes import HttpProbe
from standin.deployment.state import write_hold
from tests.conftest import assert_eventually
from tests.support.standin_events import fresh_lane, goal_input, start_goal
from tests.support.standin_process import (
    Forwarder,
    Standin,
    cgroup_pids,
    plain_worker_args,
    start_memory_hog,
    start_standin,
    stop_standin,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def standin_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real broker for these tests; CHAOS is advertised as itself (no proxy in front)."""
    with KafkaBroker(tmp_path_factory.mktemp("deployment-kafka")) as broker:
        yield broker


@pytest.fixture(scope="module")
async def bytebot(temporal_server: TemporalDevServer) -> Client:
    return await Client.connect(
        temporal_server.address, namespace=NAMESPACE, data_converter=pydantic_data_converter
    )


async def poller_identities(client: Client, task_queue: str) -> set[str]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=NAMESPACE,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return {p.identity for p in described.pollers}


# --- the stand-in's replicas -----------------------------------------------------------------


@pytest.fixture(scope="module")
async def standin(
    temporal_server: TemporalDevServer,
    standin_kafka: KafkaBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Standin]:
    """Two stand-in replicas, the consumer and a light load; all replicas ready."""
    lane = await fresh_lane(standin_kafka)
    up = start_standin(
        tmp_path_factory.mktemp("standin") / "state",
        temporal_server,
        standin_kafka,
        lane,
        "--rate",
        "2",
        "--steps",
        "2",
        "--step-ms",
        "2000",
    )
    try:
        await assert_eventually(up.all_ready, timeout_s=30)
        yield up
    finally:
        stop_standin(up)


async def test_replicas_have_their_own_ports_cgroups_and_sdk_identities(
    standin: Standin, standin_kafka: KafkaBroker, bytebot: Client
) -> None:
    state = standin.all_ready()
    assert [r.name for r in state.replicas] == ["replica-0", "replica-1"]
    assert state.namespace == "bytebot" and state.readiness_probe.startswith("http GET")
    assert len({p for r in state.replicas for p in (r.http_port, r.metrics_port)}) == 4
    for r in state.replicas:
        assert r.kafka_bootstrap == standin_kafka.bootstrap_chaos and r.restarts == 0
        assert "standin.replica" in cmdline(r.pid)  # started directly, no shell
        assert await HttpProbe(f"http://127.0.0.1:{r.http_port}/health/ready").check(1)
        if state.cgroups:
            assert r.cgroup is not None and r.cgroup.memory is not None
            assert r.pid in cgroup_pids(Path(r.cgroup.memory))
            assert r.cgroup.memory_limit_bytes == 256 * 1024 * 1024
    hints = {r.identity_hint for r in state.replicas}
    await assert_eventually(
        lambda: _has(poller_identities(bytebot, standin.lane.task_queue), hints), timeout_s=10
    )


async def _has(found: Any, wanted: set[str | None]) -> None:
    identities = await found
    assert wanted <= identities, (wanted, identities)


async def test_killed_replica_is_restarted_and_its_goal_run_completes(
    standin: Standin, bytebot: Client
) -> None:
    goal = goal_input("kill me [steps=3] [step-ms=8000]")
    handle = await start_goal(bytebot, standin.lane, goal)

    async def running_step() -> str:
        pending = (await handle.describe()).raw_description.pending_activities
        running = [p for p in pending if p.activity_type.name == "executeStep"]
        assert running and running[0].last_worker_identity, "no step running yet"
        return running[0].last_worker_identity

    pid = int((await assert_eventually(running_step, timeout_s=20)).split("@")[0])
    before = next(r for r in standin.state().replicas if r.pid == pid)
    os.kill(pid, signal.SIGKILL)

    def restarted() -> None:
        r = next(r for r in standin.state().replicas if r.name == before.name)
        assert r.ready and r.pid != before.pid and r.restarts == before.restarts + 1
        assert (r.last_exit_code, r.last_exit_reason) == (137, "Killed")

    await assert_eventually(restarted, timeout_s=15, interval_s=0.05)
    result: GoalRunResult = await handle.result()
    assert (result.status, result.steps_completed) == ("COMPLETED", 3)


async def test_hold_gets_sigterm_and_the_worker_exits_after_its_grace(standin: Standin) -> None:
    before = next(r for r in standin.all_ready().replicas if r.name == "replica-1")
    until = time.time() + 3
    held_at = time.time()
    write_hold(standin.dir.root, "replica-1", until)

    def held() -> None:
        r = standin.state().replicas[1]
        assert (r.phase, r.pid, r.ready, r.held_until) == ("Held", None, False, until)

    await assert_eventually(held, timeout_s=5, interval_s=0.05)
    r = standin.state().replicas[1]
    # the stand-in sleeps its 5 s x 0.1 after SIGTERM, then exits cleanly (pod grace: 6 s)
    assert (r.last_exit_code, r.last_exit_reason) == (0, "Completed")
    assert r.last_exit_at is not None and r.last_exit_at - held_at >= 0.5
    with pytest.raises(ProcessLookupError):
        os.kill(before.pid or 0, 0)

    def back() -> None:
        r = standin.state().replicas[1]
        assert r.ready and r.restarts == before.restarts + 1 and r.held_until is None

    await assert_eventually(back, timeout_s=10, interval_s=0.05)
    assert time.time() >= until


async def test_consumer_group_commits_offsets_and_its_lag_drains(
    standin: Standin, standin_kafka: KafkaBroker, bytebot: Client
) -> None:
    await (
        await start_goal(bytebot, standin.lane, goal_input("lag [steps=2] [step-ms=10]"))
    ).result()
    topics = (standin.lane.topics.goal, standin.lane.topics.step)
    admin = AIOKafkaAdminClient(bootstrap_servers=standin_kafka.bootstrap_direct)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=standin_kafka.bootstrap_direct)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(standin_kafka.num_partitions)]
        ends = await consumer.end_offsets(parts)
        assert sum(ends.values()) >= 6

        async def caught_up() -> None:
            offsets = await admin.list_consumer_group_offsets("bytebot-consumers")
            committed = {tp: o.offset for tp, o in offsets.items() if tp.topic in topics}
            behind = {tp: end for tp, end in ends.items() if committed.get(tp, -1) < end}
            assert not behind, (committed, ends)

        await assert_eventually(caught_up, timeout_s=20)
    finally:
        await consumer.stop()
        await admin.close()


async def test_replica_killed_by_the_oom_killer_is_reported_oomkilled(standin: Standin) -> None:
    state = standin.all_ready()
    if not state.cgroups:
        pytest.skip("no memory cgroup on this machine")
    target = state.replicas[0]
    assert target.cgroup is not None and target.cgroup.memory is not None
    hog = start_memory_hog(Path(target.cgroup.memory), target.pid or 0, mib=200)
    try:

        def oom_killed() -> None:
            r = standin.state().replicas[0]
            assert (r.last_exit_code, r.last_exit_reason) == (137, "OOMKilled")
            assert r.cgroup is not None and r.cgroup.oom_kills >= 1

        await assert_eventually(oom_killed, timeout_s=15, interval_s=0.05)
    finally:
        hog.kill()
        hog.wait()
    await assert_eventually(standin.all_ready, timeout_s=15)


async def test_load_survives_every_fault_without_a_failed_or_wrong_goal_run(
    standin: Standin,
) -> None:
    """Runs after the kill, hold-down and OOM tests: the load ran through all of them."""

    def stats() -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((standin.dir.root / "load.json").read_text())
        assert int(loaded["completed"]) >= 10, loaded
        return loaded

    loaded = await assert_eventually(stats, timeout_s=30)
    assert (loaded["failed"], loaded["wrongResults"], loaded["followErrors"]) == (0, 0, 0), loaded


# --- any worker command ------------------------------------------------------------------------


async def test_a_plain_worker_gets_placeholders_env_and_is_ready_only_once_its_http_is_up(
    temporal_server: TemporalDevServer,
    standin_kafka: KafkaBroker,
    bytebot: Client,
    tmp_path: Path,
) -> None:
    lane = await fresh_lane(standin_kafka)
    up = start_standin(
        tmp_path / "state",
        temporal_server,
        standin_kafka,
        lane,
        *plain_worker_args(tmp_path),
        replicas=1,
    )
    try:

        def running_unready() -> Any:
            r = up.state().replicas[0]
            assert r.pid is not None and r.phase == "Starting" and not r.ready
            return r

        r = await assert_eventually(running_unready, timeout_s=15)
        assert "standin_plain_worker.py" in cmdline(r.pid)
        await asyncio.sleep(1.5)  # the worker polls, but its HTTP server is not up
        assert not up.state().replicas[0].ready
        (tmp_path / "replica-0.serve").touch()
        await assert_eventually(lambda: up.state().replicas[0].ready, timeout_s=5)

        given = await bytebot.execute_workflow(
            "plainEcho",
            id=f"echo-{lane.task_queue}",
            task_queue=lane.task_queue,
            result_type=dict,
        )
        assert given == {
            "name": "replica-0",
            "pid": str(r.pid),
            "hostname": r.identity_hint.split("@")[1],
            "TEMPORAL_ADDRESS": temporal_server.address,
            "TEMPORAL_NAMESPACE": "bytebot",
            "TEMPORAL_TASK_QUEUE": lane.task_queue,
            "KAFKA_BROKERS": standin_kafka.bootstrap_chaos,
            "HTTP_PORT": str(r.http_port),
            "METRICS_PORT": str(r.metrics_port),
        }
        assert r.identity_hint in await poller_identities(bytebot, lane.task_queue)

        (tmp_path / "replica-0.serve").unlink()  # 3 failed probes later: unready, not restarted
        await assert_eventually(lambda: not up.state().replicas[0].ready, timeout_s=5)
        assert up.state().replicas[0].pid == r.pid
    finally:
        stop_standin(up)


async def test_a_worker_that_ignores_sigterm_is_killed_after_the_pod_grace(
    temporal_server: TemporalDevServer, standin_kafka: KafkaBroker, tmp_path: Path
) -> None:
    lane = await fresh_lane(standin_kafka)
    (tmp_path / "replica-0.serve").touch()  # its HTTP, hence readiness, comes after SIG_IGN
    up = start_standin(
        tmp_path / "state",
        temporal_server,
        standin_kafka,
        lane,
        *plain_worker_args(tmp_path, "--ignore-sigterm"),
        "--termination-grace-s",
        "1.5",
        replicas=1,
    )
    try:
        pid = (await assert_eventually(up.all_ready, timeout_s=15)).replicas[0].pid
        held_at = time.time()
        write_hold(up.dir.root, "replica-0", time.time() + 30)
        await asyncio.sleep(1.0)
        assert up.state().replicas[0].pid == pid  # SIGTERM ignored, grace not over

        def killed() -> Any:
            r = up.state().replicas[0]
            assert (r.phase, r.last_exit_code, r.last_exit_reason) == ("Held", 137, "Killed")
            return r

        r = await assert_eventually(killed, timeout_s=5, interval_s=0.05)
        assert r.last_exit_at is not None and r.last_exit_at - held_at >= 1.5
    finally:
        stop_standin(up)


async def test_a_crashing_worker_is_restarted_with_an_exponential_backoff(
    temporal_server: TemporalDevServer, standin_kafka: KafkaBroker, tmp_path: Path
) -> None:
    lane = await fresh_lane(standin_kafka)
    crash = "{python} -c 'import sys; sys.exit(3)'"
    up = start_standin(
        tmp_path / "state",
        temporal_server,
        standin_kafka,
        lane,
        "--worker-command",
        crash,
        "--no-load",
        "--no-consumer",
        "--backoff-initial-s",
        "0.2",
        replicas=1,
    )
    try:
        delays: dict[int, float] = {}

        def crashing() -> None:
            r = up.state().replicas[0]
            if r.next_start_at and r.last_exit_at:
                delays[r.consecutive_crashes] = round(r.next_start_at - r.last_exit_at, 1)
            assert r.last_exit_reason == "Error" and r.last_exit_code == 3
            assert {1, 2, 3, 4} <= set(delays), delays

        await assert_eventually(crashing, timeout_s=15, interval_s=0.02)
        assert [delays[n] for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]
    finally:
        stop_standin(up)


# --- defects outside a goal run ------------------------------------------------------------------


async def test_no_restart_mode_leaves_a_killed_replica_dead(
    temporal_server: TemporalDevServer, standin_kafka: KafkaBroker, tmp_path: Path
) -> None:
    lane = await fresh_lane(standin_kafka)
    up = start_standin(
        tmp_path / "state",
        temporal_server,
        standin_kafka,
        lane,
        "--faulty",
        "no-restart",
        "--no-consumer",
        "--no-load",
        replicas=1,
    )
    try:
        pid = (await assert_eventually(up.all_ready, timeout_s=20)).replicas[0].pid
        os.kill(pid or 0, signal.SIGKILL)
        await assert_eventually(lambda: up.state().replicas[0].phase == "Dead", timeout_s=5)
        await asyncio.sleep(1.5)  # three restart back-offs
        r = up.state().replicas[0]
        assert (r.phase, r.pid, r.restarts, r.last_exit_reason) == ("Dead", None, 0, "Killed")
        assert json.loads(up.dir.state_file.read_text())["faulty"] == ["no-restart"]
    finally:
        stop_standin(up)


@pytest.mark.parametrize("faulty", [False, True], ids=["healthy", "stop-polling"])
async def test_a_replica_that_lost_temporal_polls_again_unless_it_stops_polling(
    temporal_server: TemporalDevServer,
    standin_kafka: KafkaBroker,
    bytebot: Client,
    tmp_path: Path,
    faulty: bool,
) -> None:
    lane = await fresh_lane(standin_kafka)
    relay = await Forwarder(temporal_server.address).start()
    modes = ["--faulty", "stop-polling"] if faulty else []
    up = start_standin(
        tmp_path / "state",
        relay.address,
        standin_kafka,
        lane,
        *modes,
        "--no-consumer",
        "--no-load",
        replicas=1,
    )
    try:
        before = (await assert_eventually(up.all_ready, timeout_s=20)).replicas[0]
        relay.cut()
        await asyncio.sleep(2.0)
        relay.open = True
        handle = await start_goal(bytebot, lane, goal_input("after [steps=1] [step-ms=10]"))

        async def picked_up() -> None:
            history = await handle.fetch_history()
            assert any(e.HasField("workflow_task_started_event_attributes") for e in history.events)

        if not faulty:
            await assert_eventually(picked_up, timeout_s=30)
            return
        await asyncio.sleep(8)
        with pytest.raises(AssertionError):
            await picked_up()  # nobody polls
        r = up.state().replicas[0]
        assert (r.pid, r.ready, r.restarts) == (before.pid, True, 0)  # a ready zombie
        assert await HttpProbe(f"http://127.0.0.1:{r.http_port}/health/ready").check(1)
    finally:
        stop_standin(up)
        relay.close()


async def test_stop_committing_mode_stays_joined_but_stops_committing(
    standin_kafka: KafkaBroker,
) -> None:
    lane = await fresh_lane(standin_kafka)
    topic = lane.topics.goal
    group = f"group-{lane.task_queue}"
    consumer = EventConsumer(
        ConsumerSettings(
            bootstrap=standin_kafka.bootstrap_direct,
            group=group,
            topics=(topic,),
            delay_ms=0,
            stop_committing_after_s=3,
        )
    )
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    producer = AIOKafkaProducer(bootstrap_servers=standin_kafka.bootstrap_direct)
    await producer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=standin_kafka.bootstrap_direct)
    await admin.start()

    async def committed() -> int:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)

    try:
        for i in range(5):
            await producer.send_and_wait(topic, b"{}", key=f"k{i}".encode())
        await assert_eventually(lambda: _equals(committed(), 5), timeout_s=10)
        await asyncio.sleep(3.5)
        for i in range(5):
            await producer.send_and_wait(topic, b"{}", key=f"k{i}".encode())
        await assert_eventually(lambda: consumer.processed >= 10, timeout_s=10)
        await asyncio.sleep(1.0)
        assert await committed() == 5 and not consumer.committing
        described = (await admin.describe_consumer_groups([group]))[0].groups[0]
        _, _, group_state, _, _, members = described
        assert group_state == "Stable" and members, "it left the group"
    finally:
        stop.set()
        await running
        await producer.stop()
        await admin.close()


def cmdline(pid: int | None) -> str:
    """A process's command line (a tiny /proc read)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


async def _equals(value: Any, wanted: int) -> None:
    assert await value == wanted
