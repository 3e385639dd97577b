"""How the fault proxy bends one TCP stream: the live rules, and the relay that obeys them.

This kernel has no netem, so faults act on the byte stream in user space, chunk by chunk (a
chunk is what one read returned, at most `CHUNK_BYTES`). Per rule kind:

- delay: each chunk is held for latency +- jitter after it was read; chunks keep their order
  and reading goes on meanwhile, so latency rises while throughput does not fall.
- loss: TCP never shows a lost packet to the application, it retransmits it later. So a chunk
  "lost" with probability ``loss_pct`` is stalled for a retransmission timeout (`RTO_S`,
  doubled for each loss in a row up to `MAX_RTO_S`) and then delivered, in order; a
  connection is never reset for loss. ``loss_pct`` 100 is a blackhole, as a partition.
  Chaos Mesh's correlation is not modelled.
- partition: forwarding stops both ways (a TCP stream cut one way is cut both ways: its acks
  cannot flow) while sockets stay open; new connections are accepted but not forwarded. What
  was held is delivered when the partition heals, as TCP's retransmissions would.
- bandwidth: a token bucket of ``rate_bytes_s`` with ``burst_bytes`` of burst, shared by all of
  one replica's connections per direction (as a rate limit on its network interface would be);
  a full queue pushes back on the sender through TCP flow control instead of dropping.
- dns: a new connection is closed at once (a failed name resolution of a new connection);
  existing connections keep working.

Rules are looked up for every chunk, with their expiry checked right then, so a rule ends at
its expiry to within one chunk, whoever wrote it. This module never opens a listening socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from faultproxy.control import (
    Route,
    RouteStats,
    Rule,
    RuleKind,
    StreamDirection,
    read_rules,
)

log = structlog.get_logger(__name__)

CHUNK_BYTES = 64 * 1024
#: Bytes written at once while a bandwidth rule holds, so a bucket's debt stays small.
SLICE_BYTES = 8 * 1024
QUEUE_CHUNKS = 256
RTO_S = 0.2
MAX_RTO_S = 3.2
HOLD_POLL_S = 0.05


class RuleBook:
    """The live rules of a control directory, re-read by `reload`, answered per route."""

    def __init__(self, control_dir: Path) -> None:
        self.control_dir = control_dir
        self._rules: list[Rule] = []
        self.expired: list[str] = []
        self.unreadable: list[str] = []

    def reload(self) -> None:
        """Re-read the rule files; expired and unreadable ones are kept aside, not applied."""
        rules, bad = read_rules(self.control_dir)
        now = time.time()
        live = [r for r in rules if r.live(now)]
        if {r.fault_id for r in live} != {r.fault_id for r in self._rules}:
            log.info("rules_changed", live=[r.fault_id for r in live])
        if bad and bad != self.unreadable:
            log.warning("rules_unreadable", files=bad)
        self._rules, self.unreadable = live, bad
        self.expired = [r.fault_id for r in rules if not r.live(now)]

    @property
    def live_ids(self) -> list[str]:
        """Fault ids of the rules in force."""
        now = time.time()
        return [r.fault_id for r in self._rules if r.live(now)]

    def active(
        self, route: Route, kind: RuleKind | None = None, direction: StreamDirection | None = None
    ) -> list[Rule]:
        """The rules in force now on ``route`` (of ``kind``, shaping ``direction``)."""
        now = time.time()
        return [
            r
            for r in self._rules
            if r.live(now)
            and r.covers(route)
            and (kind is None or r.kind == kind)
            and (direction is None or r.shapes(direction))
        ]

    def partitioned(self, route: Route) -> bool:
        """Whether forwarding on ``route`` is stopped (a partition, or 100% loss)."""
        return any(
            r.kind == "partition" or (r.kind == "loss" and r.params.loss_pct >= 100)
            for r in self.active(route)
        )

    def dns_failing(self, route: Route) -> bool:
        """Whether new connections on ``route`` fail as an unresolvable name would."""
        return bool(self.active(route, "dns"))


class TokenBucket:
    """A token bucket that lets a taker run into debt and then sleeps the debt off."""

    def __init__(self, rate_bytes_s: float, burst_bytes: int) -> None:
        self.rate = max(rate_bytes_s, 1.0)
        self.burst = float(max(burst_bytes, 1))
        self.tokens = self.burst
        self.stamp = time.monotonic()

    async def take(self, size: int) -> float:
        """Spend ``size`` bytes of tokens, sleeping while in debt; the seconds slept."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= size
        if self.tokens >= 0:
            return 0.0
        wait = -self.tokens / self.rate
        await asyncio.sleep(wait)
        return wait


