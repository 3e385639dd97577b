"""The pure ordering checker (activities.kafka.order) on plain data: no broker, no Temporal."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from activities.kafka.order import EventOrderChecker

GOAL, STEP = "bytebot.goal.events", "bytebot.step.events"


def event_id(goal_run: str, event_type: str, step: int | None) -> str:
    """Deterministic like ByteBot's: a re-emission carries the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{goal_run}/{event_type}/{step}"))


@dataclass
class Stream:
    """Builds records as ByteBot writes them: goal events keyed by run, step events by step.

    Every key of a goal run goes to partition 0 of its topic here except step keys, which
    spread over 3 partitions by step number, so cross-key order really is cross-partition.
    """

    ts: int = 1_700_000_000_000
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    records: list[tuple[str, int, int, bytes | None, bytes | None]] = field(default_factory=list)

    def emit(
        self,
        event_type: str,
        goal_run: str,
        step: int | None = None,
        *,
        ts: int | None = None,
        eid: str | None = None,
        **extra: Any,
    ) -> int:
        """Append one event; returns its offset."""
        self.ts += 10
        value = {
            "eventId": eid or event_id(goal_run, event_type, step),
            "eventType": event_type,
            "goalRunId": goal_run,
            "stepNumber": step,
            "timestamp": ts or self.ts,
            **extra,
        }
        topic, partition = (GOAL, 0) if step is None else (STEP, step % 3)
        key = goal_run if step is None else f"{goal_run}-{step}"
        return self.raw(topic, partition, key.encode(), json.dumps(value).encode())

    def raw(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> int:
        """Append a record as is."""
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + 1
        self.records.append((topic, partition, offset, key, value))
        return offset

    def goal_run(self, goal_run: str, steps: int, end: str = "GOAL_COMPLETED") -> None:
        """A whole goal run in its valid order."""
        self.emit("GOAL_STARTED", goal_run)
        for n in range(1, steps + 1):
            self.emit("STEP_STARTED", goal_run, n)
            self.emit("STEP_COMPLETED", goal_run, n)
        self.emit(end, goal_run)

    def check(self, checker: EventOrderChecker | None = None, window_end: int = 1 << 62) -> Any:
        """Feed every record (in the window unless past `window_end`); return the report."""
        checker = checker or EventOrderChecker(GOAL, STEP)
        for topic, partition, offset, key, value in self.records:
            checker.feed(topic, partition, offset, key, value, offset < window_end)
        return checker.report()


def test_interleaved_valid_goal_runs_pass() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.emit("GOAL_STARTED", "g2")
    for n in (1, 2, 3):
        s.emit("STEP_STARTED", "g1", n)
        s.emit("STEP_STARTED", "g2", n)
        s.emit("STEP_COMPLETED", "g2", n)
        s.emit("STEP_COMPLETED", "g1", n, extra_field="tolerated")
    s.emit("GOAL_FAILED", "g2")
    s.emit("GOAL_COMPLETED", "g1")
    s.goal_run("g3", 2)

    report = s.check()

    assert report.violations == [] and report.violations_total == 0
    assert (report.events_read, report.goal_runs, report.keys) == (22, 3, 3 + 8)
    assert report.duplicates == 0 and report.gaps == [] and report.unparseable == 0


def test_step_started_after_its_completion_is_named_with_both_offsets() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.emit("STEP_STARTED", "g1", 1)
    s.emit("STEP_COMPLETED", "g1", 1)
    completed = s.emit("STEP_COMPLETED", "g1", 2)  # the stand-in's "reorder-events" fault
    started = s.emit("STEP_STARTED", "g1", 2)
    s.emit("GOAL_COMPLETED", "g1")

    report = s.check()

    reasons = {v.reason: v for v in report.violations}
    after = reasons["an event after a terminal event"]
    assert (after.key, after.topic, after.partition, after.offset) == ("g1-2", STEP, 2, started)
    assert (after.previous, after.event) == (
        f"STEP_COMPLETED@{completed}",
        f"STEP_STARTED@{started}",
    )
    orphan = reasons["a terminal event with no STEP_STARTED before it"]
    assert orphan.key == "g1-2" and orphan.offset == completed and orphan.previous_key == "g1"
    assert report.violations_total == 2


def test_a_terminal_event_without_start_is_fine_when_the_run_began_before_the_window() -> None:
    s = Stream()  # GOAL_STARTED and step 2's start were written before the window began
    s.emit("STEP_COMPLETED", "g0", 2)
    s.emit("STEP_STARTED", "g0", 3)
    s.emit("STEP_COMPLETED", "g0", 3)
    s.emit("GOAL_COMPLETED", "g0")

    report = s.check()

    assert report.violations == [] and report.gaps == [] and report.goal_runs == 1


def test_step_numbers_going_back_in_timestamp_order_are_found_across_partitions() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1", ts=1000)
    s.emit("STEP_STARTED", "g1", 1, ts=1010)
    early = s.emit("STEP_STARTED", "g1", 2, ts=1020)  # step 2 began before step 1 ended
    s.emit("STEP_COMPLETED", "g1", 2, ts=1030)
    late = s.emit("STEP_COMPLETED", "g1", 1, ts=1040)
    s.emit("GOAL_COMPLETED", "g1", ts=1050)

    report = s.check()

    (v,) = report.violations
    assert v.reason == "step numbers went back in timestamp order"
    # In timestamp order step 2 started, then step 1 completed: that completion went back.
    assert (v.key, v.topic, v.partition, v.offset) == ("g1-1", STEP, 1, late)
    assert (v.previous_key, v.previous_partition, v.previous_offset) == ("g1-2", 2, early)
    assert "ts=1020" in v.previous and "ts=1040" in v.event

    assert s.check(EventOrderChecker(GOAL, STEP, clock_skew_ms=30)).violations == []


def test_step_events_outside_their_goal_run_in_time_are_violations() -> None:
    s = Stream()
    s.emit("STEP_STARTED", "g1", 1, ts=900)  # before GOAL_STARTED
    s.emit("GOAL_STARTED", "g1", ts=1000)
    s.emit("STEP_COMPLETED", "g1", 1, ts=1010)
    s.emit("GOAL_COMPLETED", "g1", ts=1020)
    s.emit("STEP_STARTED", "g1", 2, ts=1030)  # after GOAL_COMPLETED

    reasons = sorted(v.reason for v in s.check().violations)

    assert reasons == ["a step event after GOAL_COMPLETED", "a step event before GOAL_STARTED"]


def test_duplicates_by_event_id_are_counted_not_treated_as_order_violations() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.emit("STEP_STARTED", "g1", 1)
    s.emit("STEP_STARTED", "g1", 1)  # a retried activity re-emits its start
    s.emit("STEP_COMPLETED", "g1", 1)
    again = s.emit("STEP_STARTED", "g1", 1)  # retried after it completed: start and end again
    s.emit("STEP_COMPLETED", "g1", 1)
    s.emit("GOAL_COMPLETED", "g1")
    s.emit("GOAL_COMPLETED", "g1")

    report = s.check()

    assert report.violations == [] and report.duplicates == 4
    eid = event_id("g1", "STEP_STARTED", 1)
    assert f"STEP_STARTED g1-1 eventId={eid} at {STEP}/1@{again} (first at @0)" in (
        report.duplicate_examples
    )


def test_a_repeated_start_under_a_new_event_id_is_a_violation() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.emit("GOAL_STARTED", "g1", eid="another-id")
    s.emit("GOAL_COMPLETED", "g1")
    s.emit("GOAL_FAILED", "g1")

    reasons = [v.reason for v in s.check().violations]

    assert reasons == ["started again under a new eventId", "an event after a terminal event"]


def test_a_goal_run_of_the_window_without_terminal_event_is_a_gap() -> None:
    s = Stream()
    s.goal_run("done", 1)
    s.emit("GOAL_STARTED", "open")
    s.emit("STEP_STARTED", "open", 1)
    s.emit("STEP_COMPLETED", "open", 1)
    s.emit("STEP_STARTED", "open", 2)
    s.emit("STEP_STARTED", "before-window", 5)  # in flight at the fault, never finished
    checker = EventOrderChecker(GOAL, STEP)

    report = s.check(checker)

    assert sorted(report.gaps) == ["before-window", "open"]
    assert checker.open_in_window == 2
    gap = next(g for g in report.gap_details if g.goal_run_id == "open")
    assert gap.started and gap.started_at == f"{GOAL}/0@2"
    assert (gap.last_step, gap.last_step_done) == (2, False)


def test_goal_runs_that_only_appear_after_the_window_are_not_gaps() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "in-window")  # goal topic offset 0
    s.emit("GOAL_COMPLETED", "in-window")  # offset 1
    s.emit("GOAL_STARTED", "later")  # offset 2: past the window's end

    report = s.check(window_end=2)

    assert report.gaps == [] and report.goal_runs == 1


