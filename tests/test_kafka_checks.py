"""The Kafka checks (activities.kafka.probe) against a real single-node broker.

Ordered streams pass; an out-of-order pair, a missing terminal event, a duplicate and lag
that does not drain are each found and named with their evidence; a broker restart in the
middle of a check, run through a real Temporal worker with the probes' retry policy, makes
the activity fail once, be retried and complete from its heartbeat details.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.kafka.probe import KafkaProbeActivities
from devstack.kafka import KafkaBroker
from models.faults import ExpectedBehavior
from models.judge import judge_fault
from models.kafka import KafkaCheckInput, KafkaCheckProgress, KafkaOrderReport
from models.ledger import FaultRecord
from models.report import Criterion, FaultObservations, Verdict
from models.scenario import KafkaTarget
from tests.conftest import assert_eventually
from tests.support.kafka_events import Events, check, commit, positions
from workflows import names, policies


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A private broker: the last test restarts it."""
    with KafkaBroker(tmp_path_factory.mktemp("kafka-checks")) as running:
        yield running


@pytest.fixture
async def target(broker: KafkaBroker) -> KafkaTarget:
    """Fresh goal and step topics (3 partitions each) and a fresh group name per test."""
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaTarget(
        bootstrap=broker.bootstrap_direct,
        goal_topic=f"goal-{tag}",
        step_topic=f"step-{tag}",
        consumer_group=f"group-{tag}",
        lag_tolerance=10,
    )
    await broker.create_topics([kafka.goal_topic, kafka.step_topic], partitions=3)
    return kafka


@pytest.fixture
async def events(target: KafkaTarget) -> AsyncIterator[Events]:
    producer = Events(target)
    await producer.producer.start()
    yield producer
    await producer.producer.stop()


@pytest.fixture
def probe(broker: KafkaBroker) -> KafkaProbeActivities:
    """The activities under test, with a fast lag poll and progress heartbeat."""
    return KafkaProbeActivities(
        broker.bootstrap_direct, lag_interval_s=0.3, progress_interval_s=0.5
    )


async def test_ordered_streams_pass_and_the_check_returns_as_soon_as_all_ended(
    probe: KafkaProbeActivities, target: KafkaTarget, events: Events
) -> None:
    await events.goal_run("before-the-fault", 2)  # written before the window: not read
    await events.emit("GOAL_STARTED", "in-flight")  # began before the window, ends in it
    await events.emit("STEP_STARTED", "in-flight", 4)
    start = await positions(probe, target)
    produced = sum([await events.goal_run(f"g{i}", 3) for i in range(4)])
    await events.emit("STEP_COMPLETED", "in-flight", 4)
    await events.emit("GOAL_COMPLETED", "in-flight")

    report = await check(probe, target, start, within_s=60)

    assert report.violations == [] and report.violations_total == 0
    assert report.duplicates == 0 and report.no_terminal == [] and report.unparseable == 0
    assert report.events_read == produced + 2
    assert report.goal_runs == 5 and report.complete
    assert report.lag is not None and report.lag.drained
    assert report.elapsed_s < 20, "returns once the window is read and the lag drained"
    assert sum(r.offset for r in report.read_to) == 6 + 2 + produced + 2


async def test_an_out_of_order_pair_is_named_with_topic_partition_and_offsets(
    probe: KafkaProbeActivities, target: KafkaTarget, events: Events
) -> None:
    start = await positions(probe, target)
    await events.emit("GOAL_STARTED", "g1")
    completed = await events.emit("STEP_COMPLETED", "g1", 1)
    started = await events.emit("STEP_STARTED", "g1", 1)
    await events.emit("GOAL_COMPLETED", "g1")

    report = await check(probe, target, start, within_s=30)

    (v,) = report.violations
    assert (v.key, v.goal_run_id, v.reason) == (
        "g1-1",
        "g1",
        "STEP_COMPLETED with no STEP_STARTED before it",
    )
    assert (v.topic, v.partition, v.offset) == (
        target.step_topic,
        completed.partition,
        completed.offset,
    )
    # The late STEP_STARTED then leaves the step open although its goal run completed.
    assert report.lost_step_events == ["g1-1 (last STEP_STARTED)"]
    assert started.offset > completed.offset


