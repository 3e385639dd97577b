"""The stand-in ByteBot's goal runs and Kafka records, as its tests drive and read them.

Per-test task queues and topics (`Lane`, created on the real broker before a worker writes:
the producer does not create topics), running one goalRunWorkflow in namespace ``bytebot``,
reading every record back with its headers, and `WriteThenFailSink`, a test hook that makes an
emit fail after it wrote (so Temporal retries an emit that had already written).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from temporalio.client import Client, WorkflowHandle

from devstack.kafka import KafkaBroker
from standin.contract import GOAL_RUN_WORKFLOW, GoalRunInput, GoalRunResult
from standin.events import Event
from standin.kafka_sink import EventSendError, KafkaEventSink, Topics


@dataclass(frozen=True)
class Lane:
    """A test's own task queue and topics."""

    task_queue: str
    topics: Topics

    def env(self) -> dict[str, str]:
        """The replica environment that points a worker at this lane."""
        return {
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "BYTEBOT_GOAL_TOPIC": self.topics.goal,
            "BYTEBOT_STEP_TOPIC": self.topics.step,
            "BYTEBOT_AUDIT_TOPIC": self.topics.audit,
        }


async def fresh_lane(broker: KafkaBroker) -> Lane:
    """Names no other test uses, with the three topics created."""
    tag = uuid4().hex[:8]
    lane = Lane(f"tq-{tag}", Topics(f"goal-{tag}", f"step-{tag}", f"audit-{tag}"))
    await broker.create_topics((lane.topics.goal, lane.topics.step, lane.topics.audit))
    return lane


@dataclass(frozen=True)
class Record:
    """One record as read back from Kafka."""

    topic: str
    partition: int
    offset: int
    key: str
    headers: dict[str, str]
    event: Event


async def read_records(bootstrap: str, *topics: str) -> list[Record]:
    """Every record now in ``topics``, in (topic, partition, offset) order."""
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
                        {k: v.decode() for k, v in m.headers},
                        Event.from_json(m.value),
                    )
                    for m in batch
                ]
        return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    finally:
        await consumer.stop()


def by_key(records: list[Record]) -> dict[str, list[str]]:
    """Each key's event types in offset order."""
    keyed: dict[str, list[str]] = {}
    for r in records:
        keyed.setdefault(r.key, []).append(r.event.event_type)
    return keyed


def goal_input(description: str = "demo [steps=3] [step-ms=200]", **kw: object) -> GoalRunInput:
    """A well-formed GoalRunInput with a fresh goalRunId."""
    fields: dict[str, object] = {
        "goalRunId": f"goal-{uuid4().hex[:10]}",
        "tenantId": "tenant-test",
        "userId": "user-test",
        "goalDescription": description,
        **kw,
    }
    return GoalRunInput.model_validate(fields)


async def start_goal(
    client: Client, lane: Lane, goal: GoalRunInput
) -> WorkflowHandle[..., GoalRunResult]:
    """Start one goalRunWorkflow (workflow id = goalRunId) on the lane's task queue."""
    return await client.start_workflow(
        GOAL_RUN_WORKFLOW,
        goal,
        id=goal.goal_run_id,
        task_queue=lane.task_queue,
        result_type=GoalRunResult,
        execution_timeout=timedelta(seconds=120),
    )


async def run_goal(client: Client, lane: Lane, goal: GoalRunInput) -> GoalRunResult:
    """Execute one goalRunWorkflow to its result."""
    return await (await start_goal(client, lane, goal)).result()


class WriteThenFailSink:
    """Test hook: the first send of ``event_type`` writes, then raises as if unacknowledged."""

    def __init__(self, inner: KafkaEventSink, event_type: str) -> None:
        self.inner = inner
        self.event_type = event_type
        self.tripped = False

    async def send(self, topic: str, event: Event) -> None:
        await self.inner.send(topic, event)
        if event.event_type == self.event_type and not self.tripped:
            self.tripped = True
            raise EventSendError("written, but the acknowledgement was lost (test hook)")


class FailingSink:
    """Test hook: every send of ``event_types`` fails (a Kafka path that stays broken)."""

    def __init__(self, inner: KafkaEventSink, *event_types: str) -> None:
        self.inner = inner
        self.event_types = event_types

    async def send(self, topic: str, event: Event) -> None:
        if event.event_type in self.event_types:
            raise EventSendError("unreachable (test hook)")
        await self.inner.send(topic, event)
