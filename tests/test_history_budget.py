"""A fault's Temporal history stays far below the server's limits, even for a 1-hour fault.

Measured, not assumed: a short real fault (the real chaos workflows and verification
activities, real goal runs on the dev server, the real Kafka probes against a real broker)
runs at the floor `probe_interval`; its history is fetched and the events and bytes of one
hold iteration (probe, Kafka positions, timer, workflow tasks) are measured. The 1-hour
figure is the fixed part plus that iteration times the probes a 1-hour fault gets.
Temporal's defaults: 51,200 events / 50 MB per history (warning at 10,240 / 10 MB), 2 MB
per payload. The stand-in fault backend (`StandInBackend`) stops replicas' workers: a test
double for the process kill, which has its own tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from activities.kafka.probe import KafkaProbeActivities
from activities.verify.clients import TemporalClients, TemporalDefaults
from devstack.kafka import KafkaBroker
from devstack.temporal import TemporalDevServer
from models.report import Verdict
from models.scenario import MAX_HOLD_PROBES, MIN_PROBE_INTERVAL, KafkaTarget, TemporalTarget
from tests.support.goal_runs import SUT_NAMESPACE, StandInBackend, SystemUnderTest, ensure_namespace
from tests.support.verification_runs import chaos_worker, scenario
from workflows import names

pytestmark = pytest.mark.timeout(240)

HARD_EVENTS, WARN_EVENTS = 51_200, 10_240
HARD_BYTES, WARN_BYTES = 50 * 2**20, 10 * 2**20
PAYLOAD_LIMIT = 2 * 2**20
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    with KafkaBroker(tmp_path_factory.mktemp("kafka-history")) as running:
        yield running


@pytest.fixture
async def system(
    temporal_server: TemporalDevServer, client: Client
) -> AsyncIterator[tuple[TemporalClients, SystemUnderTest]]:
    await ensure_namespace(client, SUT_NAMESPACE)
    clients = TemporalClients(TemporalDefaults(address=temporal_server.address), own=client)
    sut = SystemUnderTest(
        await clients.get(TemporalTarget(namespace=SUT_NAMESPACE)), clients.defaults.address
    )
    for name in sut.names:
        await sut.start(name)
    yield clients, sut
    for name in list(sut.workers):
        await sut.stop(name)


def _activity(event: HistoryEvent) -> str | None:
    if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return None
    return event.activity_task_scheduled_event_attributes.activity_type.name


def _largest_payload(event: HistoryEvent) -> int:
    """The biggest single payload of an event (inputs, results, signals)."""
    sizes = [0]
    for field in (
        "activity_task_scheduled_event_attributes",
        "activity_task_completed_event_attributes",
    ):
        if event.HasField(field):
            attrs = getattr(event, field)
            payloads = attrs.input if hasattr(attrs, "input") else attrs.result
            sizes += [p.ByteSize() for p in payloads.payloads]
    return max(sizes)


async def test_a_one_hour_fault_at_the_floor_interval_stays_far_below_the_history_limits(
    client: Client, system: tuple[TemporalClients, SystemUnderTest], broker: KafkaBroker
) -> None:
    clients, sut = system
    tag = uuid.uuid4().hex[:8]
    kafka = KafkaTarget(
        bootstrap=broker.bootstrap_direct,
        goal_topic=f"goal-{tag}",
        step_topic=f"step-{tag}",
        consumer_group=f"group-{tag}",
    )
    # The stand-in ByteBot's topic layout: 3 partitions each.
    await broker.create_topics([kafka.goal_topic, kafka.step_topic], partitions=3)
    run_input = scenario(sut, duration="8s", settle="20s")
    data = run_input.model_dump(mode="json")
    data["scenario"]["verification"].update(
        kafka=kafka.model_dump(mode="json"),
        probe_interval=f"{MIN_PROBE_INTERVAL.total_seconds():g}s",
    )
    kafka_probes = KafkaProbeActivities(broker.bootstrap_direct, lag_interval_s=0.3)
    async with chaos_worker(
        client, clients, StandInBackend(sut, kill=1), kafka_probes.all()
    ) as run:
        for _ in range(3):
            await sut.goal_run("busy", steps=10, step_seconds=0.4)
        report, workflow_id = await run(type(run_input).model_validate(data))
    assert report.verdict is not Verdict.ABORTED, report.reason
    (fault,) = report.faults()
    history = await client.get_workflow_handle(f"{workflow_id}.{fault.fault_id}").fetch_history()
    events = list(history.events)
    probes = [i for i, e in enumerate(events) if _activity(e) == names.PROBE_HOLD]
    assert len(probes) >= 3, f"only {len(probes)} hold probes in an 8 s fault at 1 s"
    assert any(_activity(e) == names.READ_KAFKA_POSITIONS for e in events[probes[0] : probes[-1]])

    # One hold iteration, averaged between the first and the last probe.
    span = events[probes[0] : probes[-1]]
    iterations = len(probes) - 1
    events_per = len(span) / iterations
    bytes_per = sum(e.ByteSize() for e in span) / iterations
    fixed_events = len(events) - len(span)
    fixed_bytes = sum(e.ByteSize() for e in events) - sum(e.ByteSize() for e in span)
    largest = max(_largest_payload(e) for e in events)

    hour_probes = min(HOUR / MIN_PROBE_INTERVAL, MAX_HOLD_PROBES)
    hour_events = fixed_events + hour_probes * events_per
    hour_bytes = fixed_bytes + hour_probes * bytes_per
    unspread = fixed_events + (HOUR / MIN_PROBE_INTERVAL) * events_per
    print(
        f"\nper hold iteration: {events_per:.1f} events, {bytes_per / 1024:.1f} KiB "
        f"(over {iterations}); fixed: {fixed_events} events, {fixed_bytes / 1024:.1f} KiB; "
        f"largest payload {largest / 1024:.1f} KiB\n"
        f"1-hour fault at {MIN_PROBE_INTERVAL.total_seconds():g}s: {hour_probes:.0f} probes, "
        f"{hour_events:.0f} events, {hour_bytes / 2**20:.2f} MiB "
        f"(probing every {MIN_PROBE_INTERVAL.total_seconds():g}s unspread: {unspread:.0f} events)"
    )
    # Far below: under a quarter of the hard limits and under the warning thresholds.
    assert hour_events < min(WARN_EVENTS, HARD_EVENTS / 4)
    assert hour_bytes < min(WARN_BYTES, HARD_BYTES / 4)
    assert largest < PAYLOAD_LIMIT / 10
