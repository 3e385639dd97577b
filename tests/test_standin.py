"""goalRunWorkflow, its activities and its Kafka records against a real dev server and broker.

In-process workers (tests/support/standin_workers.py) in namespace ``bytebot``, each test on
its own task queue and topics. The supervisor and the replica process have their own file,
tests/test_standin_deployment.py.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from devstack.kafka import KafkaBroker
from devstack.temporal import BYTEBOT_SEARCH_ATTRIBUTES, TemporalDevServer
from standin.activities import GoalActivities
from standin.contract import (
    APPROVE_STEP,
    CANCEL_GOAL,
    GET_PROGRESS,
    NAMESPACE,
    PAUSE_GOAL,
    REJECT_STEP,
    RESUME_GOAL,
    GoalRunResult,
    Progress,
)
from standin.events import make_event
from standin.kafka_sink import EventSendError, KafkaEventSink
from standin.models import EXECUTE_STEP, FaultyMode, StepInput, StepOutcome, selected
from tests.conftest import assert_eventually
from tests.support.standin_events import (
    FailingSink,
    Lane,
    WriteThenFailSink,
    by_key,
    fresh_lane,
    goal_input,
    read_records,
    run_goal,
    start_goal,
)
from tests.support.standin_workers import WorkerFactory

pytestmark = pytest.mark.timeout(120)

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PHASE = SearchAttributeKey.for_keyword("ByteBotPhase")
STEP_COUNT = SearchAttributeKey.for_int("ByteBotStepCount")
AWAITING = SearchAttributeKey.for_bool("ByteBotIsAwaitingApproval")
ERROR_TYPE = SearchAttributeKey.for_keyword("ByteBotErrorType")
TENANT = SearchAttributeKey.for_keyword("ByteBotTenantId")


@pytest.fixture(scope="session")
def standin_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real broker for these tests; CHAOS is advertised as itself (no proxy in front)."""
    with KafkaBroker(tmp_path_factory.mktemp("standin-kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
async def bytebot(temporal_server: TemporalDevServer) -> Client:
    """A client of the dev server's ``bytebot`` namespace."""
    return await Client.connect(
        temporal_server.address, namespace=NAMESPACE, data_converter=pydantic_data_converter
    )


@pytest.fixture
async def workers(bytebot: Client, standin_kafka: KafkaBroker) -> AsyncIterator[WorkerFactory]:
    factory = WorkerFactory(bytebot, standin_kafka)
    yield factory
    await factory.close()


@pytest.fixture
async def lane(standin_kafka: KafkaBroker) -> Lane:
    return await fresh_lane(standin_kafka)


async def records_of(broker: KafkaBroker, lane: Lane) -> dict[str, list[str]]:
    topics = lane.topics
    return by_key(await read_records(broker.bootstrap_direct, topics.goal, topics.step))


async def attributes(handle: WorkflowHandle[Any, Any]) -> Any:
    return (await handle.describe()).typed_search_attributes


# --- the namespace ---------------------------------------------------------------------------


async def test_the_dev_server_registers_bytebots_search_attributes_in_its_namespace(
    bytebot: Client,
) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    listed = await bytebot.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=NAMESPACE)
    )
    assert set(BYTEBOT_SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)


# --- results and records ---------------------------------------------------------------------


async def test_goal_run_completes_with_the_contract_result_and_records(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane)
    goal = goal_input("demo [steps=3] [step-ms=100]")
    handle = await start_goal(bytebot, lane, goal)

    result = await handle.result()

    assert (result.status, result.steps_completed, result.goal_run_id) == (
        "COMPLETED",
        3,
        goal.goal_run_id,
    )
    assert ISO_MS_Z.match(result.completed_at) and result.total_duration_ms > 0
    sa = await attributes(handle)
    assert (sa.get(PHASE), sa.get(STEP_COUNT), sa.get(TENANT)) == ("COMPLETED", 3, "tenant-test")
    topics = lane.topics
    records = await read_records(
        standin_kafka.bootstrap_direct, topics.goal, topics.step, topics.audit
    )
    gid = goal.goal_run_id
    keyed: dict[tuple[str, str], list[str]] = {}
    for r in records:
        keyed.setdefault((r.topic, r.key), []).append(r.event.event_type)
    assert keyed == {
        (topics.goal, gid): ["GOAL_STARTED", "GOAL_COMPLETED"],
        (topics.audit, gid): ["goal.goal_started", "goal.goal_completed"],
        **{(topics.step, f"{gid}-{n}"): ["STEP_STARTED", "STEP_COMPLETED"] for n in (1, 2, 3)},
    }
    assert len({r.event.event_id for r in records}) == len(records)
    for r in records:
        assert uuid.UUID(r.event.event_id).version == 4
        assert ISO_MS_Z.match(r.event.timestamp)
        assert (r.event.goal_run_id, r.event.tenant_id) == (gid, "tenant-test")
        assert r.headers == {
            "event-type": r.event.event_type,
            "tenant-id": "tenant-test",
            "correlation-id": gid,
            "timestamp": r.event.timestamp,
        }
        assert (r.event.step_number is not None) == (r.topic == topics.step)


