"""The stand-in ByteBot's goal runs and Kafka events, as its tests drive and read them.

Per-test task queues and topics (`Topics`), running one goalRunWorkflow, reading every event
back from a real broker, and `FlakySink`, a test-side stand-in for a Kafka outage. The workers
themselves are started by the tests' fixtures; nothing here writes to Kafka but `FlakySink`
passing events on to the real sink.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from temporalio.client import Client

from standin.events import GoalEvent
from standin.kafka_sink import EventSendError, KafkaEventSink
from standin.models import GOAL_RUN_WORKFLOW, GoalEventType, GoalRunInput, GoalRunResult


@dataclass(frozen=True)
class Topics:
    """A test's own task queue and topics."""

    task_queue: str
    goal: str
    step: str


def fresh_topics() -> Topics:
    """Names no other test uses."""
    tag = uuid4().hex[:8]
    return Topics(f"tq-{tag}", f"goal-events-{tag}", f"step-events-{tag}")


@dataclass(frozen=True)
class Record:
    """One event as read back from Kafka."""

    topic: str
    partition: int
    offset: int
    key: str
    event: GoalEvent


async def read_events(bootstrap: str, *topics: str) -> list[Record]:
    """Every record now in ``topics``, in partition order."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    parts = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[Record] = []
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records += [
                    Record(
                        tp.topic,
                        tp.partition,
                        m.offset,
                        m.key.decode(),
                        GoalEvent.from_json(m.value),
                    )
                    for m in batch
                ]
        return records
    finally:
        await consumer.stop()


def by_key(records: list[Record]) -> dict[str, list[GoalEventType]]:
    """Each key's event types in offset order."""
    keyed: dict[str, list[GoalEventType]] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        keyed.setdefault(r.key, []).append(r.event.event_type)
    return keyed


async def run_goal(client: Client, topics: Topics, goal_run: GoalRunInput) -> GoalRunResult:
    """Execute one goalRunWorkflow on the test's task queue."""
    return await client.execute_workflow(
        GOAL_RUN_WORKFLOW,
        goal_run,
        id=goal_run.goal_run_id,
        task_queue=topics.task_queue,
        result_type=GoalRunResult,
        execution_timeout=timedelta(seconds=60),
    )


class FlakySink:
    """Test-side stand-in for a Kafka outage: fails the first STEP_COMPLETED of step 2."""

    def __init__(self, inner: KafkaEventSink) -> None:
        self.inner = inner
        self.failed = False

    async def send(self, event: GoalEvent) -> None:
        if (
            event.event_type == GoalEventType.STEP_COMPLETED
            and event.step_number == 2
            and not self.failed
        ):
            self.failed = True
            raise EventSendError("simulated outage")
        await self.inner.send(event)
