"""The stand-in ByteBot (standin/) against a real Temporal dev server and a real Kafka broker.

In-process workers check goalRunWorkflow, its events and its deliberate defects; one
``python -m standin up`` process checks the supervisor: restart after SIGKILL, hold-down,
OOMKilled, the consumer's commits, and that it leaves nothing behind. Topics, event reading
and the `FlakySink` stand-in are in tests/support/standin_events.py; starting and stopping the
supervisor, and the memory hog, in tests/support/standin_process.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from devstack.kafka import KafkaBroker
from devstack.temporal import TemporalDevServer
from standin.activities import EventSink, GoalActivities
from standin.events import event_id
from standin.goal_run import GoalRunWorkflow
from standin.kafka_sink import KafkaEventSink
from standin.models import (
    GOAL_RUN_WORKFLOW,
    FaultyMode,
    GoalEventType,
    GoalRunInput,
    GoalRunResult,
    expected_output,
)
from standin.state import write_hold
from tests.conftest import assert_eventually
from tests.support.standin_events import (
    FlakySink,
    Topics,
    by_key,
    fresh_topics,
    read_events,
    run_goal,
)
from tests.support.standin_process import (
    Standin,
    cgroup_pids,
    start_memory_hog,
    start_standin,
    stop_standin,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="session")
def standin_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real broker for these tests; CHAOS is advertised as itself (no proxy in front)."""
    with KafkaBroker(tmp_path_factory.mktemp("standin-kafka")) as broker:
        yield broker


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def worker_for(client: Client, standin_kafka: KafkaBroker) -> AsyncIterator[StartWorker]:
    """Start in-process workers on a test's own task queue and topics (stopped afterwards)."""
    started: list[tuple[Worker, KafkaEventSink]] = []

    async def start(topics: Topics, *faulty: FaultyMode, sink: EventSink | None = None) -> Worker:
        kafka = KafkaEventSink(
            standin_kafka.bootstrap_direct,
            goal_topic=topics.goal,
            step_topic=topics.step,
            send_timeout_s=5,
        )
        activities = GoalActivities(sink or kafka, replica="test-worker", faulty=faulty)
        worker = Worker(
            client,
            task_queue=topics.task_queue,
            workflows=[GoalRunWorkflow],
            activities=[activities.emit_goal_event, activities.run_step],
        )
        asyncio.create_task(worker.run())  # shut down below
        started.append((worker, kafka))
        return worker

    yield start
    for worker, kafka in started:
        await worker.shutdown()
        await kafka.stop()


# --- goalRunWorkflow and its events ---------------------------------------------------------


async def test_goal_run_completes_with_expected_result_and_events_in_order(
    client: Client, standin_kafka: KafkaBroker, worker_for: StartWorker
) -> None:
    topics = fresh_topics()
    await worker_for(topics)
    goal_run = GoalRunInput(goal_run_id=f"goal-{uuid4().hex[:8]}", steps=3, step_seconds=0.1)

    result = await run_goal(client, topics, goal_run)

    assert result.status == "COMPLETED" and result.steps_completed == 3
    assert result.output == expected_output("demo", 3)
    records = await read_events(standin_kafka.bootstrap_direct, topics.goal, topics.step)
    gid = goal_run.goal_run_id
    assert by_key(records) == {
        gid: [GoalEventType.GOAL_STARTED, GoalEventType.GOAL_COMPLETED],
        **{
            f"{gid}-{n}": [GoalEventType.STEP_STARTED, GoalEventType.STEP_COMPLETED]
            for n in (1, 2, 3)
        },
    }
    for r in records:
        assert r.event.goal_run_id == gid
        assert r.event.event_id == event_id(gid, r.event.event_type, r.event.step_number)
        assert (r.topic == topics.goal) == (r.event.step_number is None)
    in_time = sorted(records, key=lambda r: r.event.timestamp)  # epoch ms, taken when emitted
    assert in_time[0].event.event_type == GoalEventType.GOAL_STARTED
    assert in_time[-1].event.event_type == GoalEventType.GOAL_COMPLETED
    assert abs(in_time[0].event.timestamp / 1000 - time.time()) < 60


