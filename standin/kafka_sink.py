"""The replica's one Kafka producer. Only this module writes events to Kafka.

One idempotent, gzip-compressing producer (acks=all) per worker process, shared by every
activity. Like ByteBot's (``allowAutoTopicCreation: false``) it never creates a topic: before
its first send to a topic it checks the topic exists with a metadata request for all topics,
which (unlike a request naming the topic) cannot trigger the broker's auto-creation.

Like kafkajs (`retries: 5`), a send that fails is retried inside the call, with kafkajs's
backoff (300 ms, doubling, 20 % jitter, at most 30 s), so a broker that refuses connections
while it restarts costs a wait, not an event. The whole call, retries included, is bounded by
``send_timeout_s``; when it runs out `EventSendError` is raised and the emit activity fails, so
Temporal retries it. After a failed try the producer is closed and the next builds a fresh one:
an idempotent producer whose batch timed out may be left with sequence numbers the broker
rejects, and a new producer id is the simple way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer

from standin.events import AUDIT_TOPIC, GOAL_TOPIC, STEP_TOPIC, Event

log = structlog.get_logger(__name__)

KAFKAJS_RETRIES = 5
"""ByteBot's producer setting: a failed send is tried again this many times."""


def kafkajs_backoff_s(retry: int) -> float:
    """The wait before retry ``retry`` (0-based), as kafkajs computes it by default."""
    base = min(30.0, 0.3 * 2.0**retry)
    return base * random.uniform(0.8, 1.2)


class EventSendError(RuntimeError):
    """An event could not be written within the send timeout; a retry may succeed."""


class _Retriable(Exception):
    """One try failed (its cause says why); the send tries again while it has time."""


@dataclass(frozen=True)
class Topics:
    """Where each kind of event goes."""

    goal: str = GOAL_TOPIC
    step: str = STEP_TOPIC
    audit: str = AUDIT_TOPIC


class KafkaEventSink:
    """Writes `Event`s through one shared producer."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "bytebot-temporal-worker",
        topics: Topics | None = None,
        send_timeout_s: float = 10.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.topics = topics or Topics()
        self.send_timeout_s = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._known_topics: set[str] = set()
        self._lock = asyncio.Lock()

    async def start(self) -> bool:
        """Start the producer now; False (logged) if Kafka cannot be reached yet."""
        try:
            await self._current()
        except EventSendError as e:
            log.warning("kafka_unreachable_at_start", bootstrap=self.bootstrap, error=str(e))
            return False
        return True

    async def send(self, topic: str, event: Event) -> None:
        """Write one event and wait for the broker's acknowledgement.

        Raises:
            EventSendError: the topic does not exist, or no acknowledgement in time.
        """
        last: BaseException | None = None
        try:
            async with asyncio.timeout(self.send_timeout_s):
                for retry in range(KAFKAJS_RETRIES + 1):
                    if retry:
                        await asyncio.sleep(kafkajs_backoff_s(retry - 1))
                    try:
                        await self._send_once(topic, event)
                        return
                    except _Retriable as e:
                        last = e.__cause__
        except TimeoutError as e:
            last = last or e
        raise EventSendError(
            f"{event.event_type} for {event.key} not acknowledged by {self.bootstrap}"
            f" within {self.send_timeout_s:g}s: {last!r}"
        ) from last

    async def _send_once(self, topic: str, event: Event) -> None:
        try:
            producer = await self._current()
        except EventSendError as e:
            raise _Retriable from e.__cause__
        try:
            await self._check_topic(producer, topic)
            await producer.send_and_wait(
                topic, event.to_json(), key=event.key.encode(), headers=event.headers()
            )
        except EventSendError:
            raise  # the topic does not exist: no retry makes it
        except asyncio.CancelledError:
            await self._discard(producer)
            raise
        except Exception as e:  # any client error: the next try uses a fresh producer
            await self._discard(producer)
            raise _Retriable from e

    async def stop(self) -> None:
        """Flush and close the producer (bounded)."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _close(producer, self.send_timeout_s)

    async def _check_topic(self, producer: AIOKafkaProducer, topic: str) -> None:
        if topic in self._known_topics:
            return
        cluster = await producer.client.fetch_all_metadata()
        self._known_topics = set(cluster.topics())
        if topic not in self._known_topics:
            raise EventSendError(f"topic {topic} does not exist (topics are not auto-created)")

    async def _current(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                acks="all",
                enable_idempotence=True,
                compression_type="gzip",
                request_timeout_ms=max(1000, int(self.send_timeout_s * 1000)),
                retry_backoff_ms=100,
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
