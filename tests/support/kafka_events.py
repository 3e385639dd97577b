"""Test helpers for the Kafka checks: produce ByteBot events, call the probes as activities."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from temporalio.testing import ActivityEnvironment

from activities.kafka.probe import KafkaProbeActivities
from models.kafka import KafkaCheckInput, KafkaOrderReport, KafkaPositions
from models.scenario import KafkaTarget


@dataclasses.dataclass
class Sent:
    """Where a produced event landed."""

    topic: str
    partition: int
    offset: int
    key: str


class Events:
    """Produces events as ByteBot's worker writes them (gzip, ISO timestamps, a fresh uuid4
    eventId at every emission) to the target's topics."""

    def __init__(self, target: KafkaTarget) -> None:
        self.target = target
        self.producer = AIOKafkaProducer(
            bootstrap_servers=target.bootstrap, acks="all", compression_type="gzip"
        )

    async def emit(
        self, event_type: str, goal_run: str, step: int | None = None, eid: str | None = None
    ) -> Sent:
        """Write one event and wait for its acknowledgement."""
        topic = self.target.goal_topic if step is None else self.target.step_topic
        key = goal_run if step is None else f"{goal_run}-{step}"
        now = datetime.now(UTC)
        value: dict[str, object] = {
            "eventId": eid or str(uuid.uuid4()),
            "eventType": event_type,
            "goalRunId": goal_run,
            "tenantId": "tests",
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "payload": {},
        }
        if step is not None:
            value["stepNumber"] = step
        meta = await self.producer.send_and_wait(topic, json.dumps(value).encode(), key.encode())
        return Sent(topic, meta.partition, meta.offset, key)

    async def goal_run(self, goal_run: str, steps: int, end: str = "GOAL_COMPLETED") -> int:
        """A whole goal run in its valid order; returns the number of events."""
        await self.emit("GOAL_STARTED", goal_run)
        for n in range(1, steps + 1):
            await self.emit("STEP_STARTED", goal_run, n)
            await self.emit("STEP_COMPLETED", goal_run, n)
        await self.emit(end, goal_run)
        return 2 + 2 * steps


async def positions(probe: KafkaProbeActivities, target: KafkaTarget) -> KafkaPositions:
    """READ_KAFKA_POSITIONS, called as an activity."""
    result: KafkaPositions = await ActivityEnvironment().run(probe.read_kafka_positions, target)
    return result


async def check(
    probe: KafkaProbeActivities,
    target: KafkaTarget,
    start: KafkaPositions,
    within_s: float,
    env: ActivityEnvironment | None = None,
) -> KafkaOrderReport:
    """CHECK_KAFKA_EVENTS, called as an activity, due `within_s` seconds from now."""
    deadline = datetime.now(UTC) + timedelta(seconds=within_s)
    request = KafkaCheckInput(kafka=target, start=start, deadline=deadline)
    report: KafkaOrderReport = await (env or ActivityEnvironment()).run(
        probe.check_kafka_events, request
    )
    return report


async def commit(target: KafkaTarget, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for the target's group the way a consumer of it would, then leave."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=target.bootstrap,
        group_id=target.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()