async def test_a_step_that_fails_for_good_completes_the_run_with_status_failed(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane)
    goal = goal_input(
        "doomed [fail] [steps=2] [step-ms=50]", constraints={"maxRetries": 1, "maxReplans": 1}
    )
    handle = await start_goal(bytebot, lane, goal)

    result = await handle.result()

    assert result.status == "FAILED" and result.error_details is not None
    assert (result.error_details.error_type, result.error_details.failed_step) == ("STEP_FAILED", 1)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    sa = await attributes(handle)
    assert (sa.get(PHASE), sa.get(ERROR_TYPE)) == ("FAILED", "STEP_FAILED")
    keyed = await records_of(standin_kafka, lane)
    gid = goal.goal_run_id
    assert keyed[gid] == ["GOAL_STARTED", "GOAL_FAILED"]
    assert keyed[f"{gid}-1"] == ["STEP_STARTED", "STEP_FAILED"] * 4  # 2 attempts x 2 plans


async def test_retries_replans_and_skips_follow_bytebots_lifecycles(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane)
    flaky, replan, skip = (
        goal_input(d, constraints={"maxRetries": 1})
        for d in (
            "f [flaky] [steps=2] [step-ms=50]",
            "r [replan] [steps=2] [step-ms=50]",
            "s [skip] [steps=3] [step-ms=50]",
        )
    )

    results = await asyncio.gather(*(run_goal(bytebot, lane, g) for g in (flaky, replan, skip)))

    assert [(r.status, r.steps_completed) for r in results] == [
        ("COMPLETED", 2),
        ("COMPLETED", 2),
        ("COMPLETED", 3),
    ]
    keyed = await records_of(standin_kafka, lane)
    ok = ["STEP_STARTED", "STEP_COMPLETED"]
    assert keyed[f"{flaky.goal_run_id}-1"] == ["STEP_STARTED", "STEP_FAILED", *ok]
    # the first plan's step 1 fails both attempts; the second plan starts at 1 again
    assert keyed[f"{replan.goal_run_id}-1"] == ["STEP_STARTED", "STEP_FAILED"] * 2 + ok
    assert keyed[f"{replan.goal_run_id}-2"] == ok
    assert keyed[f"{skip.goal_run_id}-2"] == ["STEP_SKIPPED"]


async def test_a_retried_emit_writes_the_event_again_under_a_new_id(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane, wrap_sink=lambda s: WriteThenFailSink(s, "GOAL_STARTED"))
    goal = goal_input("demo [steps=1] [step-ms=10]")
    handle = await start_goal(bytebot, lane, goal)

    assert (await handle.result()).status == "COMPLETED"

    records = await read_records(standin_kafka.bootstrap_direct, lane.topics.goal)
    started = [r.event for r in records if r.event.event_type == "GOAL_STARTED"]
    assert len(started) == 2 and started[0].event_id != started[1].event_id
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert 2 in attempts  # the emitGoalEvent that had written was retried


async def test_a_terminal_event_whose_emit_fails_is_swallowed_and_the_result_returned(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane, wrap_sink=lambda s: FailingSink(s, "GOAL_COMPLETED"))
    goal = goal_input("demo [steps=1] [step-ms=10]")

    result = await run_goal(bytebot, lane, goal)

    assert (result.status, result.steps_completed) == ("COMPLETED", 1)
    assert (await records_of(standin_kafka, lane))[goal.goal_run_id] == ["GOAL_STARTED"]