def test_unparseable_records_are_counted_and_named_without_stopping_the_check() -> None:
    s = Stream()
    s.raw(GOAL, 0, b"k", b"not json")
    s.raw(GOAL, 0, b"k", None)
    s.raw(GOAL, 0, b"k", b'["a", "list"]')
    s.raw(GOAL, 0, b"k", b'{"eventType": "GOAL_STARTED"}')
    s.raw(
        GOAL,
        0,
        b"k",
        b'{"eventType": "GOAL_PAUSED", "goalRunId": "g", "eventId": "e", "timestamp": 1}',
    )
    s.raw(
        STEP,
        0,
        b"k",
        b'{"eventType": "STEP_STARTED", "goalRunId": "g", "eventId": "e", '
        b'"timestamp": 1, "stepNumber": "one"}',
    )
    s.raw(GOAL, 0, b"k", b"\xff\xfe")
    s.goal_run("g1", 1)

    report = s.check()

    assert report.unparseable == 7 and report.violations_total == 7
    assert report.goal_runs == 1 and report.gaps == []
    assert all(v.reason.startswith("unparseable record") for v in report.violations)
    assert report.violations[0].event == "not json" and report.violations[0].offset == 0


def test_wrong_topic_and_wrong_key_are_violations() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.raw(
        GOAL,
        0,
        b"g1-1",
        json.dumps(
            {
                "eventId": "x",
                "eventType": "STEP_STARTED",
                "goalRunId": "g1",
                "stepNumber": 1,
                "timestamp": s.ts + 1,
            }
        ).encode(),
    )
    s.raw(
        GOAL,
        0,
        b"someone-else",
        json.dumps(
            {
                "eventId": "y",
                "eventType": "GOAL_COMPLETED",
                "goalRunId": "g1",
                "timestamp": s.ts + 2,
            }
        ).encode(),
    )

    reasons = [v.reason for v in s.check().violations]

    assert reasons == [f"not on {STEP}", "record key 'someone-else' is not the event's key 'g1'"]


