"""The pure ordering checker on ByteBot's real event shapes: no broker, no Temporal.

Records are built as ByteBot's worker writes them: ISO-8601 timestamps, a fresh uuid4 eventId
at every emission (so a retried emit is the same event under a new id), goal events keyed by
goal run, step events keyed `<goalRunId>-<stepNumber>`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from activities.kafka.order import EventOrderChecker
from models.kafka import KafkaOrderReport

GOAL, STEP = "bytebot.goal.events", "bytebot.step.events"
T0 = datetime(2026, 12, 1, 19, 51, tzinfo=UTC)


def iso(at: datetime) -> str:
    """ByteBot's timestamp shape: milliseconds and a Z."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class Stream:
    """Goal events on partition 0 of their topic; step keys spread over 3 partitions."""

    now: datetime = T0
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    records: list[tuple[str, int, int, bytes | None, bytes | None]] = field(default_factory=list)

    def emit(
        self,
        event_type: str,
        goal_run: str,
        step: int | None = None,
        *,
        at: datetime | None = None,
        eid: str | None = None,
    ) -> int:
        """Append one event with a fresh random id; returns its offset."""
        self.now += timedelta(milliseconds=10)
        value: dict[str, Any] = {
            "eventId": eid or str(uuid.uuid4()),
            "eventType": event_type,
            "goalRunId": goal_run,
            "tenantId": "t1",
            "timestamp": iso(at or self.now),
            "payload": {},
        }
        if step is not None:
            value["stepNumber"] = step
        topic, partition = (GOAL, 0) if step is None else (STEP, step % 3)
        key = goal_run if step is None else f"{goal_run}-{step}"
        return self.raw(topic, partition, key.encode(), json.dumps(value).encode())

    def raw(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> int:
        """Append a record as is."""
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + 1
        self.records.append((topic, partition, offset, key, value))
        return offset

    def steps(self, goal_run: str, *numbers: int) -> None:
        for n in numbers:
            self.emit("STEP_STARTED", goal_run, n)
            self.emit("STEP_COMPLETED", goal_run, n)

    def check(
        self, checker: EventOrderChecker | None = None, window_end: int = 1 << 62
    ) -> KafkaOrderReport:
        """Feed every record (in the window unless past `window_end`); return the report."""
        checker = checker or EventOrderChecker(GOAL, STEP)
        for topic, partition, offset, key, value in self.records:
            checker.feed(topic, partition, offset, key, value, offset < window_end)
        return checker.report()


def test_every_legitimate_lifecycle_of_the_real_worker_passes() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.emit("STEP_STARTED", "g1", 1)
    s.emit("STEP_FAILED", "g1", 1)  # a step that fails and is retried on its key
    s.steps("g1", 1)
    s.emit("STEP_APPROVAL_REQUESTED", "g1", 2)  # a high-risk step waits for a person
    s.emit("STEP_APPROVED", "g1", 2)
    s.steps("g1", 2)
    s.emit("STEP_SKIPPED", "g1", 3)
    s.emit("GOAL_PAUSED", "g1")
    s.emit("GOAL_RESUMED", "g1")
    s.steps("g1", 1, 2)  # a replan: step numbers from 1 again
    s.emit("GOAL_COMPLETED", "g1")
    s.emit("GOAL_STARTED", "g2")
    s.emit("STEP_APPROVAL_REQUESTED", "g2", 1)
    s.emit("STEP_REJECTED", "g2", 1)
    s.emit("GOAL_CANCELLED", "g2")

    report = s.check()

    assert report.violations == [] and report.violations_total == 0
    assert report.duplicates == 0 and report.no_terminal == [] and report.lost_step_events == []
    turns = report.lifecycle
    assert (turns.step_retries, turns.replans, turns.approvals) == (1, 2, 2)
    assert (turns.skips, turns.pauses, turns.cancels) == (1, 1, 1)
    assert report.window_events == report.events_read == len(s.records)


def test_a_retried_emit_with_a_new_event_id_is_a_duplicate_not_disorder() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.emit("STEP_STARTED", "g1", 1)
    s.emit("STEP_STARTED", "g1", 1)  # the emit activity wrote, timed out, and was retried
    s.emit("STEP_COMPLETED", "g1", 1)
    s.emit("GOAL_COMPLETED", "g1")
    s.emit("GOAL_COMPLETED", "g1")  # at-least-once after the terminal event: no violation
    s.emit("GOAL_COMPLETED", "g1", eid="same-id")
    s.emit("GOAL_COMPLETED", "g1", eid="same-id")

    report = s.check()

    assert report.violations == [] and report.duplicates == 4
    assert "STEP_STARTED g1-1 (same content, new eventId)" in report.duplicate_examples
    assert "GOAL_COMPLETED g1 (same eventId)" in report.duplicate_examples


def test_step_completed_before_its_start_is_named_with_its_offset() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.steps("g1", 1)
    completed = s.emit("STEP_COMPLETED", "g1", 2)  # the stand-in's "reorder-events" defect
    s.emit("STEP_STARTED", "g1", 2)
    s.emit("GOAL_COMPLETED", "g1")

    report = s.check()

    (v,) = report.violations
    assert (v.key, v.topic, v.partition, v.offset) == ("g1-2", STEP, 2, completed)
    assert v.reason == "STEP_COMPLETED with no STEP_STARTED before it"
    # The late start then leaves step 2 open although the goal run completed.
    assert report.lost_step_events == ["g1-2 (last STEP_STARTED)"]


def test_a_terminal_event_without_start_is_fine_when_the_run_began_before_the_window() -> None:
    s = Stream()  # GOAL_STARTED and step 2's start were written before the window began
    s.emit("STEP_COMPLETED", "g0", 2)
    s.emit("STEP_APPROVED", "g0", 3)
    s.steps("g0", 3)
    s.emit("GOAL_RESUMED", "g0")
    s.emit("GOAL_COMPLETED", "g0")

    report = s.check()

    assert report.violations == [] and report.no_terminal == []
    assert report.no_start == ["g0"] and report.no_start_total == 1  # for Temporal to reconcile


def test_anything_after_a_terminal_goal_event_and_unasked_answers_are_violations() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.emit("STEP_APPROVED", "g1", 1)
    s.emit("GOAL_RESUMED", "g1")
    s.emit("GOAL_COMPLETED", "g1")
    s.emit("GOAL_FAILED", "g1")
    s.emit("GOAL_STARTED", "g1")

    reasons = [v.reason for v in s.check().violations]

    assert reasons == [
        "STEP_APPROVED with no STEP_APPROVAL_REQUESTED before it",
        "GOAL_RESUMED with no GOAL_PAUSED before it",
        "an event after GOAL_COMPLETED",
        "GOAL_STARTED again under the same id",
    ]


def test_goal_runs_without_terminal_event_are_listed_for_reconciliation() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "done")
    s.steps("done", 1)
    s.emit("GOAL_COMPLETED", "done")
    s.emit("GOAL_STARTED", "waiting")
    s.emit("STEP_APPROVAL_REQUESTED", "waiting", 1)  # idle by design, maybe for a day
    s.emit("STEP_STARTED", "before-window", 5)

    report = s.check()

    assert sorted(report.no_terminal) == ["before-window", "waiting"]
    assert report.no_terminal_total == 2 and report.violations == []


