"""The orchestrator's Kafka client layer: a group-less reader and an admin client.

Owns every connection the orchestrator opens to Kafka (`KafkaSession`, `reader_consumer`):
partitions are assigned and seeked, never subscribed, so it never joins, rebalances or commits
for the group under test, and it never writes to Kafka. Every call to the broker is bounded by
the session's timeout. It knows nothing of Temporal: a broker error (one of `BROKER_ERRORS`)
reaches the caller as it is, and `activities.kafka.probe` decides what it means for an attempt.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient

from models.kafka import KafkaPositions, PartitionLag, PartitionOffset
from models.scenario import KafkaTarget

Offsets = dict[TopicPartition, int]
#: What a lost or absent broker raises; a check fails its attempt on these.
BROKER_ERRORS = (kafka_errors.KafkaError, OSError, TimeoutError)
_COORDINATOR_LOADING = (
    kafka_errors.GroupCoordinatorNotAvailableError,
    kafka_errors.CoordinatorLoadInProgressError,
)


def reader_consumer(bootstrap: str, *, retry_backoff_ms: int = 200) -> AIOKafkaConsumer:
    """A group-less consumer tuned for reading a window fast (shared with the benchmark)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="bytebot-chaos-check",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
        retry_backoff_ms=retry_backoff_ms,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=8 << 20,
        # A getmany decodes at most this many: the checker in its own process (order_process)
        # checks one batch while the next is decoded, instead of waiting for the whole fetch.
        max_poll_records=5_000,
    )


def to_offsets(rows: list[PartitionOffset]) -> Offsets:
    """Offsets by partition, from their model rows."""
    return {TopicPartition(r.topic, r.partition): r.offset for r in rows}


def to_rows(offsets: Offsets) -> list[PartitionOffset]:
    """Model rows of offsets by partition, sorted by topic and partition."""
    return [
        PartitionOffset(topic=tp.topic, partition=tp.partition, offset=o)
        for tp, o in sorted(offsets.items())
    ]


class KafkaSession:
    """A consumer and an admin client on one bootstrap, every call bounded by a timeout."""

    def __init__(self, bootstrap: str, io_timeout_s: float) -> None:
        self.timeout = io_timeout_s
        self.consumer = reader_consumer(bootstrap)
        # Offsets are asked on a connection of their own: on the reader's they would queue
        # behind a fetch the broker holds for up to fetch_max_wait_ms.
        # Its first end_offsets waits for the topics' metadata in steps of retry_backoff_ms:
        # 20 ms, not 200, took that wait from ~0.4 s to ~0.06 s (bench_overhead.py: the
        # steady state and every hold probe read positions on a session of their own).
        self.offsets = reader_consumer(bootstrap, retry_backoff_ms=20)
        self.admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="bytebot-chaos-check", request_timeout_ms=10_000
        )

    async def open(self) -> None:
        """Connect both clients (raises a broker error if Kafka is not there)."""
        # At once, not one after the other: each start is a bootstrap round trip of its own, and
        # every check and probe opens a session (bench/bench_overhead.py: steady state).
        async with asyncio.timeout(self.timeout):
            started = await asyncio.gather(
                self.consumer.start(), self.offsets.start(), self.admin.start(),
                return_exceptions=True,
            )  # fmt: skip
        # Every start has finished (none left running behind a close); the first error counts.
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome

    async def close(self) -> None:
        """Close every client, bounded; errors on the way out are ignored."""
        cancelled = False
        for client in (self.consumer, self.offsets, self.admin):
            try:
                async with asyncio.timeout(self.timeout):
                    await (client.close() if client is self.admin else client.stop())
            except (*BROKER_ERRORS, RuntimeError):
                pass
            except asyncio.CancelledError:
                # aiokafka's fetcher, closed while a fetch backs off after a broker error,
                # lets that fetch's CancelledError out; only our own cancellation goes on.
                task = asyncio.current_task()
                cancelled = cancelled or bool(task and task.cancelling())
        if cancelled:
            raise asyncio.CancelledError

    async def partitions(self, topics: list[str]) -> list[TopicPartition]:
        """Every partition of the topics that exist."""
        async with asyncio.timeout(self.timeout):  # all topics: naming one may auto-create it
            described = await self.admin.describe_topics(None)
        found = {d["topic"]: [p["partition"] for p in d["partitions"]] for d in described}
        return [TopicPartition(t, p) for t in topics for p in sorted(found.get(t, []))]

    async def end_offsets(self, tps: list[TopicPartition]) -> Offsets:
        """The offset the next record of each partition will get."""
        if not tps:
            return {}
        async with asyncio.timeout(self.timeout):
            return dict(await self.offsets.end_offsets(tps))

    async def positions(self, target: KafkaTarget) -> KafkaPositions:
        """End offsets of the goal and step topics and the group's committed offsets and lag."""
        tps = await self.partitions([target.goal_topic, target.step_topic])
        async with asyncio.timeout(self.timeout):
            while True:  # a fresh broker creates its offsets topic on the first lookup
                try:
                    raw = await self.admin.list_consumer_group_offsets(target.consumer_group)
                    break
                except _COORDINATOR_LOADING:  # not a lost connection: that fails the attempt
                    await asyncio.sleep(0.2)
        committed = {tp: m.offset for tp, m in raw.items() if m.offset >= 0}
        exists, members = await self.group_membership(target.consumer_group)
        ends = await self.end_offsets(sorted(set(tps) | set(committed)))
        lag = [
            PartitionLag(
                topic=tp.topic,
                partition=tp.partition,
                committed=c,
                end=ends.get(tp, c),
                lag=max(0, ends.get(tp, c) - c),
            )
            for tp, c in sorted(committed.items())
        ]
        # Taken once the end offsets are read: a goal run started after `at` wrote its events
        # after those offsets, inside the window that starts here.
        at = datetime.now(UTC)
        return KafkaPositions(
            at=at,
            end_offsets=to_rows({tp: ends[tp] for tp in tps if tp in ends}),
            committed=to_rows(committed),
            total_lag=sum(x.lag for x in lag),
            lag=lag,
            group_exists=exists,
            group_members=members,
        )

    async def group_membership(self, group: str) -> tuple[bool | None, int | None]:
        """Whether the group exists (state not Dead) and how many members it has now."""
        try:
            async with asyncio.timeout(self.timeout):
                responses = await self.admin.describe_consumer_groups([group])
        except _COORDINATOR_LOADING:
            return None, None
        for response in responses:
            for row in getattr(response, "groups", []):
                # (error_code, group_id, state, protocol_type, protocol, members, ...)
                if len(row) > 5 and row[1] == group:
                    return row[2] not in ("Dead", ""), len(row[5])
        return None, None
