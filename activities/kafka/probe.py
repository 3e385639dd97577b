"""The Kafka checks: the consumer group's lag and the per-key order of ByteBot's events.

Owns the two Kafka activities and what a broker error means for an attempt. It reaches Kafka
only through `activities.kafka.client`, whose group-less reader never joins, rebalances or
commits for the group under test and never writes to Kafka; it never opens a client of its own.
Order rules live in `activities.kafka.order`.

A broker error in the middle of a check fails the attempt (retryable, type "KafkaUnavailable")
after heartbeating its progress; the next attempt waits for the broker while heartbeating,
then resumes from the heartbeat details: the window fixed by the first attempt, the positions
read and the checker's per-key state (when it is small enough to heartbeat; else it re-reads
the window). Every call to the broker is bounded by ``io_timeout_s``.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiokafka import TopicPartition
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kafka.client import BROKER_ERRORS, KafkaSession, Offsets, to_offsets, to_rows
from activities.kafka.client import reader_consumer as reader_consumer  # bench/ imports it here
from activities.kafka.order import EventOrderChecker
from activities.kafka.order_process import CheckerProcess
from models.kafka import (
    KafkaCheckInput,
    KafkaCheckProgress,
    KafkaOrderReport,
    KafkaPositions,
    LagReport,
    LagSample,
)
from models.scenario import KafkaTarget
from workflows import names

log = structlog.get_logger(__name__)

_MAX_SAMPLES = 100


def _unavailable(what: str, error: BaseException) -> ApplicationError:
    return ApplicationError(f"Kafka unavailable while {what}: {error!r}", type="KafkaUnavailable")


class KafkaProbeActivities:
    """The Kafka check activities, bound to the worker's default bootstrap.

    Args:
        default_bootstrap: ``host:port`` of a broker, used when the target names none.
        io_timeout_s: Bound of every single call to the broker.
        lag_interval_s: How often the check reads the group's lag and the end offsets.
        progress_interval_s: How often the check heartbeats its resumable progress.
        max_resumable_keys: Above this many keys the progress carries no checker state
            (a heartbeat stays under ~0.5 MB) and a retry re-reads the window instead.
        process_min_events: A window of at least this many events is checked in a second
            process (`CheckerProcess`) while this one reads, if the machine has two cores
            for it; smaller ones here: a child costs 0.3-0.6 s to start, and on the shared
            2-core machine it lost at 100k events (ratio 0.24 vs 0.43), tied at 300k and won
            at 1M (0.37 vs 0.29; bench/RESULTS.md). None: never.
    """

    def __init__(
        self,
        default_bootstrap: str,
        *,
        io_timeout_s: float = 10.0,
        lag_interval_s: float = 1.0,
        progress_interval_s: float = 5.0,
        max_resumable_keys: int = 3_000,
        process_min_events: int | None = 500_000,
    ) -> None:
        self.default_bootstrap = default_bootstrap
        self.io_timeout_s = io_timeout_s
        self.lag_interval_s = lag_interval_s
        self.progress_interval_s = progress_interval_s
        self.max_resumable_keys = max_resumable_keys
        self.process_min_events = process_min_events

    @activity.defn(name=names.READ_KAFKA_POSITIONS)
    async def read_kafka_positions(self, target: KafkaTarget) -> KafkaPositions:
        """End offsets of both topics, and the consumer group's committed offsets and lag."""
        session = KafkaSession(target.bootstrap or self.default_bootstrap, self.io_timeout_s)
        try:
            await session.open()
            positions = await session.positions(target)
        except BROKER_ERRORS as e:
            raise _unavailable("reading positions", e) from e
        finally:
            await session.close()
        log.info("kafka_positions_read", group=target.consumer_group, lag=positions.total_lag)
        return positions

    @activity.defn(name=names.CHECK_KAFKA_EVENTS)
    async def check_kafka_events(self, check: KafkaCheckInput) -> KafkaOrderReport:
        """Check the window's events per key and wait for terminal events and the lag to drain.

        Returns early once every goal run of the window has its terminal event, everything
        written so far is read and the lag is within baseline + tolerance; else at the deadline.
        """
        info = activity.info()
        bound = log.bind(
            workflow_id=info.workflow_id, activity=info.activity_type, attempt=info.attempt
        )
        details = info.heartbeat_details
        progress = KafkaCheckProgress.model_validate(details[0]) if details else None
        target = check.kafka
        session = await self._connect(target.bootstrap or self.default_bootstrap, check.deadline)
        try:
            run = _CheckRun(self, check, session, progress, info.attempt)
            report = await run.execute()
        finally:
            await session.close()
        bound.info(
            "kafka_events_checked",
            events=report.events_read,
            violations=report.violations_total,
            duplicates=report.duplicates,
            no_terminal=report.no_terminal_total,
            drained=report.lag.drained if report.lag else None,
            resumed=report.resumed,
        )
        return report

    async def _connect(self, bootstrap: str, deadline: datetime) -> KafkaSession:
        """Connect, waiting (heartbeating) while the broker is away, until the deadline."""
        give_up = max(deadline, datetime.now(UTC) + timedelta(seconds=30))
        while True:
            session = KafkaSession(bootstrap, self.io_timeout_s)
            try:
                await session.open()
                return session
            except BROKER_ERRORS as e:
                await session.close()
                if datetime.now(UTC) >= give_up:
                    raise _unavailable(f"connecting to {bootstrap}", e) from e
                log.warning("kafka_unreachable", bootstrap=bootstrap, error=repr(e))
            activity.heartbeat(*activity.info().heartbeat_details[:1])
            await asyncio.sleep(1.0)

    def all(self) -> list[object]:
        """Every activity of this adapter, for the worker."""
        return [self.read_kafka_positions, self.check_kafka_events]


