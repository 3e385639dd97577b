"""The per-key lifecycle checker for ByteBot's goal and step events. Pure: no I/O.

Feed it records (topic, partition, offset, key, value) in partition order, as ByteBot's worker
writes them (JSON, ISO-8601 timestamps, a fresh random eventId at every emission), and it finds

- lifecycle violations per key, Kafka's own guarantee: a step's COMPLETED or FAILED with no
  STARTED before it, an approval answered that nobody asked for, a goal resumed that was never
  paused, anything after a goal's terminal event, an event on the wrong topic or record key;
- re-sent events, recognised by content (the same type again on the same key, which is what a
  retried emit writes under a new id) as well as by id: counted, allowed under at-least-once;
- what the window lost: goal runs with no terminal event (`no_terminal`, to be reconciled with
  Temporal: a run that still waits for approval has none yet), goal runs whose first event was
  not GOAL_STARTED (`no_start`: started before the window, or their GOAL_STARTED was lost), and
  steps still open when their goal run COMPLETED (a lost STEP_COMPLETED);
- across topics (goal vs step events) only a report: step events stamped before their goal's
  GOAL_STARTED or after its end. Kafka orders per key, so this is evidence, never a failure.

Legitimate lifecycles pass: a step that fails and is retried on its key, a replan (step numbers
from 1 again: a step key that ended starts again), approvals, skips, pauses, cancels.

Memory grows with keys, not events. It never reads Kafka, sleeps or logs: `kafka_probe` does
that, and the benchmark measures this module's speed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from activities.kafka.order_state import (
    _G_ENDED,
    _G_NEW,
    _G_PAUSED,
    _G_RUNNING,
    _MOVES_FROM,
    _S_APPROVED,
    _S_AWAITING,
    _S_IDLE,
    _S_NEW,
    _S_RUNNING,
    _STATE_WORDS,
    _STEP_BEGIN,
    _STEP_NEEDS,
    GOAL_TERMINAL,
    GOAL_TYPES,
    STEP_TYPES,
    RecordLike,
    _before,
    _Goal,
    _parse,
    _Step,
    _Where,
)
from models.kafka import KafkaOrderReport, LifecycleCounts, OrderViolation


class EventOrderChecker:
    """Feed records partition by partition; `report()` names what is out of order.

    Args:
        goal_topic: Topic of the goal events (keyed by goalRunId).
        step_topic: Topic of the step events (keyed ``<goalRunId>-<stepNumber>``).
        max_examples: At most this many examples of each finding are kept; totals count all.
    """

    def __init__(self, goal_topic: str, step_topic: str, *, max_examples: int = 100) -> None:
        self.goal_topic = goal_topic
        self.step_topic = step_topic
        self.max_examples = max_examples
        self.events_read = 0
        self.window_events = 0
        self.duplicates = 0
        self.unparseable = 0
        self.violations_total = 0
        self._goals: dict[str, _Goal] = {}
        self._keys = 0
        self._violations: list[OrderViolation] = []
        self._dup_examples: list[str] = []
        self._turns: dict[str, int] = dict.fromkeys(LifecycleCounts.model_fields, 0)

    @property
    def keys(self) -> int:
        """Keys seen (goal runs and steps, in the window or not): what the state grows with."""
        return self._keys

    def feed_batch(
        self, topic: str, partition: int, records: Iterable[RecordLike], window_end: int
    ) -> None:
        """Feed one partition's records in offset order; offsets below `window_end` are in it."""
        self.feed_rows(topic, partition, ((r.offset, r.key, r.value) for r in records), window_end)

    def feed(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        in_window: bool = True,
    ) -> None:
        """Check one record. `in_window` puts its goal run in scope of the window's findings."""
        self.feed_rows(topic, partition, ((offset, key, value),), offset + 1 if in_window else 0)

    def feed_rows(
        self,
        topic: str,
        partition: int,
        rows: Iterable[tuple[int, bytes | None, bytes | None]],
        window_end: int,
    ) -> None:
        """Feed one partition's (offset, key, value) rows in offset order (see `feed_batch`).

        The hot loop of the check (bench/bench_event_order.py): what every record needs is
        inlined here with its lookups bound once per batch, and the usual step moves
        (STARTED on a new key, COMPLETED after STARTED, ...) are taken here; everything else
        (goal events, re-sends, retries, violations) goes through `_goal_event` and
        `_step_event`, which hold the rules.
        """
        on_goal_topic, on_step_topic = topic == self.goal_topic, topic == self.step_topic
        goals, parse, moves_from = self._goals, _parse, _MOVES_FROM
        goals_get, step_types, goal_types = goals.get, STEP_TYPES, GOAL_TYPES
        read = window = keys = 0
        try:
            for offset, key, value in rows:
                read += 1
                try:
                    ev = parse(value)  # type: ignore[arg-type]  # None: TypeError, counted
                    etype, gid, eid = ev["eventType"], ev["goalRunId"], ev["eventId"]
                    ts = ev["timestamp"]
                    if (
                        type(gid) is not str
                        or type(eid) is not str
                        or type(ts) is not str
                        or not ts
                    ):
                        raise TypeError("goalRunId, eventId and timestamp must be strings")
                    if etype in step_types:
                        step_no = ev["stepNumber"]
                        if type(step_no) is not int:
                            raise TypeError(f"stepNumber must be an integer, got {step_no!r}")
                    elif etype in goal_types:
                        step_no = None
                    else:
                        raise ValueError(f"unknown eventType {etype!r}")
                except (ValueError, TypeError, KeyError, AttributeError) as e:
                    self._bad(topic, partition, offset, key, value, e)
                    continue
                goal = goals_get(gid)
                if goal is None:
                    goal = goals[gid] = _Goal()
                    goal.first_ts = ts
                    keys += 1
                if offset < window_end:
                    window += 1
                    goal.in_window = True
                if step_no is None:
                    if not on_goal_topic:
                        reason = f"not on {self.goal_topic}"
                        self._violate(gid, gid, topic, partition, offset, "", etype, reason)
                    if key is not None and key != gid.encode():
                        self._wrong_key(key, gid, gid, topic, partition, offset, etype)
                    self._goal_event(goal, gid, etype, eid, ts, (topic, partition, offset))
                    continue
                name = f"{gid}-{step_no}"
                if not on_step_topic:
                    reason = f"not on {self.step_topic}"
                    self._violate(name, gid, topic, partition, offset, "", etype, reason)
                if key is not None and key != name.encode():
                    self._wrong_key(key, name, gid, topic, partition, offset, etype)
                step = goal.steps.get(step_no)
                if step is None:
                    step = goal.steps[step_no] = _Step()
                    keys += 1
                state = step.state
                if etype != step.last_type and eid != step.last_id:
                    moved = moves_from[state].get(etype)
                    if moved is None and state == _S_NEW and etype == "STEP_STARTED":
                        moved = _S_RUNNING  # what _STEP_BEGIN says, with nothing to count
                    if moved is not None:  # a legal move: no finding, no counter
                        lo = step.lo_ts
                        if not lo:
                            step.lo_ts = step.hi_ts = ts
                        elif ts[-1] == "Z" and len(ts) == len(lo) and lo[-1] == "Z":
                            if ts < lo:
                                step.lo_ts = ts
                            hi = step.hi_ts
                            if hi < ts if len(ts) == len(hi) and hi[-1] == "Z" else _before(hi, ts):
                                step.hi_ts = ts
                        else:
                            if _before(ts, lo):
                                step.lo_ts = ts
                            if _before(step.hi_ts, ts):
                                step.hi_ts = ts
                        step.last_type, step.last_id, step.state = etype, eid, moved
                        step.ended = etype if moved == _S_IDLE else ""
                        continue
                self._step_event(goal, step, name, etype, eid, ts, (topic, partition, offset))
        finally:
            self.events_read += read
            self.window_events += window
            self._keys += keys

    def _wrong_key(
        self, key: bytes, name: str, gid: str, topic: str, partition: int, offset: int, etype: str
    ) -> None:
        shown = key.decode(errors="replace")
        reason = f"record key '{shown}' is not the event's key '{name}'"
        self._violate(shown, gid, topic, partition, offset, "", f"{etype} {name}", reason)

    def _resent(self, last_type: str, last_id: str, etype: str, eid: str, where: str) -> bool:
        """The same event again (same id, or same type on the key): a retried emit."""
        if etype != last_type and eid != last_id:
            return False
        self.duplicates += 1
        if len(self._dup_examples) < self.max_examples:
            how = "same eventId" if eid == last_id else "same content, new eventId"
            self._dup_examples.append(f"{etype} {where} ({how})")
        return True

    def _goal_event(self, goal: _Goal, gid: str, etype: str, eid: str, ts: str, at: _Where) -> None:
        if self._resent(goal.last_type, goal.last_id, etype, eid, gid):
            goal.last_id = eid
            return
        prev, state = goal.last_type, goal.state
        goal.last_type, goal.last_id = etype, eid
        if etype == "GOAL_STARTED":
            if state == _G_NEW:
                goal.state, goal.started, goal.start_ts = _G_RUNNING, True, ts
                return
            self._violate(gid, gid, *at, prev, etype, "GOAL_STARTED again under the same id")
        elif state == _G_ENDED:
            self._violate(gid, gid, *at, prev, etype, f"an event after {goal.end_type}")
        elif etype in GOAL_TERMINAL:
            goal.state, goal.end_ts, goal.end_type = _G_ENDED, ts, etype
            self._turns["cancels"] += etype == "GOAL_CANCELLED"
        elif etype == "GOAL_PAUSED":
            goal.state = _G_PAUSED
            self._turns["pauses"] += 1
        elif state in (_G_PAUSED, _G_NEW):  # GOAL_RESUMED
            goal.state = _G_RUNNING
        else:
            self._violate(gid, gid, *at, prev, etype, "GOAL_RESUMED with no GOAL_PAUSED before it")

    def _step_event(
        self, goal: _Goal, step: _Step, name: str, etype: str, eid: str, ts: str, at: _Where
    ) -> None:
        # _before inlined for the common shape (both UTC, same length): plain string order.
        lo, hi, utc = step.lo_ts, step.hi_ts, ts[-1] == "Z"
        if not lo:
            step.lo_ts = step.hi_ts = ts
        else:
            if ts < lo if utc and len(ts) == len(lo) and lo[-1] == "Z" else _before(ts, lo):
                step.lo_ts = ts
            if hi < ts if utc and len(ts) == len(hi) and hi[-1] == "Z" else _before(hi, ts):
                step.hi_ts = ts
        if (etype == step.last_type or eid == step.last_id) and self._resent(
            step.last_type, step.last_id, etype, eid, name
        ):
            step.last_id = eid
            return
        prev, state = step.last_type, step.state
        step.last_type, step.last_id = etype, eid
        moved = _MOVES_FROM[state].get(etype)
        if moved is not None:
            step.state = moved
            step.ended = etype if moved == _S_IDLE else ""
            return
        begin = _STEP_BEGIN.get(etype)
        if begin is not None and state in (_S_NEW, _S_IDLE):
            if state == _S_IDLE and etype != "STEP_SKIPPED":
                # Started again: after a failure it is a retry, after an end a replan.
                self._turns["step_retries" if step.ended == "STEP_FAILED" else "replans"] += 1
            self._turns["approvals"] += etype == "STEP_APPROVAL_REQUESTED"
            self._turns["skips"] += etype == "STEP_SKIPPED"
            step.state, step.ended = begin, etype if begin == _S_IDLE else ""
            return
        if state == _S_NEW and not goal.started:
            # The key's first event read: if its goal run began before the window, what came
            # before it is simply not in the window; if GOAL_STARTED turns up on another
            # partition, it is a violation (see `report`).
            step.state = _S_APPROVED if etype == "STEP_APPROVED" else _S_IDLE
            step.ended = etype if step.state == _S_IDLE else ""
            step.orphan = [etype, *at]
            return
        need = _STEP_NEEDS.get(etype)
        if need and state in (_S_NEW, _S_IDLE):
            reason = f"{etype} with no {need} before it"
        elif need == "STEP_STARTED" and state == _S_APPROVED:
            reason = f"{etype} with no STEP_STARTED after its approval"
        else:
            reason = f"{etype} while the step was {_STATE_WORDS[state]}"
        self._violate(name, goal_id(name), *at, prev or "(first on key)", etype, reason)
        # Keep reading this key as the event says it now is.
        step.state = _S_IDLE if etype in ("STEP_COMPLETED", "STEP_FAILED") else step.state
        step.ended = etype if step.state == _S_IDLE else step.ended

    def _violate(
        self,
        key: str,
        gid: str | None,
        topic: str,
        partition: int,
        offset: int,
        previous: str,
        event: str,
        reason: str,
    ) -> None:
        self.violations_total += 1
        if len(self._violations) < self.max_examples:
            found = OrderViolation(
                key=key,
                goal_run_id=gid,
                topic=topic,
                partition=partition,
                offset=offset,
                previous=previous,
                event=event,
                reason=reason,
            )
            self._violations.append(found)

    def _bad(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: Exception,
    ) -> None:
        self.unparseable += 1
        shown_key = key.decode(errors="replace") if key is not None else ""
        shown = (value or b"")[:80].decode(errors="replace")
        reason = f"unparseable record: {type(error).__name__}: {error}"
        self._violate(shown_key, None, topic, partition, offset, "", shown, reason[:200])

    def report(self) -> KafkaOrderReport:
        """What was found so far, as the report's order part (no lag)."""
        cap = self.max_examples
        no_terminal: list[str] = []
        no_start: list[tuple[str, str]] = []
        lost_steps: list[str] = []
        cross: list[str] = []
        counts = {"no_terminal": 0, "no_start": 0, "lost": 0, "cross": 0}
        found, total = list(self._violations), self.violations_total
        in_scope = 0
        for gid, goal in self._goals.items():
            if not goal.in_window:
                continue
            in_scope += 1
            if goal.state != _G_ENDED:
                counts["no_terminal"] += 1
                if len(no_terminal) < cap:
                    no_terminal.append(gid)
            if not goal.started:
                counts["no_start"] += 1
                no_start.append((goal.first_ts, gid))
            for number, step in goal.steps.items():
                if step.orphan and goal.started:
                    total += 1
                    if len(found) < cap:
                        found.append(_orphan_violation(gid, number, step.orphan))
                if goal.end_type == "GOAL_COMPLETED" and step.state in (
                    _S_RUNNING,
                    _S_AWAITING,
                    _S_APPROVED,
                ):
                    counts["lost"] += 1
                    if len(lost_steps) < cap:
                        lost_steps.append(f"{gid}-{number} (last {step.last_type})")
                early = goal.started and _before(step.lo_ts, goal.start_ts)
                late = bool(goal.end_ts) and _before(goal.end_ts, step.hi_ts)
                if early or late:
                    counts["cross"] += 1
                    if len(cross) < cap:
                        edge = "before GOAL_STARTED" if early else f"after {goal.end_type}"
                        cross.append(f"{gid}-{number} stamped {edge}")
        # The latest first-seen runs first: those most likely began inside the window.
        no_start.sort(reverse=True)
        return KafkaOrderReport(
            events_read=self.events_read,
            window_events=self.window_events,
            keys=self._keys,
            goal_runs=in_scope,
            violations=found,
            violations_total=total,
            duplicates=self.duplicates,
            duplicate_examples=list(self._dup_examples),
            unparseable=self.unparseable,
            no_terminal=no_terminal,
            no_terminal_total=counts["no_terminal"],
            no_start=[gid for _, gid in no_start[:cap]],
            no_start_total=counts["no_start"],
            lost_step_events=lost_steps,
            lost_step_events_total=counts["lost"],
            cross_topic=counts["cross"],
            cross_topic_examples=cross,
            lifecycle=LifecycleCounts(**self._turns),
        )

    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as JSON-able data (heartbeat details)."""
        return {
            "events_read": self.events_read,
            "window_events": self.window_events,
            "duplicates": self.duplicates,
            "unparseable": self.unparseable,
            "violations_total": self.violations_total,
            "violations": [v.model_dump(mode="json") for v in self._violations],
            "dup_examples": list(self._dup_examples),
            "turns": dict(self._turns),
            "goals": {gid: g.row() for gid, g in self._goals.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from `state()` of an earlier checker (e.g. a previous activity attempt)."""
        self.events_read, self.duplicates = state["events_read"], state["duplicates"]
        self.window_events = state["window_events"]
        self.unparseable, self.violations_total = state["unparseable"], state["violations_total"]
        self._violations = [OrderViolation.model_validate(v) for v in state["violations"]]
        self._dup_examples = list(state["dup_examples"])
        self._turns = dict(state["turns"])
        self._goals, self._keys = {}, 0
        for gid, row in state["goals"].items():
            goal = self._goals[gid] = _Goal()
            goal.load(row)
            self._keys += 1 + len(goal.steps)


def _orphan_violation(gid: str, number: int, orphan: list[Any]) -> OrderViolation:
    """A step whose first event needed one before it, in a goal run started in the window."""
    etype, topic, partition, offset = orphan
    return OrderViolation(
        key=f"{gid}-{number}",
        goal_run_id=gid,
        topic=topic,
        partition=partition,
        offset=offset,
        previous="(first on key)",
        event=etype,
        reason=f"{etype} with no {_STEP_NEEDS[etype]} before it",
    )


def goal_id(step_key: str) -> str:
    """`<goalRunId>-<stepNumber>` -> goalRunId."""
    return step_key.rsplit("-", 1)[0]