async def test_faulty_worker_loses_events_reorders_steps_and_returns_a_wrong_canary_result(
    client: Client, standin_kafka: KafkaBroker, worker_for: StartWorker
) -> None:
    topics = fresh_topics()
    await worker_for(
        topics, FaultyMode.LOSE_EVENTS, FaultyMode.REORDER_EVENTS, FaultyMode.WRONG_RESULT
    )
    runs = [
        GoalRunInput(
            goal_run_id=f"goal-faulty-{i}",
            goal="canary" if i == 0 else "demo",
            steps=4,
            step_seconds=0,
        )
        for i in range(8)
    ]

    results = await asyncio.gather(*(run_goal(client, topics, r) for r in runs))

    assert results[0].output != expected_output("canary", 4)  # wrong-result
    assert all(r.output == expected_output("demo", 4) for r in results[1:])
    goals = by_key(await read_events(standin_kafka.bootstrap_direct, topics.goal))
    lost = [r.goal_run_id for r in runs if GoalEventType.GOAL_COMPLETED not in goals[r.goal_run_id]]
    assert 0 < len(lost) < len(runs)  # lose-events: some completed runs have no GOAL_COMPLETED
    steps = list(by_key(await read_events(standin_kafka.bootstrap_direct, topics.step)).values())
    backwards = [GoalEventType.STEP_COMPLETED, GoalEventType.STEP_STARTED]
    reordered = [v for v in steps if v == backwards]
    assert 0 < len(reordered) < len(steps)  # reorder-events


@pytest.mark.parametrize("faulty", [False, True], ids=["graceful", "fail-under-stress"])
async def test_a_retried_step_is_survived_unless_the_worker_fails_under_stress(
    client: Client, standin_kafka: KafkaBroker, worker_for: StartWorker, faulty: bool
) -> None:
    topics = fresh_topics()
    sink = FlakySink(
        KafkaEventSink(
            standin_kafka.bootstrap_direct, goal_topic=topics.goal, step_topic=topics.step
        )
    )
    modes = [FaultyMode.FAIL_UNDER_STRESS] if faulty else []
    await worker_for(topics, *modes, sink=sink)
    goal_run = GoalRunInput(goal_run_id=f"goal-{uuid4().hex[:8]}", steps=3, step_seconds=0)

    if not faulty:
        result = await run_goal(client, topics, goal_run)
        assert result.output == expected_output("demo", 3)
        terminal = GoalEventType.GOAL_COMPLETED
    else:
        with pytest.raises(WorkflowFailureError) as failure:
            await run_goal(client, topics, goal_run)
        assert isinstance(failure.value.cause, ApplicationError)
        assert failure.value.cause.type == "GoalFailed"
        terminal = GoalEventType.GOAL_FAILED
    await sink.inner.stop()
    keyed = by_key(await read_events(standin_kafka.bootstrap_direct, topics.goal))
    assert keyed[goal_run.goal_run_id] == [GoalEventType.GOAL_STARTED, terminal]


# --- the supervisor -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def standin(
    temporal_server: TemporalDevServer,
    standin_kafka: KafkaBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Standin]:
    """Two replicas, the consumer and a light load (2 goal runs/s); all replicas ready."""
    up = start_standin(
        tmp_path_factory.mktemp("standin") / "state",
        temporal_server,
        standin_kafka,
        *("--rate", "2", "--steps", "2", "--step-seconds", "0.2", "--canary-every", "3"),
    )
    try:
        await assert_eventually(up.all_ready, timeout_s=20)
        yield up
    finally:
        stop_standin(up)


async def test_replicas_run_with_their_own_addresses_cgroups_and_limits(
    standin: Standin, standin_kafka: KafkaBroker
) -> None:
    state = standin.all_ready()
    assert [r.name for r in state.replicas] == ["replica-0", "replica-1"]
    for r in state.replicas:
        assert r.kafka_bootstrap == standin_kafka.bootstrap_chaos and r.restarts == 0
        if state.cgroups:
            assert r.cgroup is not None and r.cgroup.memory is not None
            assert r.pid in cgroup_pids(Path(r.cgroup.memory))
            assert r.cgroup.memory_limit_bytes == 256 * 1024 * 1024


