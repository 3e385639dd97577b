"""The events ByteBot writes to Kafka: their JSON shape, their keys and their ids. Pure.

Wire format (one JSON object per record, camelCase as ByteBot writes it)::

    {"eventId": "3f0c...", "eventType": "STEP_STARTED", "goalRunId": "goal-1a2b-000001",
     "stepNumber": 2, "timestamp": 1732600000123, "goal": "demo", "attempt": 1,
     "producer": "replica-0"}

- ``eventId`` is a uuid5 of (goalRunId, eventType, stepNumber): an activity retried after it
  emitted writes the same id again, so a duplicate is recognisable (delivery is at-least-once).
- ``stepNumber`` is null for goal events.
- ``timestamp`` is epoch milliseconds (UTC), taken when the event is emitted.
- Goal events go to ``bytebot.goal.events`` keyed by the goal run id; step events go to
  ``bytebot.step.events`` keyed ``"<goalRunId>-<stepNumber>"``. One key, one partition, so a
  key's events keep their order.

Valid order per goal run: GOAL_STARTED, then per step STEP_STARTED before STEP_COMPLETED, then
exactly one terminal event (GOAL_COMPLETED or GOAL_FAILED); duplicates may repeat an event.
"""

from __future__ import annotations

import time
import uuid

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from standin.models import GoalEventType

GOAL_TOPIC = "bytebot.goal.events"
STEP_TOPIC = "bytebot.step.events"
STEP_EVENT_TYPES = frozenset({GoalEventType.STEP_STARTED, GoalEventType.STEP_COMPLETED})

_EVENT_ID_NAMESPACE = uuid.UUID("6f1b7c52-3f5e-4e5b-9a59-2d6cbbd1e0a1")


class GoalEvent(BaseModel):
    """One event record as it is written to (and read back from) Kafka."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )

    event_id: str = Field(description="uuid5 of (goalRunId, eventType, stepNumber).")
    event_type: GoalEventType
    goal_run_id: str
    step_number: int | None = Field(default=None, description="Null for goal events.")
    timestamp: int = Field(description="Epoch milliseconds (UTC) when the event was emitted.")
    goal: str | None = None
    attempt: int | None = Field(default=None, description="The activity attempt that emitted it.")
    producer: str | None = Field(default=None, description="The replica that emitted it.")

    def to_json(self) -> bytes:
        """The record value: camelCase JSON, UTF-8."""
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, value: bytes) -> GoalEvent:
        """Parse a record value."""
        return cls.model_validate_json(value)


def event_id(goal_run_id: str, event_type: GoalEventType, step_number: int | None) -> str:
    """The deterministic id of an event: equal for every re-emission of the same event."""
    step = "-" if step_number is None else str(step_number)
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{goal_run_id}/{event_type.value}/{step}"))


def event_key(goal_run_id: str, step_number: int | None) -> str:
    """The record key: the goal run id, or ``"<goalRunId>-<stepNumber>"`` for step events."""
    return goal_run_id if step_number is None else f"{goal_run_id}-{step_number}"


def make_event(
    event_type: GoalEventType,
    goal_run_id: str,
    step_number: int | None = None,
    *,
    goal: str | None = None,
    attempt: int | None = None,
    producer: str | None = None,
) -> GoalEvent:
    """Build an event stamped now."""
    return GoalEvent(
        event_id=event_id(goal_run_id, event_type, step_number),
        event_type=event_type,
        goal_run_id=goal_run_id,
        step_number=step_number,
        timestamp=time.time_ns() // 1_000_000,
        goal=goal,
        attempt=attempt,
        producer=producer,
    )