def test_resuming_from_state_gives_the_same_report_as_one_pass() -> None:
    s = Stream()
    s.goal_run("g1", 3)
    s.emit("GOAL_STARTED", "g2")
    s.emit("STEP_STARTED", "g2", 1)
    s.emit("STEP_STARTED", "g2", 1)
    s.emit("STEP_COMPLETED", "g2", 2)
    s.raw(GOAL, 0, None, b"garbage")
    s.emit("STEP_STARTED", "g2", 2)
    s.emit("GOAL_STARTED", "g3")
    whole = s.check()

    first = EventOrderChecker(GOAL, STEP)
    for rec in s.records[:10]:
        first.feed(*rec)
    second = EventOrderChecker(GOAL, STEP)
    second.restore(json.loads(json.dumps(first.state())))
    for rec in s.records[10:]:
        second.feed(*rec)

    assert second.report() == whole
    assert whole.violations_total == 3 and whole.duplicates == 1 and whole.gaps == ["g2", "g3"]
    assert second.open_in_window == 2


def test_evidence_is_capped_but_totals_count_everything() -> None:
    s = Stream()
    for i in range(30):
        s.emit("GOAL_STARTED", f"g{i}")
        s.emit("GOAL_STARTED", f"g{i}")
        s.emit("GOAL_FAILED", f"g{i}")
        s.emit("GOAL_COMPLETED", f"g{i}")
    checker = EventOrderChecker(GOAL, STEP, max_examples=5)

    report = s.check(checker)

    assert report.violations_total == 30 and len(report.violations) == 5
    assert report.duplicates == 30 and len(report.duplicate_examples) == 5