def test_goal_runs_that_only_appear_after_the_window_are_out_of_scope() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "in-window")  # goal topic offset 0
    s.emit("GOAL_COMPLETED", "in-window")  # offset 1
    s.emit("GOAL_STARTED", "later")  # offset 2: past the window's end

    report = s.check(window_end=2)

    assert report.no_terminal == [] and report.goal_runs == 1 and report.window_events == 2


def test_cross_topic_stamps_are_reported_not_failed() -> None:
    s = Stream()
    s.emit("STEP_STARTED", "g1", 1, at=T0 - timedelta(seconds=1))  # before GOAL_STARTED
    s.emit("GOAL_STARTED", "g1")
    s.emit("STEP_COMPLETED", "g1", 1)
    s.emit("GOAL_COMPLETED", "g1")

    report = s.check()

    assert report.violations == [] and report.cross_topic == 1
    assert report.cross_topic_examples == ["g1-1 stamped before GOAL_STARTED"]


def test_unparseable_records_are_counted_and_named_without_stopping_the_check() -> None:
    s = Stream()
    s.raw(GOAL, 0, b"k", b"not json")
    s.raw(GOAL, 0, b"k", None)
    s.raw(GOAL, 0, b"k", b'["a", "list"]')
    s.raw(GOAL, 0, b"k", b'{"eventType": "GOAL_STARTED"}')
    epoch_ms = b'{"eventType": "GOAL_PAUSED", "goalRunId": "g", "eventId": "e", "timestamp": 1}'
    s.raw(GOAL, 0, b"k", epoch_ms)
    s.raw(
        STEP,
        0,
        b"k",
        b'{"eventType": "STEP_STARTED", "goalRunId": "g", "eventId": "e",'
        b' "timestamp": "2026-12-01T19:51:00.411Z", "stepNumber": "one"}',
    )
    s.raw(
        GOAL,
        0,
        b"k",
        b'{"eventType": "GOAL_EXPLODED", "goalRunId": "g", "eventId": "e",'
        b' "timestamp": "2026-12-01T19:51:00.411Z"}',
    )
    s.raw(GOAL, 0, b"k", b"\xff\xfe")
    s.emit("GOAL_STARTED", "g1")
    s.emit("GOAL_COMPLETED", "g1")

    report = s.check()

    assert report.unparseable == 8 and report.violations_total == 8
    assert all(v.reason.startswith("unparseable record") for v in report.violations)
    assert "unknown eventType 'GOAL_EXPLODED'" in report.violations[6].reason


