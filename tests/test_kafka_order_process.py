"""The ordering checker in a second process (activities.kafka.order_process), and its batch path.

A mixed stream (every event type, re-sends, wrong keys and topics, unparseable records, odd
timestamps, records past the window) gives the same report and state whether it is fed one
record at a time, a batch at a time, or to the checker in a child process; a child that dies
fails what waits on it instead of hanging.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import pytest

from activities.kafka.order import EventOrderChecker
from activities.kafka.order_process import CheckerProcess, CheckerProcessError

GOAL, STEP = "goal.events", "step.events"
GOAL_TYPES = ["GOAL_STARTED", "GOAL_PAUSED", "GOAL_RESUMED", "GOAL_COMPLETED", "GOAL_FAILED"]
STEP_TYPES = ["STEP_STARTED", "STEP_COMPLETED", "STEP_FAILED", "STEP_SKIPPED"]
STEP_TYPES += ["STEP_APPROVAL_REQUESTED", "STEP_APPROVED", "STEP_REJECTED"]
Row = tuple[str, int, int, bytes | None, bytes | None]


@dataclass
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


def mixed_stream(seed: int, n: int) -> list[Row]:
    """n records on few keys: legal runs, disorder, re-sends and garbage, in partition order."""
    rng = random.Random(seed)
    offsets: dict[tuple[str, int], int] = {}
    rows: list[Row] = []
    for i in range(n):
        gid = f"g{rng.randrange(5)}"
        second = f"{rng.randrange(60):02d}"
        ts = rng.choice(
            [f"2026-12-01T00:00:{second}.{rng.randrange(1000):03d}Z"] * 3
            + [f"2026-12-01T00:00:{second}Z", f"2026-12-01T00:00:{second}+00:00", "soon"]
        )
        event: Any = {"eventId": rng.choice(["a", "b", f"e{i}"]), "goalRunId": gid, "timestamp": ts}
        roll = rng.random()
        if roll < 0.3:
            event["eventType"] = rng.choice([*GOAL_TYPES, "GOAL_CANCELLED"])
            key, topic = gid, GOAL if rng.random() > 0.05 else STEP
        elif roll < 0.95:
            number = rng.randrange(1, 4)
            event |= {"eventType": rng.choice(STEP_TYPES), "stepNumber": number}
            key, topic = f"{gid}-{number}", STEP if rng.random() > 0.05 else GOAL
            key = key if rng.random() > 0.05 else gid
        else:
            event = rng.choice(
                [{"eventType": "NOPE", "goalRunId": gid}, [1], {"goalRunId": gid}]
                + [{**event, "eventType": "STEP_STARTED", "stepNumber": "1"}]
                + [{**event, "eventType": "GOAL_STARTED", "timestamp": ""}]
            )
            key, topic = gid, GOAL
        value = json.dumps(event).encode() if rng.random() > 0.02 else rng.choice([None, b"{"])
        partition = rng.randrange(2)
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        rows.append(
            (topic, partition, offset, key.encode() if rng.random() > 0.03 else None, value)
        )
    return rows


def one_by_one(rows: list[Row], window_end: int, cap: int) -> EventOrderChecker:
    checker = EventOrderChecker(GOAL, STEP, max_examples=cap)
    for topic, partition, offset, key, value in rows:
        checker.feed(topic, partition, offset, key, value, offset < window_end)
    return checker


def batches(rows: list[Row]) -> list[tuple[str, int, list[Record]]]:
    """Runs of records of one partition, in the order they were read."""
    return [
        (topic, partition, [Record(r[2], r[3], r[4]) for r in run])
        for (topic, partition), run in ((k, list(g)) for k, g in groupby(rows, lambda r: r[:2]))
    ]


@pytest.mark.parametrize("seed", range(40))
def test_a_batch_at_a_time_finds_what_one_record_at_a_time_finds(seed: int) -> None:
    rows = mixed_stream(seed, 300)
    window_end, cap = seed * 4, 3 if seed % 2 else 100
    single = one_by_one(rows, window_end, cap)
    batched = EventOrderChecker(GOAL, STEP, max_examples=cap)
    for topic, partition, records in batches(rows):
        batched.feed_batch(topic, partition, records, window_end)
    assert batched.report() == single.report()
    assert batched.state() == single.state()
    assert single.report().violations_total > 0 and single.report().duplicates > 0


async def test_the_checker_in_a_child_process_reports_what_it_reports_here() -> None:
    rows = mixed_stream(7, 3_000)
    single = one_by_one(rows, 2_000, 100)
    expected = single.report()
    assert expected.violations_total and expected.unparseable and expected.duplicates

    async with CheckerProcess(GOAL, STEP) as child:
        for topic, partition, records in batches(rows):
            child.feed_batch(topic, partition, records, 2_000)
            await child.drain()
        too_big = child.ask_state(max_keys=1)
        state = child.ask_state(max_keys=single.keys)
        assert await child.report() == expected
        assert await too_big is None
        assert await state == single.state()


async def test_a_child_resumes_from_a_state_and_its_own_state_resumes_here() -> None:
    rows = mixed_stream(11, 1_000)
    first, rest = rows[:400], rows[400:]
    expected = one_by_one(rows, 1 << 40, 100)
    async with CheckerProcess(GOAL, STEP) as child:
        child.restore(one_by_one(first, 1 << 40, 100).state())
        for topic, partition, records in batches(rest):
            child.feed_batch(topic, partition, records, 1 << 40)
        state = await child.ask_state(max_keys=10**6)
        assert await child.report() == expected.report()
    assert state is not None
    here = EventOrderChecker(GOAL, STEP)
    here.restore(state)
    assert here.report() == expected.report()


async def test_a_dead_child_fails_what_waits_on_it() -> None:
    child = CheckerProcess(GOAL, STEP)
    await child.start()
    try:
        assert child._proc is not None
        child._proc.kill()
        await child._proc.wait()
        with pytest.raises(CheckerProcessError):
            child.feed_batch(STEP, 0, [Record(0, b"k", b"{}")] * 100_000, 1)
            await child.drain()
            await child.report()
    finally:
        await child.close()
