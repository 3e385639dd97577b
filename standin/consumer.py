"""The consumer group ``bytebot-consumers`` reading the goal and step topics.

In production another ByteBot service owns this group; the stand-in runs one so a lag check
has a real group to read. It "processes" each event by sleeping ``delay_ms`` and commits after
each batch, so its lag is real: it grows when events arrive faster than it works and drains
afterwards. It survives the broker going away (it keeps retrying) and ends when told to stop.

The stop-committing defect (``stop_committing_after_s``): after that long, or after its first
lost connection if that comes sooner, it stays in the group and keeps consuming but never
commits again, so its committed lag grows without end: what a lag check over a fault (or
after it) must report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import Field

from standin.contract import Camel
from standin.events import GOAL_TOPIC, STEP_TOPIC

log = structlog.get_logger(__name__)

DEFAULT_GROUP = "bytebot-consumers"
TOPIC_ALREADY_EXISTS = 36


class ConsumerSettings(Camel):
    """Where the consumer reads, as whom, and how slowly."""

    bootstrap: str
    group: str = DEFAULT_GROUP
    topics: tuple[str, ...] = (GOAL_TOPIC, STEP_TOPIC)
    delay_ms: float = Field(default=10.0, ge=0, description="Processing time per event.")
    partitions: int = Field(default=3, ge=1, description="Partitions for topics it creates.")
    retry_s: float = Field(
        default=1.0, gt=0, description="Wait before reconnecting after an error."
    )
    stop_committing_after_s: float | None = Field(
        default=None, gt=0, description="The stop-committing defect; None: off."
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
        self.committing = True
        self._began = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; reconnect after any Kafka error."""
        s = self.settings
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as e:  # the broker went away or the group rebalanced badly
                log.warning("consumer_error", error=repr(e), retry_s=s.retry_s)
                self._defect("lost connection")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), s.retry_s)
        log.info("consumer_stopped", processed=self.processed)

    def _defect(self, why: str) -> None:
        if self.settings.stop_committing_after_s is not None and self.committing:
            self.committing = False
            log.warning("faulty_stop_committing", why=why)

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
                limit = s.stop_committing_after_s
                if limit is not None and time.monotonic() - self._began > limit:
                    self._defect("first minute over")
                if count and self.committing:
                    await consumer.commit()
                self.processed += count
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await consumer.stop()