async def test_a_send_rides_out_a_broker_restart_within_its_timeout_as_kafkajs_retries_do(
    standin_kafka: KafkaBroker, lane: Lane
) -> None:
    # ByteBot's producer (kafkajs, retries 5) retries a refused connection inside the send, so
    # a broker that is back within the send timeout costs a wait, never an event.
    sink = KafkaEventSink(standin_kafka.bootstrap_direct, topics=lane.topics, send_timeout_s=20)
    event = make_event("GOAL_STARTED", f"goal-{uuid.uuid4().hex[:8]}", "tenant-a")
    try:
        await sink.send(lane.topics.goal, make_event("GOAL_STARTED", "warm-up", "tenant-a"))
        await asyncio.to_thread(standin_kafka.stop)
        sent = asyncio.create_task(sink.send(lane.topics.goal, event))
        await asyncio.sleep(2)
        assert not sent.done()  # still retrying, not failed
        await asyncio.to_thread(standin_kafka.start)
        await asyncio.wait_for(sent, 20)
    finally:
        await sink.stop()
        await asyncio.to_thread(standin_kafka.start)  # the next tests share the broker

    assert (await records_of(standin_kafka, lane))[event.goal_run_id] == ["GOAL_STARTED"]


async def test_a_send_that_outlasts_its_timeout_fails_naming_the_broker(lane: Lane) -> None:
    sink = KafkaEventSink("127.0.0.1:9", topics=lane.topics, send_timeout_s=2)
    started = asyncio.get_running_loop().time()
    with pytest.raises(EventSendError, match=r"127\.0\.0\.1:9 within 2s"):
        await sink.send(lane.topics.goal, make_event("GOAL_STARTED", "goal-x", "tenant-a"))
    assert asyncio.get_running_loop().time() - started >= 1.5  # it retried until its timeout
    await sink.stop()


async def test_a_run_waiting_for_approval_stays_idle_until_approved(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane)
    goal = goal_input("risky [high-risk] [steps=2] [step-ms=50]")
    handle = await start_goal(bytebot, lane, goal)

    async def waiting() -> int:
        described = await handle.describe()
        sa = described.typed_search_attributes
        assert (sa.get(PHASE), sa.get(AWAITING)) == ("AWAITING_APPROVAL", True)
        assert not described.raw_description.pending_activities
        return described.history_length

    length = await assert_eventually(waiting, timeout_s=20)
    await asyncio.sleep(1.5)
    assert await waiting() == length  # idle by design: the history does not grow
    progress = await handle.query(GET_PROGRESS, result_type=Progress)
    assert progress.is_awaiting_approval and progress.current_step == 2

    await handle.signal(APPROVE_STEP)
    result = await handle.result()

    assert (result.status, result.steps_completed) == ("COMPLETED", 2)
    assert (await attributes(handle)).get(AWAITING) is False
    keyed = await records_of(standin_kafka, lane)
    assert keyed[f"{goal.goal_run_id}-2"] == [
        "STEP_APPROVAL_REQUESTED",
        "STEP_APPROVED",
        "STEP_STARTED",
        "STEP_COMPLETED",
    ]


async def test_reject_skips_the_step_and_pause_resume_and_cancel_take_effect(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane)
    rejected = await start_goal(bytebot, lane, goal_input("r [high-risk] [steps=2] [step-ms=50]"))
    paused = await start_goal(bytebot, lane, goal_input("p [steps=3] [step-ms=400]"))
    cancelled = await start_goal(bytebot, lane, goal_input("c [steps=3] [step-ms=400]"))
    await paused.signal(PAUSE_GOAL)
    await cancelled.signal(CANCEL_GOAL)

    async def phase_of(handle: WorkflowHandle[Any, Any], phase: str) -> None:
        assert (await attributes(handle)).get(PHASE) == phase

    await assert_eventually(lambda: phase_of(rejected, "AWAITING_APPROVAL"))
    await rejected.signal(REJECT_STEP)
    await assert_eventually(lambda: phase_of(paused, "PAUSED"))
    await paused.signal(RESUME_GOAL)

    done: list[GoalRunResult] = [await h.result() for h in (rejected, paused, cancelled)]

    assert [(r.status, r.steps_completed) for r in done[:2]] == [("COMPLETED", 2)] * 1 + [
        ("COMPLETED", 3)
    ]
    assert done[2].status == "CANCELLED"
    assert (await attributes(cancelled)).get(PHASE) == "CANCELLED"
    keyed = await records_of(standin_kafka, lane)
    assert keyed[f"{rejected.id}-2"] == ["STEP_APPROVAL_REQUESTED", "STEP_REJECTED", "STEP_SKIPPED"]
    assert keyed[paused.id] == ["GOAL_STARTED", "GOAL_PAUSED", "GOAL_RESUMED", "GOAL_COMPLETED"]
    assert keyed[cancelled.id] == ["GOAL_STARTED", "GOAL_CANCELLED"]


