"""The replica's one Kafka producer. Only this module writes events to Kafka.

One idempotent producer (acks=all) per worker process, started at boot and shared by every
activity. Every send is bounded: when the broker cannot be reached the send raises
`EventSendError` and the activity fails, so Temporal retries it. After a failed send the
producer is closed and the next send builds a fresh one: an idempotent producer whose batch
timed out may be left with sequence numbers the broker rejects, and a new producer id is the
simple way out.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from standin.events import GOAL_TOPIC, STEP_TOPIC, GoalEvent, event_key

log = structlog.get_logger(__name__)


class EventSendError(RuntimeError):
    """An event could not be written within the send timeout; a retry may succeed."""


class KafkaEventSink:
    """Writes `GoalEvent`s to the goal and step topics through one shared producer."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "bytebot-worker",
        goal_topic: str = GOAL_TOPIC,
        step_topic: str = STEP_TOPIC,
        send_timeout_s: float = 10.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.goal_topic = goal_topic
        self.step_topic = step_topic
        self.send_timeout_s = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    def topic_for(self, event: GoalEvent) -> str:
        """The topic an event belongs on."""
        return self.goal_topic if event.step_number is None else self.step_topic

    async def start(self) -> bool:
        """Start the producer now; False (logged) if Kafka cannot be reached yet."""
        try:
            await self._current()
        except EventSendError as e:
            log.warning("kafka_unreachable_at_start", bootstrap=self.bootstrap, error=str(e))
            return False
        return True

    async def send(self, event: GoalEvent) -> None:
        """Write one event and wait for the broker's acknowledgement.

        Raises:
            EventSendError: not acknowledged within ``send_timeout_s``.
        """
        producer = await self._current()
        key = event_key(event.goal_run_id, event.step_number).encode()
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await producer.send_and_wait(self.topic_for(event), event.to_json(), key=key)
        except Exception as e:  # a timeout, or any client error: a retry decides
            await self._discard(producer)
            raise EventSendError(
                f"{event.event_type} for {key.decode()} not acknowledged by {self.bootstrap}: {e!r}"
            ) from e

    async def stop(self) -> None:
        """Flush and close the producer (bounded)."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _close(producer, self.send_timeout_s)

    async def _current(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=int(self.send_timeout_s * 1000),
                retry_backoff_ms=200,
            )
            try:
                async with asyncio.timeout(self.send_timeout_s):
                    await producer.start()
            except Exception as e:  # a timeout, or any client error: a retry decides
                await _close(producer, 2.0)
                raise EventSendError(f"cannot start a producer on {self.bootstrap}: {e!r}") from e
            self._producer = producer
            log.info("kafka_producer_started", bootstrap=self.bootstrap)
            return producer

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        async with self._lock:
            if self._producer is not producer:
                return  # another send already replaced it
            self._producer = None
        log.warning("kafka_producer_discarded", bootstrap=self.bootstrap)
        await _close(producer, 2.0)


async def _close(producer: AIOKafkaProducer, timeout_s: float) -> None:
    # A producer cut off from its broker may never finish flushing; give up after timeout_s.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s):
            await producer.stop()
