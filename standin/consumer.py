"""ByteBot's event consumer: group ``bytebot-consumers`` reading the goal and step topics.

It "processes" each event by sleeping ``delay_ms`` and commits after each batch, so its lag is
real: it grows when events arrive faster than it works and drains afterwards. It survives the
broker going away (it keeps retrying) and ends when told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from pydantic import Field

from standin.events import GOAL_TOPIC, STEP_TOPIC
from standin.models import Frozen

log = structlog.get_logger(__name__)

DEFAULT_GROUP = "bytebot-consumers"
TOPIC_ALREADY_EXISTS = 36


class ConsumerSettings(Frozen):
    """Where the consumer reads, as whom, and how slowly."""

    bootstrap: str
    group: str = DEFAULT_GROUP
    topics: tuple[str, ...] = (GOAL_TOPIC, STEP_TOPIC)
    delay_ms: float = Field(default=10.0, ge=0, description="Processing time per event.")
    partitions: int = Field(default=3, ge=1, description="Partitions for topics it creates.")
    retry_s: float = Field(
        default=1.0, gt=0, description="Wait before reconnecting after an error."
    )


async def ensure_topics(bootstrap: str, topics: tuple[str, ...], partitions: int) -> None:
    """Create the topics if they do not exist (replication factor 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bytebot-admin")
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(t, partitions, replication_factor=1) for t in topics]
        )
    finally:
        await admin.close()
    failed = [
        (name, code)
        for name, code, *_ in response.topic_errors
        if code not in (0, TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise RuntimeError(f"cannot create topics: {failed}")


class EventConsumer:
    """Consumes and commits until stopped; counts what it processed."""

    def __init__(self, settings: ConsumerSettings) -> None:
        self.settings = settings
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; reconnect after any Kafka error."""
        s = self.settings
        while not stop.is_set():
            try:
                await ensure_topics(s.bootstrap, s.topics, s.partitions)
                await self._consume(stop)
            except Exception as e:  # the broker went away or the group rebalanced badly
                log.warning("consumer_error", error=repr(e), retry_s=s.retry_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), s.retry_s)
        log.info("consumer_stopped", processed=self.processed)

    async def _consume(self, stop: asyncio.Event) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            *s.topics,
            bootstrap_servers=s.bootstrap,
            group_id=s.group,
            client_id=f"{s.group}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        await consumer.start()
        log.info("consumer_started", group=s.group, topics=list(s.topics))
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=50)
                count = 0
                for records in batches.values():
                    for _ in records:
                        await asyncio.sleep(s.delay_ms / 1000)
                        count += 1
                if count:
                    await consumer.commit()
                    self.processed += count
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await consumer.stop()