async def test_a_window_checked_in_a_second_process_gives_the_same_report(
    broker: KafkaBroker, target: KafkaTarget, events: Events
) -> None:
    start = await positions(KafkaProbeActivities(broker.bootstrap_direct), target)
    for n in range(3):
        await events.goal_run(f"ok{n}", 2)
    await events.emit("GOAL_STARTED", "bad")
    await events.emit("STEP_COMPLETED", "bad", 1)
    await events.emit("STEP_STARTED", "bad", 2)
    await events.emit("STEP_STARTED", "bad", 2)  # a re-sent emit
    await events.emit("GOAL_COMPLETED", "bad")
    here, there = (
        KafkaProbeActivities(broker.bootstrap_direct, lag_interval_s=0.3, process_min_events=m)
        for m in (None, 1)
    )
    varies = {"lag", "elapsed_s", "window_end_at", "attempt"}

    in_process = await check(here, target, start, within_s=30)
    in_child = await check(there, target, start, within_s=30)

    assert in_child.model_dump(exclude=varies) == in_process.model_dump(exclude=varies)
    assert in_child.violations_total == 1 and in_child.duplicates == 1
    assert in_child.lost_step_events_total == 1 and in_child.goal_runs == 4


async def test_a_missing_terminal_event_is_listed_for_temporal_to_reconcile(
    probe: KafkaProbeActivities, target: KafkaTarget, events: Events
) -> None:
    start = await positions(probe, target)
    await events.goal_run("done", 1)
    await events.emit("GOAL_STARTED", "waiting")  # e.g. waiting for an approval: not a loss yet
    await events.emit("STEP_APPROVAL_REQUESTED", "waiting", 1)
    beats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    report = await check(probe, target, start, within_s=30, env=env)

    assert report.no_terminal == ["waiting"] and report.no_terminal_total == 1
    assert report.violations == [] and report.lifecycle.approvals == 1
    assert report.elapsed_s < 20, "Kafka alone cannot tell a wait from a loss: no waiting here"
    progress = KafkaCheckProgress.model_validate(beats[-1][0])
    assert progress.checker is not None and "waiting" in progress.checker["goals"]


async def test_a_retried_check_resumes_from_its_heartbeat_details(
    probe: KafkaProbeActivities, target: KafkaTarget, events: Events
) -> None:
    start = await positions(probe, target)
    await events.emit("GOAL_STARTED", "g1")
    await events.emit("STEP_STARTED", "g1", 1)
    beats: list[Any] = []
    first = ActivityEnvironment()
    first.on_heartbeat = lambda *details: beats.append(details)
    await check(probe, target, start, within_s=1.5, env=first)
    await events.emit("STEP_COMPLETED", "g1", 1)
    await events.emit("GOAL_COMPLETED", "g1")

    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(
        retry.info, attempt=2, heartbeat_details=[beats[-1][0].model_dump(mode="json")]
    )
    report = await check(probe, target, start, within_s=30, env=retry)

    assert report.resumed and report.attempt == 2
    assert report.events_read == 4, "the two events read before were not read again"
    assert report.no_terminal == [] and report.violations == []