def test_wrong_topic_and_wrong_key_are_violations() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    step_on_goal_topic = {
        "eventId": "x",
        "eventType": "STEP_STARTED",
        "goalRunId": "g1",
        "stepNumber": 1,
        "timestamp": iso(T0),
    }
    s.raw(GOAL, 0, b"g1-1", json.dumps(step_on_goal_topic).encode())
    wrong_key = {"eventId": "y", "eventType": "GOAL_COMPLETED", "goalRunId": "g1"}
    s.raw(GOAL, 0, b"someone-else", json.dumps({**wrong_key, "timestamp": iso(T0)}).encode())

    reasons = [v.reason for v in s.check().violations]

    assert reasons == [f"not on {STEP}", "record key 'someone-else' is not the event's key 'g1'"]


def test_resuming_from_state_gives_the_same_report_as_one_pass() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    s.steps("g1", 1, 2, 3)
    s.emit("GOAL_COMPLETED", "g1")
    s.emit("GOAL_STARTED", "g2")
    s.emit("STEP_STARTED", "g2", 1)
    s.emit("STEP_STARTED", "g2", 1)
    s.emit("STEP_COMPLETED", "g2", 2)
    s.raw(GOAL, 0, None, b"garbage")
    s.emit("STEP_FAILED", "g2", 1)
    s.emit("STEP_STARTED", "g2", 1)
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
    assert whole.violations_total == 2 and whole.duplicates == 1
    assert whole.no_terminal == ["g2", "g3"] and whole.lifecycle.step_retries == 1


def test_evidence_is_capped_but_totals_count_everything() -> None:
    s = Stream()
    for i in range(30):
        s.emit("GOAL_STARTED", f"g{i}")
        s.emit("GOAL_STARTED", f"g{i}")
        s.emit("GOAL_FAILED", f"g{i}")
        s.emit("GOAL_PAUSED", f"g{i}")
    checker = EventOrderChecker(GOAL, STEP, max_examples=5)

    report = s.check(checker)

    assert report.violations_total == 30 and len(report.violations) == 5
    assert report.duplicates == 30 and len(report.duplicate_examples) == 5


def test_a_violation_is_found_whichever_partition_is_read_first() -> None:
    s = Stream()
    s.emit("GOAL_STARTED", "g1")
    completed = s.emit("STEP_COMPLETED", "g1", 1)  # reordered: no STEP_STARTED before it
    s.emit("STEP_STARTED", "g1", 1)
    s.emit("GOAL_COMPLETED", "g1")
    checker = EventOrderChecker(GOAL, STEP)
    # The step topic's partition happens to be read before the goal topic's.
    for topic, partition, offset, key, value in sorted(s.records, key=lambda r: r[0] != STEP):
        checker.feed(topic, partition, offset, key, value)

    report = checker.report()

    (v,) = report.violations
    assert (v.key, v.offset, v.reason) == (
        "g1-1",
        completed,
        "STEP_COMPLETED with no STEP_STARTED before it",
    )
    assert report.violations_total == 1 and checker.report() == report  # reporting changes nothing
