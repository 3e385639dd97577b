"""The records ByteBot writes to Kafka: topics, keys, JSON, headers. Pure.

Value (UTF-8 JSON, gzip-compressed by the producer)::

    {"eventId": "<uuid4>", "eventType": "STEP_STARTED", "goalRunId": "...", "tenantId": "...",
     "timestamp": "2026-12-01T19:51:00.411Z", "stepNumber": 2, "payload": {...}}

- ``eventId`` is a fresh uuid4 at every emission: an emit retried after it wrote writes the same
  event again under a new id, so duplicates are told by content (key, type, step), not by id.
- ``stepNumber`` appears on step events only.
- Goal events: topic `GOAL_TOPIC`, key goalRunId; each also gets an audit record on
  `AUDIT_TOPIC` (key goalRunId, eventType ``goal.<type in lower case>``, its own eventId).
- Step events: topic `STEP_TOPIC`, key ``<goalRunId>-<stepNumber>`` (a replan reuses keys).
- Headers: ``event-type``, ``tenant-id``, ``correlation-id`` (the goalRunId) and ``timestamp``
  (the value's timestamp), all UTF-8 strings.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GOAL_TOPIC = "bytebot.goal.events"
STEP_TOPIC = "bytebot.step.events"
AUDIT_TOPIC = "bytebot.audit.log"
TOPICS = (GOAL_TOPIC, STEP_TOPIC, AUDIT_TOPIC)


def iso_now() -> str:
    """Now as ByteBot writes it: ISO-8601, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Event(BaseModel):
    """One record value, as written and read back."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )

    event_id: str
    event_type: str
    goal_run_id: str
    tenant_id: str
    timestamp: str
    step_number: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """The record key: goalRunId, or ``<goalRunId>-<stepNumber>`` for a step event."""
        if self.step_number is None:
            return self.goal_run_id
        return f"{self.goal_run_id}-{self.step_number}"

    def headers(self) -> list[tuple[str, bytes]]:
        """The record headers."""
        return [
            ("event-type", self.event_type.encode()),
            ("tenant-id", self.tenant_id.encode()),
            ("correlation-id", self.goal_run_id.encode()),
            ("timestamp", self.timestamp.encode()),
        ]

    def to_json(self) -> bytes:
        """The record value (``stepNumber`` left out of goal and audit events)."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    @classmethod
    def from_json(cls, value: bytes) -> Event:
        """Parse a record value."""
        return cls.model_validate_json(value)


def make_event(
    event_type: str,
    goal_run_id: str,
    tenant_id: str,
    payload: dict[str, Any] | None = None,
    step_number: int | None = None,
) -> Event:
    """A new event: fresh uuid4, stamped now."""
    return Event(
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        goal_run_id=goal_run_id,
        tenant_id=tenant_id,
        timestamp=iso_now(),
        step_number=step_number,
        payload=payload or {},
    )


def audit_of(goal_event: Event) -> Event:
    """The audit record of a goal event: ``goal.<type lower>``, its own id and time."""
    return make_event(
        f"goal.{goal_event.event_type.lower()}",
        goal_event.goal_run_id,
        goal_event.tenant_id,
        payload={"sourceEventId": goal_event.event_id, **goal_event.payload},
    )