async def test_a_retry_rereads_the_window_when_the_state_was_too_big_to_heartbeat(
    broker: KafkaBroker, target: KafkaTarget, events: Events
) -> None:
    probe = KafkaProbeActivities(
        broker.bootstrap_direct, lag_interval_s=0.3, progress_interval_s=0.5, max_resumable_keys=0
    )
    start = await positions(probe, target)
    await events.emit("GOAL_STARTED", "g1")
    beats: list[Any] = []
    first = ActivityEnvironment()
    first.on_heartbeat = lambda *details: beats.append(details)
    await check(probe, target, start, within_s=1.5, env=first)
    progress = beats[-1][0]
    assert progress.checker is None and progress.read_to is None
    late = await events.emit("GOAL_STARTED", "after-the-window")  # not in the first window
    await events.emit("GOAL_COMPLETED", "g1")

    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(
        retry.info, attempt=2, heartbeat_details=[progress.model_dump(mode="json")]
    )
    report = await check(probe, target, start, within_s=30, env=retry)

    assert not report.resumed and report.events_read == 3, "read the window again"
    assert report.no_terminal == [] and report.goal_runs == 1, "the window kept its first end"
    window = {(w.topic, w.partition): w.offset for w in report.window_end}
    assert window[(target.goal_topic, late.partition)] <= late.offset


async def test_a_cancelled_check_stops_promptly(
    probe: KafkaProbeActivities, target: KafkaTarget, events: Events
) -> None:
    start = await positions(probe, target)
    await behind(probe, target, events)  # the lag stays above tolerance: the check goes on
    await events.emit("GOAL_STARTED", "never-ends")
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    running = asyncio.create_task(check(probe, target, start, within_s=60, env=env))
    await assert_eventually(lambda: beats, timeout_s=20)

    env.cancel()

    t0 = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, timeout=15)
    assert time.monotonic() - t0 < 5


async def test_a_duplicate_is_reported_and_fails_only_with_exactly_once(
    probe: KafkaProbeActivities, target: KafkaTarget, events: Events
) -> None:
    start = await positions(probe, target)
    await events.emit("GOAL_STARTED", "g1")
    first = await events.emit("STEP_STARTED", "g1", 1)
    again = await events.emit("STEP_STARTED", "g1", 1)  # a retried step re-emits its start
    await events.emit("STEP_COMPLETED", "g1", 1)
    await events.emit("GOAL_COMPLETED", "g1")

    report = await check(probe, target, start, within_s=30)

    assert report.duplicates == 1 and report.violations == []
    assert report.duplicate_examples == ["STEP_STARTED g1-1 (same content, new eventId)"]
    assert again.offset == first.offset + 1

    def ordering(exactly_once: bool) -> Any:
        obs = FaultObservations(
            record=FaultRecord(
                fault_id="f", step=0, label="pod-kill", action="pod-kill", target="app=worker"
            ),
            expected=ExpectedBehavior(summary="no data loss"),
            in_effect=True,
            kafka=report,
            exactly_once=exactly_once,
        )
        found = judge_fault(obs).criteria
        return next(c for c in found if c.criterion is Criterion.EVENT_ORDERING)

    assert ordering(exactly_once=False).verdict is Verdict.PASS
    strict = ordering(exactly_once=True)
    assert strict.verdict is Verdict.FAIL
    assert "1 duplicate event(s) under exactly-once" in strict.findings[0]


async def test_lag_that_does_not_drain_is_found_and_lag_that_drains_is_timed(
    probe: KafkaProbeActivities, target: KafkaTarget, events: Events
) -> None:
    await events.goal_run("old", 2)
    caught_up = await positions(probe, target)
    await commit(
        target, {TopicPartition(r.topic, r.partition): r.offset for r in caught_up.end_offsets}
    )
    start = await positions(probe, target)
    assert start.total_lag == 0 and len(start.lag) == 6
    produced = sum([await events.goal_run(f"g{i}", 4) for i in range(3)])  # nobody consumes

    stuck = await check(probe, target, start, within_s=3)

    assert stuck.no_terminal == [] and stuck.violations == []
    lag = stuck.lag
    assert lag is not None and not lag.drained and lag.drained_after_s is None
    assert (lag.baseline_lag, lag.final_lag, lag.peak_lag, lag.tolerance) == (
        0,
        produced,
        produced,
        10,
    )
    assert sum(p.lag for p in lag.partitions) == produced
    assert all(p.end - p.committed == p.lag > 0 for p in lag.partitions)
    assert lag.samples and lag.samples[-1].total_lag == produced

    now = await positions(probe, target)
    assert now.total_lag == produced

    async def consumer_catches_up() -> None:
        await asyncio.sleep(1.5)
        await commit(
            target, {TopicPartition(r.topic, r.partition): r.offset for r in now.end_offsets}
        )

    catching_up = asyncio.create_task(consumer_catches_up())
    drained = await check(probe, target, start, within_s=30)
    await catching_up

    lag = drained.lag
    assert lag is not None and lag.drained and lag.final_lag == 0
    assert lag.drained_after_s is not None and 1.0 <= lag.drained_after_s < 10
    assert drained.elapsed_s < 15, "returned once the lag drained, not at the deadline"