async def test_the_capability_probe_runs_one_step_without_planning(
    bytebot: Client, workers: WorkerFactory, lane: Lane
) -> None:
    await workers.start(lane)
    goal = goal_input("capability probe", mode="CAPABILITY_PROBE", constraints={"maxSteps": 1})
    handle = await start_goal(bytebot, lane, goal)

    result = await handle.result()

    assert (result.status, result.steps_completed) == ("COMPLETED", 1)
    history = await handle.fetch_history()
    kinds = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert "planGoal" not in kinds and kinds.count("executeStep") == 1


# --- deliberate defects -------------------------------------------------------------------------


async def test_lose_reorder_and_wrong_result_modes_do_what_they_say(
    bytebot: Client, standin_kafka: KafkaBroker, workers: WorkerFactory, lane: Lane
) -> None:
    modes = (FaultyMode.LOSE_EVENTS, FaultyMode.REORDER_EVENTS, FaultyMode.WRONG_RESULT)
    await workers.start(lane, *modes)
    goals = [goal_input("demo [steps=4] [step-ms=10]") for _ in range(8)]
    probe = goal_input("probe", mode="CAPABILITY_PROBE", constraints={"maxSteps": 1})

    results = await asyncio.gather(*(run_goal(bytebot, lane, g) for g in [*goals, probe]))

    assert all(r.status == "COMPLETED" for r in results)
    assert results[-1].steps_completed == 2  # every probe result is wrong
    wrong = [g.goal_run_id for g, r in zip(goals, results, strict=False) if r.steps_completed == 5]
    assert wrong == [g.goal_run_id for g in goals if selected(g.goal_run_id)]
    assert 0 < len(wrong) < len(goals)
    await asyncio.sleep(20 * 0.05 + 0.5)  # held STEP_STARTEDs are released by then
    keyed = await records_of(standin_kafka, lane)
    lost = [g.goal_run_id for g in goals if "GOAL_COMPLETED" not in keyed[g.goal_run_id]]
    assert lost == [g.goal_run_id for g in goals if selected(g.goal_run_id)] and lost
    steps = [keyed[f"{g.goal_run_id}-{n}"] for g in goals for n in range(1, 5)]
    backwards = [v for v in steps if v == ["STEP_COMPLETED", "STEP_STARTED"]]
    assert 0 < len(backwards) < len(steps)
    assert all(
        v in (["STEP_STARTED", "STEP_COMPLETED"], ["STEP_COMPLETED", "STEP_STARTED"]) for v in steps
    )


@pytest.mark.parametrize("faulty", [False, True], ids=["healthy", "fail-under-stress"])
async def test_a_retried_step_activity_is_survived_unless_the_worker_fails_under_stress(
    bytebot: Client, workers: WorkerFactory, lane: Lane, faulty: bool
) -> None:
    def first_attempt_lost(acts: GoalActivities) -> list[Any]:
        @activity.defn(name=EXECUTE_STEP)
        async def execute_step(request: StepInput) -> StepOutcome:
            if activity.info().attempt == 1:  # as if its replica had died
                raise ApplicationError("worker lost", type="WorkerLost")
            return await acts.execute_step(request)

        return [acts.plan_goal, execute_step, acts.emit_goal_event, acts.emit_step_event]

    modes = [FaultyMode.FAIL_UNDER_STRESS] if faulty else []
    await workers.start(lane, *modes, replace=first_attempt_lost)

    result = await run_goal(bytebot, lane, goal_input("demo [steps=1] [step-ms=10]"))

    if faulty:
        assert result.status == "FAILED" and result.error_details is not None
        assert result.error_details.error_type == "StepDegraded"
    else:
        assert (result.status, result.steps_completed) == ("COMPLETED", 1)