class Shaper:
    """Relays streams under the rules of a `RuleBook`."""

    def __init__(self, book: RuleBook, rng: random.Random | None = None) -> None:
        self.book = book
        self.rng = rng or random.Random()
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}

    def forget_expired_buckets(self) -> None:
        """Drop the buckets of rules no longer in force."""
        live = set(self.book.live_ids)
        for key in [k for k in self._buckets if k[0] not in live]:
            del self._buckets[key]

    async def hold_while_partitioned(self, route: Route, stats: RouteStats) -> None:
        """Return once ``route`` is not partitioned; counts the time held."""
        started = None
        while self.book.partitioned(route):
            if started is None:
                started = time.monotonic()
                stats.chunks_held += 1  # seen while it happens, not only once it heals
            await asyncio.sleep(HOLD_POLL_S)
        if started is not None:
            stats.blackholed_s += time.monotonic() - started

    async def relay(
        self,
        route: Route,
        stats: RouteStats,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        direction: StreamDirection,
        abort: Callable[[], None],
    ) -> None:
        """Copy ``src`` to ``dst`` under the rules until EOF; on an error, ``abort`` both ends."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUE_CHUNKS)
        pump = asyncio.create_task(self._read(route, stats, src, queue, direction))
        try:
            await self._write(route, stats, dst, queue, direction)
        except (OSError, RuntimeError):  # reset, broken pipe, or writing after close
            abort()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _read(
        self,
        route: Route,
        stats: RouteStats,
        src: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        direction: StreamDirection,
    ) -> None:
        last_due, losses_in_row = 0.0, 0
        try:
            while data := await src.read(CHUNK_BYTES):
                now = time.monotonic()
                delay = 0.0
                for rule in self.book.active(route, "delay", direction):
                    jitter = rule.params.jitter_s
                    spread = self.rng.uniform(-jitter, jitter) if jitter else 0.0
                    delay += max(0.0, rule.params.latency_s + spread)
                if delay:
                    stats.chunks_delayed += 1
                lost = any(
                    self.rng.random() * 100 < r.params.loss_pct
                    for r in self.book.active(route, "loss", direction)
                )
                if lost:
                    losses_in_row += 1
                    delay += min(RTO_S * 2 ** (losses_in_row - 1), MAX_RTO_S)
                    stats.chunks_lost += 1
                else:
                    losses_in_row = 0
                last_due = max(now + delay, last_due)  # never overtake an earlier chunk
                await queue.put((last_due, data))
        except OSError:
            pass
        await queue.put(None)

    async def _write(
        self,
        route: Route,
        stats: RouteStats,
        dst: asyncio.StreamWriter,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        direction: StreamDirection,
    ) -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            for start in range(0, len(data), SLICE_BYTES):
                piece = data[start : start + SLICE_BYTES]
                await self.hold_while_partitioned(route, stats)
                for rule in self.book.active(route, "bandwidth", direction):
                    key = (rule.fault_id, route.replica, direction)
                    bucket = self._buckets.get(key)
                    if bucket is None:
                        params = rule.params
                        bucket = TokenBucket(params.rate_bytes_s, params.burst_bytes)
                        self._buckets[key] = bucket
                    stats.bytes_shaped += len(piece)
                    stats.throttled_s += await bucket.take(len(piece))
                dst.write(piece)
                await dst.drain()
                if direction == "to":
                    stats.bytes_to += len(piece)
                else:
                    stats.bytes_from += len(piece)
        if dst.can_write_eof():
            dst.write_eof()
