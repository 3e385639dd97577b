"""The ordering checker's vocabulary and per-key state: event types, states, moves. Pure.

`activities.kafka.order` holds the rules that walk these states; this module holds what they
walk: the event types ByteBot writes, the states of a goal key and of a step key, the legal
moves between them, and the compact per-key records (with `__slots__`, so memory grows with
keys, not events) that a heartbeat can carry and a retry restore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import orjson

# Goal key states.
_G_NEW, _G_RUNNING, _G_PAUSED, _G_ENDED = 0, 1, 2, 3
# Step key states: never seen, between attempts, running, awaiting approval, approved.
_S_NEW, _S_IDLE, _S_RUNNING, _S_AWAITING, _S_APPROVED = 0, 1, 2, 3, 4

GOAL_TYPES = frozenset(
    {"GOAL_STARTED", "GOAL_PAUSED", "GOAL_RESUMED", "GOAL_COMPLETED", "GOAL_FAILED"}
    | {"GOAL_CANCELLED"}
)
GOAL_TERMINAL = frozenset({"GOAL_COMPLETED", "GOAL_FAILED", "GOAL_CANCELLED"})
STEP_TYPES = frozenset(
    {"STEP_STARTED", "STEP_COMPLETED", "STEP_FAILED", "STEP_SKIPPED"}
    | {"STEP_APPROVAL_REQUESTED", "STEP_APPROVED", "STEP_REJECTED"}
)
#: Step events that may open an attempt on a key that is between attempts.
_STEP_BEGIN = {
    "STEP_STARTED": _S_RUNNING,
    "STEP_APPROVAL_REQUESTED": _S_AWAITING,
    "STEP_SKIPPED": _S_IDLE,
}
#: (state, event) -> next state, for every other legal move of a step key.
_STEP_MOVES = {
    (_S_RUNNING, "STEP_COMPLETED"): _S_IDLE,
    (_S_RUNNING, "STEP_FAILED"): _S_IDLE,
    (_S_AWAITING, "STEP_APPROVED"): _S_APPROVED,
    (_S_AWAITING, "STEP_REJECTED"): _S_IDLE,
    (_S_APPROVED, "STEP_STARTED"): _S_RUNNING,
    (_S_APPROVED, "STEP_SKIPPED"): _S_IDLE,
}
#: The same moves by state, then event: one dict lookup with no tuple built per event.
_MOVES_FROM: dict[int, dict[str, int]] = {st: {} for st in range(_S_APPROVED + 1)}
for (_state, _event), _next in _STEP_MOVES.items():
    _MOVES_FROM[_state][_event] = _next
#: What a step event needs before it, for the violation's wording.
_STEP_NEEDS = {
    "STEP_COMPLETED": "STEP_STARTED",
    "STEP_FAILED": "STEP_STARTED",
    "STEP_APPROVED": "STEP_APPROVAL_REQUESTED",
    "STEP_REJECTED": "STEP_APPROVAL_REQUESTED",
}
#: Where a record is: topic, partition, offset.
_Where = tuple[str, int, int]


#: bytes -> object, twice as fast as the stdlib (the check's hottest call, see
#: bench/bench_event_order.py); raises ValueError or TypeError on bad input (counted).
_parse = orjson.loads


def _instant(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def _before(a: str, b: str) -> bool:
    """a < b for ISO-8601 timestamps; plain string order when both are UTC of one shape."""
    if len(a) == len(b) and a[-1:] == b[-1:] == "Z":
        return a < b
    try:
        return _instant(a) < _instant(b)
    except ValueError:
        return False


class RecordLike(Protocol):
    """What the checker reads of a Kafka record (aiokafka's ConsumerRecord fits)."""

    offset: int
    key: bytes | None
    value: bytes | None


class _Step:
    """One step key: its state, last event, and the span of its timestamps."""

    __slots__ = ("state", "last_type", "last_id", "ended", "lo_ts", "hi_ts", "orphan")

    def __init__(self) -> None:
        self.state = _S_NEW
        self.last_type = ""
        self.last_id = ""
        self.ended = ""  # the terminal type of its last attempt, if it ended
        self.lo_ts = self.hi_ts = ""
        # Its first event read needed one before it (e.g. STEP_COMPLETED first), and its goal
        # run's GOAL_STARTED was not read yet: [type, topic, partition, offset]. Partitions are
        # read in any order, so whether that is a violation is decided once all is read.
        self.orphan: list[Any] = []

    def row(self) -> list[Any]:
        return [getattr(self, f) for f in self.__slots__]

    def load(self, row: list[Any]) -> None:
        for f, v in zip(self.__slots__, row, strict=True):
            setattr(self, f, v)


class _Goal:
    """One goal run: its goal key's state and its step keys."""

    __slots__ = (
        "state", "last_type", "last_id", "in_window", "started", "first_ts", "start_ts",
        "end_ts", "end_type", "steps",
    )  # fmt: skip

    def __init__(self) -> None:
        self.state = _G_NEW
        self.last_type = ""
        self.last_id = ""
        self.in_window = False
        self.started = False  # its GOAL_STARTED was read
        self.first_ts = self.start_ts = self.end_ts = self.end_type = ""
        self.steps: dict[int, _Step] = {}

    def row(self) -> list[Any]:
        plain = [getattr(self, f) for f in self.__slots__[:-1]]
        return [*plain, {str(n): s.row() for n, s in self.steps.items()}]

    def load(self, row: list[Any]) -> None:
        *plain, steps = row
        for f, v in zip(self.__slots__[:-1], plain, strict=True):
            setattr(self, f, v)
        for n, step_row in steps.items():
            step = self.steps[int(n)] = _Step()
            step.load(step_row)


_STATE_WORDS = {
    _S_NEW: "new",
    _S_IDLE: "between attempts",
    _S_RUNNING: "running",
    _S_AWAITING: "awaiting approval",
    _S_APPROVED: "approved",
}