class _CheckRun:
    """One attempt of the check: the reading loop and its lag course."""

    def __init__(
        self,
        probe: KafkaProbeActivities,
        check: KafkaCheckInput,
        session: KafkaSession,
        progress: KafkaCheckProgress | None,
        attempt: int,
    ) -> None:
        self.probe, self.check, self.session, self.attempt = probe, check, session, attempt
        target = check.kafka
        self.checker = EventOrderChecker(target.goal_topic, target.step_topic)
        self.progress = progress
        self.started_at = progress.started_at if progress else datetime.now(UTC)
        self.baseline = check.start.total_lag
        self.samples = list(progress.samples) if progress else []
        self.peak = max(
            [
                self.baseline,
                *(p.total_lag for p in check.lag_samples),
                progress.peak_lag if progress else 0,
            ]
        )
        self.drained_at = progress.drained_at if progress else None
        self.latest: KafkaPositions | None = None
        self.resumed = False
        # When the checker runs in a child: the last state it answered and where it was read
        # to, the question still open, and whether its state got too big to heartbeat.
        self.child: CheckerProcess | None = None
        self.child_state: tuple[Offsets, dict[str, Any]] | None = None
        self.child_asked: tuple[Offsets, asyncio.Future[dict[str, Any] | None]] | None = None
        self.child_big = False

    async def execute(self) -> KafkaOrderReport:
        """Read until done or the deadline; raise KafkaUnavailable on a broker error."""
        target, consumer = self.check.kafka, self.session.consumer
        try:
            tps = await self.session.partitions([target.goal_topic, target.step_topic])
            window = (
                to_offsets(self.progress.window_end)
                if self.progress
                else await self.session.end_offsets(tps)
            )
            pos = await self._start_positions(tps)
        except BROKER_ERRORS as e:
            raise _unavailable("starting the check", e) from e
        self.window, self.pos = window, pos
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, pos[tp])
        if self._in_child(window, pos):
            self.child = CheckerProcess(target.goal_topic, target.step_topic)
            await self.child.start()
            if self.resumed and self.progress and self.progress.checker:
                self.child.restore(self.progress.checker)
        try:
            return await self._read(tps, window, pos)
        finally:
            if self.child is not None:
                await self.child.close()

    def _in_child(self, window: Offsets, pos: Offsets) -> bool:
        """Whether to check in a second process: a large window and a core to spare."""
        least = self.probe.process_min_events
        if least is None or len(os.sched_getaffinity(0)) < 2:
            return False
        return sum(max(0, end - pos.get(tp, end)) for tp, end in window.items()) >= least

    async def _read(
        self, tps: list[TopicPartition], window: Offsets, pos: Offsets
    ) -> KafkaOrderReport:
        """The reading loop: until done or the deadline."""
        consumer, child = self.session.consumer, self.child
        t0, next_lag, last_lag, next_progress = time.monotonic(), 0.0, 0.0, 0.0
        grace = timedelta(seconds=30)
        while True:
            try:
                batches: dict[Any, Any] = {}
                if tps:
                    async with asyncio.timeout(self.probe.io_timeout_s):
                        batches = await consumer.getmany(timeout_ms=200)
                else:
                    await asyncio.sleep(0.2)
                feed = child.feed_batch if child is not None else self.checker.feed_batch
                for tp, records in batches.items():
                    feed(tp.topic, tp.partition, records, window.get(tp, 0))
                    pos[tp] = records[-1].offset + 1
                if child is not None:
                    await child.drain()
                now = time.monotonic()
                window_read = all(pos[tp] >= end for tp, end in window.items() if tp in pos)
                if now >= next_lag or (  # about to be done: confirm with fresh offsets now
                    window_read and now >= last_lag + 0.25
                ):
                    await self._read_lag()
                    last_lag, next_lag = now, now + self.probe.lag_interval_s
            except BROKER_ERRORS as e:
                activity.heartbeat(self._progress())
                raise _unavailable("reading events", e) from e
            if now >= next_progress:
                activity.heartbeat(self._progress())
                next_progress = now + self.probe.progress_interval_s
            if window_read and self._settled():
                break
            utc = datetime.now(UTC)
            if utc >= self.check.deadline and (window_read or utc >= self.check.deadline + grace):
                break
        found = await child.report() if child is not None else self.checker.report()
        return self._report(found, window_read, time.monotonic() - t0)

    async def _start_positions(self, tps: list[TopicPartition]) -> Offsets:
        """Where to read from: the progress, else the start; by time for unknown partitions."""
        if self.progress and self.progress.read_to is not None and self.progress.checker:
            self.checker.restore(self.progress.checker)
            self.resumed = True
            return {tp: to_offsets(self.progress.read_to).get(tp, 0) for tp in tps}
        start = to_offsets(self.check.start.end_offsets)
        missing = [tp for tp in tps if tp not in start]
        if missing:
            at_ms = int(self.check.start.at.timestamp() * 1000)
            async with asyncio.timeout(self.probe.io_timeout_s):
                found = await self.session.offsets.offsets_for_times({tp: at_ms for tp in missing})
            ends = await self.session.end_offsets(missing)
            start |= {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in missing}
        return {tp: start[tp] for tp in tps}

    async def _read_lag(self) -> None:
        latest = self.latest = await self.session.positions(self.check.kafka)
        self.peak = max(self.peak, latest.total_lag)
        self.samples.append(LagSample(at=latest.at, total_lag=latest.total_lag))
        if len(self.samples) > _MAX_SAMPLES:  # thin out: keep every other, the newest always
            self.samples = self.samples[-1::-2][::-1]
        if not self._lag_ok():
            self.drained_at = None  # drained counts from the last time it came back
        elif self.drained_at is None:
            self.drained_at = latest.at

    def _lag_ok(self) -> bool:
        return self.latest is not None and (
            self.latest.total_lag <= self.baseline + self.check.kafka.lag_tolerance
        )

    def _settled(self) -> bool:
        """All written so far is read and the lag drained.

        It runs after the goal-runs check, so the runs that could end have ended: a goal run
        still open (waiting for an approval, maybe for a day) is for Temporal to reconcile.
        """
        if not self._lag_ok() or self.latest is None:
            return False
        ends = to_offsets(self.latest.end_offsets)
        return all(self.pos.get(tp, end) >= end for tp, end in ends.items())

    def _progress(self) -> KafkaCheckProgress:
        """What a retry resumes from; the checker's state only while it is small."""
        read_to, state = self._resumable()
        return KafkaCheckProgress(
            started_at=self.started_at,
            window_end=to_rows(self.window),
            read_to=to_rows(read_to) if state is not None else None,
            checker=state,
            peak_lag=self.peak,
            drained_at=self.drained_at,
            samples=self.samples,
        )

    def _resumable(self) -> tuple[Offsets, dict[str, Any] | None]:
        """Where the checker's state is from and the state, if it is small enough to carry.

        A child is never waited for: its last answer is carried (with the positions it was
        asked at, an earlier point a retry resumes from) and the next question is asked.
        """
        most = self.probe.max_resumable_keys
        if self.child is None:
            small = self.checker.keys <= most
            return self.pos, self.checker.state() if small else None
        if self.child_asked is not None and self.child_asked[1].done():
            at, answer = self.child_asked
            self.child_asked = None
            state = answer.result()
            if state is None:  # keys only grow: it stays too big
                self.child_big, self.child_state = True, None
            else:
                self.child_state = (at, state)
        if self.child_asked is None and not self.child_big:
            self.child_asked = (dict(self.pos), self.child.ask_state(most))
        return self.child_state if self.child_state else (self.pos, None)

    def _group_problem(self) -> str | None:
        """Why the lag says nothing: the group does not exist, or nobody consumes."""
        group, start, end = self.check.kafka.consumer_group, self.check.start, self.latest
        if start.group_exists is False and (end is None or end.group_exists is False):
            return f"consumer group {group} does not exist"
        if end is not None and end.group_members == 0:
            had = f" (it had {start.group_members} before the fault)" if start.group_members else ""
            return f"consumer group {group} has no members{had}"
        return None

    def _report(
        self, found: KafkaOrderReport, window_read: bool, elapsed_s: float
    ) -> KafkaOrderReport:
        latest = self.latest
        final = latest.total_lag if latest else self.baseline
        since = self.check.recovered_at or self.started_at
        behind = sorted((x for x in latest.lag if x.lag) if latest else [], key=lambda x: -x.lag)
        lag = LagReport(
            baseline_lag=self.baseline,
            peak_lag=self.peak,
            final_lag=final,
            drained=self._lag_ok(),
            tolerance=self.check.kafka.lag_tolerance,
            drained_after_s=max(0.0, (self.drained_at - since).total_seconds())
            if self.drained_at and self._lag_ok()
            else None,
            samples=self.samples,
            partitions=behind[:20],
            group_members=latest.group_members if latest else None,
            group_problem=self._group_problem(),
            group_lost=bool(self.check.start.group_members)
            and latest is not None
            and latest.group_members == 0,
        )
        notes = [] if window_read else ["the window was not read to its end by the deadline"]
        return found.model_copy(
            update={
                "lag": lag,
                "window_end": to_rows(self.window),
                "window_end_at": self.started_at,
                "read_to": to_rows(self.pos),
                "complete": window_read,
                "attempt": self.attempt,
                "resumed": self.resumed,
                "elapsed_s": round(elapsed_s, 3),
                "notes": notes,
            }
        )
