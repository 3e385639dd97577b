"""The per-key lifecycle order checker for ByteBot's goal and step events. Pure: no I/O.

Owns the rules of "Kafka events maintain correct sequence": feed it records (topic, partition,
offset, key, value) in partition order and it finds

- lifecycle violations per key: a terminal event (``*_COMPLETED``/``*_FAILED``) with no start
  before it, anything after a terminal event, a start repeated under a new eventId, an event on
  the wrong topic or under the wrong record key;
- per goal run, read in timestamp order across its keys: step numbers that go back, step events
  before GOAL_STARTED or after the goal's terminal event;
- duplicates by eventId (at-least-once delivery re-sends an event with its id; they are counted
  and left out of the order checks);
- gaps: goal runs in the window with no terminal event;
- unparseable records (not JSON, missing or mistyped fields, unknown eventType).

Memory is bounded by keys, not events: per step key it keeps the first start and terminal
event (id, timestamp, offset), per goal run the same for the goal key. It never sorts or keeps
events. A step whose first event seen is terminal is only a violation when its goal run's
GOAL_STARTED was read too: otherwise the step began before the window that was read.

It must never read Kafka, sleep or log: the activity in ``kafka_probe`` does that, and the
benchmark measures this module's speed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from models.kafka import GoalRunGap, KafkaOrderReport, OrderViolation

_GOAL_START, _GOAL_END, _STEP_START, _STEP_END = 1, 2, 3, 4
_KIND = {
    "GOAL_STARTED": _GOAL_START, "GOAL_COMPLETED": _GOAL_END, "GOAL_FAILED": _GOAL_END,
    "STEP_STARTED": _STEP_START, "STEP_COMPLETED": _STEP_END, "STEP_FAILED": _STEP_END,
}  # fmt: skip
_raw_decode = json.JSONDecoder().raw_decode


def _loads(value: bytes) -> Any:
    """json.loads, twice as fast for the common case: UTF-8 JSON with no surrounding space."""
    text = value.decode()
    try:
        obj, end = _raw_decode(text)
    except ValueError:
        return json.loads(text)  # leading whitespace is fine; else raises the usual error
    return obj if end == len(text) else json.loads(text)


class RecordLike(Protocol):
    """What the checker reads of a Kafka record (aiokafka's ConsumerRecord fits)."""

    offset: int
    key: bytes | None
    value: bytes | None


class _At(NamedTuple):
    """Where an event is, for evidence: its key, partition, offset, timestamp and type."""

    key: str
    part: int
    off: int
    ts: int
    type: str

    def __str__(self) -> str:
        return f"{self.type} {self.key} ts={self.ts} @{self.part}:{self.off}"


def _hi(gid: str, number: int, step: _Key) -> _At:
    """The step's latest event: its terminal one, else its start."""
    if step.end_id is None:
        return _At(f"{gid}-{number}", step.part, step.start_off, step.start_ts, "STEP_STARTED")
    return _At(f"{gid}-{number}", step.part, step.end_off, step.end_ts, step.end_type)


class _Key:
    """One key's lifecycle: its first start and first terminal event (id, timestamp, offset)."""

    __slots__ = ("part", "start_id", "start_ts", "start_off", "end_id", "end_type", "end_ts",
                 "end_off", "orphan")  # fmt: skip
    _FIELDS = __slots__

    def __init__(self, part: int) -> None:
        self.part = part
        self.start_id: str | None = None
        self.start_ts = self.start_off = self.end_ts = self.end_off = 0
        self.end_id: str | None = None
        self.end_type = ""
        self.orphan = False

    def row(self) -> list[Any]:
        """The state as a JSON-able list."""
        return [getattr(self, f) for f in self._FIELDS]

    def load(self, row: list[Any]) -> None:
        """Set the state from `row()`."""
        for f, v in zip(self._FIELDS, row, strict=True):
            setattr(self, f, v)


class _Goal(_Key):
    """The goal key's lifecycle, whether its goal run is in the window, and its step keys."""

    __slots__ = ("in_window", "steps")

    def __init__(self, part: int) -> None:
        super().__init__(part)
        self.in_window = False
        self.steps: dict[int, _Key] = {}


class EventOrderChecker:
    """Feed records partition by partition; `report()` names what is out of order.

    Args:
        goal_topic: Topic of the goal events (keyed by goalRunId).
        step_topic: Topic of the step events (keyed ``<goalRunId>-<stepNumber>``).
        max_examples: At most this many violations, duplicates and gaps are kept as evidence;
            the totals still count all of them.
        clock_skew_ms: Timestamps of different keys may disagree by this much before it counts.
    """

    def __init__(
        self, goal_topic: str, step_topic: str, *, max_examples: int = 100, clock_skew_ms: int = 0
    ) -> None:
        self.goal_topic = goal_topic
        self.step_topic = step_topic
        self.max_examples = max_examples
        self.skew = clock_skew_ms
        self.events_read = 0
        self.duplicates = 0
        self.unparseable = 0
        self.violations_total = 0
        self.open_in_window = 0
        self._goals: dict[str, _Goal] = {}
        self._keys = 0
        self._violations: list[OrderViolation] = []
        self._dup_examples: list[str] = []

    @property
    def keys(self) -> int:
        """Keys seen (goal runs and steps, in the window or not): what the state grows with."""
        return self._keys

    def feed_batch(
        self, topic: str, partition: int, records: Iterable[RecordLike], window_end: int
    ) -> None:
        """Feed one partition's records in offset order; offsets below `window_end` are in it."""
        feed = self.feed
        for r in records:
            feed(topic, partition, r.offset, r.key, r.value, r.offset < window_end)

    def feed(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        in_window: bool = True,
    ) -> None:  # fmt: skip
        """Check one record. `in_window` puts its goal run in scope for gaps."""
        self.events_read += 1
        try:
            ev = _loads(value)  # type: ignore[arg-type]  # None: TypeError, counted
            kind = _KIND[ev["eventType"]]
            gid, eid, ts = ev["goalRunId"], ev["eventId"], ev["timestamp"]
            if type(gid) is not str or type(eid) is not str or type(ts) is not int:
                raise TypeError("goalRunId and eventId must be strings, timestamp an integer")
            step_no = ev.get("stepNumber") if kind > _GOAL_END else None
            if kind > _GOAL_END and type(step_no) is not int:
                raise TypeError(f"stepNumber must be an integer, got {step_no!r}")
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            self._bad(topic, partition, offset, key, value, e)
            return
        goal = self._goals.get(gid)
        if goal is None:
            goal = self._goals[gid] = _Goal(partition)
            self._keys += 1
        if in_window and not goal.in_window:
            goal.in_window = True
            if goal.end_id is None:
                self.open_in_window += 1
        etype = ev["eventType"]
        k: _Key | None
        if step_no is None:
            name, k, home = gid, goal, self.goal_topic
            goal.part = partition
        else:
            name, home = f"{gid}-{step_no}", self.step_topic
            k = goal.steps.get(step_no)
            if k is None:
                k = goal.steps[step_no] = _Key(partition)
                self._keys += 1
        if topic != home:
            self._violate(name, gid, topic, partition, offset, "", etype, f"not on {home}")
        if key is not None and key != name.encode():
            shown = key.decode(errors="replace")
            self._violate(shown, gid, topic, partition, offset, "", f"{etype} {name}",
                          f"record key '{shown}' is not the event's key '{name}'")  # fmt: skip
        if kind & 1:  # a start (_GOAL_START or _STEP_START)
            if k.start_id is None and k.end_id is None:
                k.start_id, k.start_ts, k.start_off = eid, ts, offset
            elif eid == k.start_id:
                self._duplicate(eid, etype, name, topic, partition, offset, k.start_off)
            elif k.end_id is not None:
                self._violate(name, gid, topic, partition, offset, f"{k.end_type}@{k.end_off}",
                              f"{etype}@{offset}", "an event after a terminal event")  # fmt: skip
            else:
                self._violate(name, gid, topic, partition, offset, f"{etype}@{k.start_off}",
                              f"{etype}@{offset}", "started again under a new eventId")  # fmt: skip
        elif k.end_id is None:
            k.end_id, k.end_type, k.end_ts, k.end_off = eid, etype, ts, offset
            k.orphan = k.start_id is None
            if k is goal and goal.in_window:
                self.open_in_window -= 1
        elif eid == k.end_id:
            self._duplicate(eid, etype, name, topic, partition, offset, k.end_off)
        else:
            self._violate(name, gid, topic, partition, offset, f"{k.end_type}@{k.end_off}",
                          f"{etype}@{offset}", "an event after a terminal event")  # fmt: skip

    def _duplicate(
        self, eid: str, etype: str, key: str, topic: str, partition: int, offset: int, first: int
    ) -> None:
        self.duplicates += 1
        if len(self._dup_examples) < self.max_examples:
            self._dup_examples.append(
                f"{etype} {key} eventId={eid} at {topic}/{partition}@{offset} (first at @{first})"
            )

    def _violate(
        self, key: str, gid: str | None, topic: str, partition: int, offset: int,
        previous: str, event: str, reason: str,
    ) -> None:  # fmt: skip
        self.violations_total += 1
        if len(self._violations) < self.max_examples:
            found = OrderViolation(
                key=key, goal_run_id=gid, topic=topic, partition=partition, offset=offset,
                previous=previous, event=event, reason=reason,
            )  # fmt: skip
            self._violations.append(found)

    def _bad(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        error: Exception,
    ) -> None:  # fmt: skip
        self.unparseable += 1
        shown_key = key.decode(errors="replace") if key is not None else ""
        shown = (value or b"")[:80].decode(errors="replace")
        reason = f"unparseable record: {type(error).__name__}: {error}"
        self._violate(shown_key, None, topic, partition, offset, "", shown, reason[:200])

    def report(self) -> KafkaOrderReport:
        """What was found so far, as the report's order part (no lag)."""
        found = list(self._violations)
        total = self.violations_total
        gaps: list[GoalRunGap] = []
        in_scope = 0
        for gid, goal in self._goals.items():
            for v in self._timestamp_order(gid, goal):
                total += 1
                if len(found) < self.max_examples:
                    found.append(v)
            if goal.in_window:
                in_scope += 1
                if goal.end_id is None:
                    gaps.append(self._gap(gid, goal))
        return KafkaOrderReport(
            events_read=self.events_read, keys=self._keys, goal_runs=in_scope, violations=found,
            violations_total=total, duplicates=self.duplicates,
            duplicate_examples=list(self._dup_examples), unparseable=self.unparseable,
            gaps=[g.goal_run_id for g in gaps], gap_details=gaps[: self.max_examples],
        )  # fmt: skip

    def _timestamp_order(self, gid: str, goal: _Goal) -> Iterable[OrderViolation]:
        """Per goal run, read in timestamp order: steps never go back, none outside the goal."""
        skew, steps = self.skew, goal.steps
        started, ended = goal.start_id is not None, goal.end_id is not None
        prev: tuple[int, _Key] | None = None  # the step with the latest event so far
        prev_ts = -(1 << 62)
        for number in sorted(steps):
            step = steps[number]
            lo_ts = step.start_ts if step.start_id is not None else step.end_ts
            hi_ts = step.end_ts if step.end_id is not None else step.start_ts
            if (
                (step.orphan and started)
                or (started and lo_ts < goal.start_ts - skew)
                or (ended and hi_ts > goal.end_ts + skew)
                or lo_ts < prev_ts - skew
            ):
                latest = _hi(gid, *prev) if prev is not None else None
                yield from self._step_findings(gid, goal, number, step, latest)
            if hi_ts > prev_ts:
                prev_ts, prev = hi_ts, (number, step)

    def _step_findings(
        self, gid: str, goal: _Goal, number: int, step: _Key, prev: _At | None
    ) -> Iterable[OrderViolation]:
        """The findings of one step against its goal run and the steps below it (rare path)."""
        skew, name = self.skew, f"{gid}-{number}"
        if step.start_id is not None:
            lo = _At(name, step.part, step.start_off, step.start_ts, "STEP_STARTED")
        else:
            lo = _At(name, step.part, step.end_off, step.end_ts, step.end_type)
        hi = _hi(gid, number, step) if step.end_id is not None else lo
        g_start = _At(gid, goal.part, goal.start_off, goal.start_ts, "GOAL_STARTED")
        g_end = _At(gid, goal.part, goal.end_off, goal.end_ts, goal.end_type)
        if step.orphan and goal.start_id is not None:
            yield self._pair(gid, g_start, hi, "a terminal event with no STEP_STARTED before it")
        if goal.start_id is not None and lo.ts < goal.start_ts - skew:
            yield self._pair(gid, lo, g_start, "a step event before GOAL_STARTED")
        if goal.end_id is not None and hi.ts > goal.end_ts + skew:
            yield self._pair(gid, g_end, hi, f"a step event after {goal.end_type}")
        if prev is not None and lo.ts < prev.ts - skew:
            yield self._pair(gid, lo, prev, "step numbers went back in timestamp order")

    def _pair(self, gid: str, first: _At, then: _At, reason: str) -> OrderViolation:
        """A violation on `then` (its key), `first` being the event before it in time."""

        def topic(at: _At) -> str:
            return self.goal_topic if at.key == gid else self.step_topic

        return OrderViolation(
            key=then.key, goal_run_id=gid, topic=topic(then), partition=then.part,
            offset=then.off, previous=str(first), event=str(then), reason=reason,
            previous_key=first.key, previous_topic=topic(first), previous_partition=first.part,
            previous_offset=first.off,
        )  # fmt: skip

    def _gap(self, gid: str, goal: _Goal) -> GoalRunGap:
        last = max(goal.steps) if goal.steps else None
        return GoalRunGap(
            goal_run_id=gid, started=goal.start_id is not None,
            started_at=f"{self.goal_topic}/{goal.part}@{goal.start_off}"
            if goal.start_id is not None else None,
            last_step=last,
            last_step_done=bool(last is not None and goal.steps[last].end_id is not None),
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as JSON-able data (heartbeat details)."""
        goals = {
            gid: [g.in_window, g.row(), {str(n): k.row() for n, k in g.steps.items()}]
            for gid, g in self._goals.items()
        }
        return {
            "events_read": self.events_read, "duplicates": self.duplicates,
            "unparseable": self.unparseable, "violations_total": self.violations_total,
            "violations": [v.model_dump(mode="json") for v in self._violations],
            "dup_examples": list(self._dup_examples), "goals": goals,
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from `state()` of an earlier checker (e.g. a previous activity attempt)."""
        self.events_read, self.duplicates = state["events_read"], state["duplicates"]
        self.unparseable, self.violations_total = state["unparseable"], state["violations_total"]
        self._violations = [OrderViolation.model_validate(v) for v in state["violations"]]
        self._dup_examples = list(state["dup_examples"])
        self._goals, self.open_in_window, self._keys = {}, 0, 0
        for gid, (in_window, row, steps) in state["goals"].items():
            g = self._goals[gid] = _Goal(0)
            g.in_window = in_window
            g.load(row)
            self._keys += 1 + len(steps)
            for n, step_row in steps.items():
                k = g.steps[int(n)] = _Key(0)
                k.load(step_row)
            self.open_in_window += bool(in_window and g.end_id is None)