async def test_killed_replica_is_restarted_and_its_goal_run_completes(
    standin: Standin, client: Client
) -> None:
    goal_run = GoalRunInput(goal_run_id=f"goal-{uuid4().hex[:8]}", steps=3, step_seconds=1.0)
    handle = await client.start_workflow(
        GOAL_RUN_WORKFLOW,
        goal_run,
        id=goal_run.goal_run_id,
        task_queue=standin.topics.task_queue,
        result_type=GoalRunResult,
    )

    async def running_step() -> str:
        pending = (await handle.describe()).raw_description.pending_activities
        assert pending and pending[0].last_worker_identity, "no step running yet"
        return pending[0].last_worker_identity

    name, pid = (await assert_eventually(running_step, timeout_s=10)).split("/")
    before = next(r for r in standin.state().replicas if r.name == name)
    assert before.pid == int(pid)
    killed_at = time.monotonic()
    os.kill(int(pid), signal.SIGKILL)

    def restarted() -> float:
        r = next(r for r in standin.state().replicas if r.name == name)
        assert r.ready and r.pid != before.pid and r.restarts == before.restarts + 1
        assert (r.last_exit_code, r.last_exit_reason) == (137, "Killed")
        return time.monotonic() - killed_at

    restart_s = await assert_eventually(restarted, timeout_s=10, interval_s=0.05)
    assert restart_s < 8  # backoff 0.5 s + a replica start (~0.6 s idle; more under load)
    result = await handle.result()
    assert result.output == expected_output(goal_run.goal, goal_run.steps)


async def test_hold_file_keeps_a_replica_down_until_it_expires(standin: Standin) -> None:
    before = next(r for r in standin.all_ready().replicas if r.name == "replica-1")
    until = time.time() + 3
    write_hold(standin.dir.root, "replica-1", until)

    def held() -> None:
        r = standin.state().replicas[1]
        assert (r.phase, r.pid, r.ready, r.held_until) == ("Held", None, False, until)

    await assert_eventually(held, timeout_s=5, interval_s=0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(before.pid or 0, 0)
    await asyncio.sleep(max(0.0, until - time.time() - 0.5))
    held()  # still down just before the hold ends

    def back() -> None:
        r = standin.state().replicas[1]
        assert r.ready and r.restarts == before.restarts + 1 and r.held_until is None

    await assert_eventually(back, timeout_s=6, interval_s=0.05)
    assert time.time() >= until


async def test_consumer_group_commits_offsets_and_its_lag_drains(
    standin: Standin, client: Client, standin_kafka: KafkaBroker
) -> None:
    goal_run = GoalRunInput(goal_run_id=f"goal-{uuid4().hex[:8]}", steps=2, step_seconds=0)
    await run_goal(client, standin.topics, goal_run)
    topics = (standin.topics.goal, standin.topics.step)
    admin = AIOKafkaAdminClient(bootstrap_servers=standin_kafka.bootstrap_direct)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=standin_kafka.bootstrap_direct)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(standin_kafka.num_partitions)]
        ends = await consumer.end_offsets(parts)  # every event of goal_run is below these
        assert sum(ends.values()) >= 6

        async def caught_up() -> None:
            offsets = await admin.list_consumer_group_offsets("bytebot-consumers")
            committed = {tp: o.offset for tp, o in offsets.items() if tp.topic in topics}
            behind = {tp: end for tp, end in ends.items() if committed.get(tp, -1) < end}
            assert not behind, (committed, ends)

        await assert_eventually(caught_up, timeout_s=15)
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
            assert r.restarts >= target.restarts + 1
            assert r.cgroup is not None and r.cgroup.oom_kills >= 1

        await assert_eventually(oom_killed, timeout_s=15, interval_s=0.05)
    finally:
        hog.kill()
        hog.wait()
    await assert_eventually(standin.all_ready, timeout_s=10)


async def test_load_survives_every_fault_without_a_failed_or_wrong_goal_run(
    standin: Standin,
) -> None:
    """Runs after the kill, hold-down and OOM tests: the load ran through all of them."""

    def stats() -> dict[str, int | str]:
        loaded: dict[str, int | str] = json.loads((standin.dir.root / "load.json").read_text())
        assert int(loaded["completed"]) >= 10, loaded
        return loaded

    loaded = await assert_eventually(stats, timeout_s=10)
    assert (loaded["failed"], loaded["wrong_results"], loaded["start_errors"]) == (0, 0, 0)
    assert str(loaded["id_prefix"]).startswith("goal-")


async def test_no_restart_mode_leaves_a_killed_replica_dead(
    temporal_server: TemporalDevServer, standin_kafka: KafkaBroker, tmp_path: Path
) -> None:
    up = start_standin(
        tmp_path / "state",
        temporal_server,
        standin_kafka,
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
        await asyncio.sleep(1.5)  # three restart backoffs
        r = up.state().replicas[0]
        assert (r.phase, r.pid, r.restarts, r.last_exit_reason) == ("Dead", None, 0, "Killed")
        assert json.loads(up.dir.state_file.read_text())["faulty"] == ["no-restart"]
    finally:
        stop_standin(up)