async def behind(probe: KafkaProbeActivities, target: KafkaTarget, events: Events) -> int:
    """Leave the group committed at the current end, then write more than its tolerance."""
    now = await positions(probe, target)
    await commit(target, {TopicPartition(r.topic, r.partition): r.offset for r in now.end_offsets})
    return sum([await events.goal_run(f"backlog-{i}", 2) for i in range(3)])


@workflow.defn(name="KafkaCheckTestWorkflow")
class KafkaCheckWorkflow:
    """Test-side caller: runs CHECK_KAFKA_EVENTS as the fault workflow does, same policies."""

    @workflow.run
    async def run(self, request: KafkaCheckInput) -> KafkaOrderReport:
        return await workflow.execute_activity(
            names.CHECK_KAFKA_EVENTS,
            request,
            result_type=KafkaOrderReport,
            start_to_close_timeout=timedelta(minutes=3),
            heartbeat_timeout=policies.PROBE_HEARTBEAT,
            retry_policy=policies.PROBE_RETRY,
        )


async def test_a_broker_restart_during_a_check_is_retried_and_completes(
    client: Client, broker: KafkaBroker, target: KafkaTarget, events: Events, tmp_path: Path
) -> None:
    probe = KafkaProbeActivities(broker.bootstrap_direct, lag_interval_s=0.5)
    start = await positions(probe, target)
    produced = await behind(probe, target, events)  # lag above tolerance keeps it reading
    await events.emit("GOAL_STARTED", "g1")
    await events.emit("STEP_STARTED", "g1", 1)
    deadline = datetime.now(UTC) + timedelta(seconds=90)
    task_queue = f"kafka-checks-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[KafkaCheckWorkflow],
        activities=probe.all(),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            KafkaCheckWorkflow.run,
            KafkaCheckInput(kafka=target, start=start, deadline=deadline),
            id=f"kafka-check-{uuid.uuid4()}",
            task_queue=task_queue,
        )

        async def heartbeated() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return bool(pending and pending[0].HasField("heartbeat_details"))

        await assert_eventually(heartbeated, timeout_s=30)
        old_pid = broker.pid
        await asyncio.to_thread(broker.restart)
        assert broker.pid != old_pid
        await events.producer.stop()  # its connection died with the broker
        events.producer = AIOKafkaProducer(bootstrap_servers=target.bootstrap, acks="all")
        await events.producer.start()
        await events.emit("STEP_COMPLETED", "g1", 1)
        await events.emit("GOAL_COMPLETED", "g1")
        end = await positions(probe, target)
        await commit(
            target, {TopicPartition(r.topic, r.partition): r.offset for r in end.end_offsets}
        )

        report = await asyncio.wait_for(handle.result(), timeout=120)

    assert report.attempt >= 2 and report.resumed
    assert report.no_terminal == [] and report.violations == []
    assert report.events_read == produced + 4
    history = [e async for e in handle.fetch_history_events()]
    started = [e for e in history if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert started[-1].activity_task_started_event_attributes.attempt >= 2
    failure = started[-1].activity_task_started_event_attributes.last_failure
    assert "Kafka unavailable" in failure.message
