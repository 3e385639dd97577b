"""What the Kafka checks observe: offsets, consumer lag, per-key event order."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.base import Frozen
from models.scenario import KafkaTarget


class PartitionOffset(Frozen):
    """An offset of one partition of one topic."""

    topic: str
    partition: int
    offset: int


class KafkaPositions(Frozen):
    """End offsets of the topics and the consumer group's lag at one moment."""

    at: datetime
    end_offsets: list[PartitionOffset] = Field(default_factory=list)
    committed: list[PartitionOffset] = Field(default_factory=list)
    total_lag: int = 0


class KafkaCheckInput(Frozen):
    """Check the events written between two positions (a fault's window)."""

    kafka: KafkaTarget
    start: KafkaPositions
    deadline: datetime = Field(description="Terminal events and lag drain are due by then.")


class LagReport(Frozen):
    """The consumer group's lag course: baseline, peak, and when it drained."""

    baseline_lag: int
    peak_lag: int = 0
    final_lag: int = 0
    drained: bool = True
    drained_after_s: float | None = None


class OrderViolation(Frozen):
    """An event out of its lifecycle order, with where to find it."""

    key: str
    topic: str
    partition: int
    offset: int
    previous: str = Field(description="The event before it, e.g. 'STEP_COMPLETED@41'.")
    event: str = Field(description="The event itself, e.g. 'STEP_STARTED@42'.")
    reason: str


class KafkaOrderReport(Frozen):
    """Per-key lifecycle order over a fault's window."""

    events_read: int = 0
    keys: int = 0
    violations: list[OrderViolation] = Field(default_factory=list)
    duplicates: int = 0
    duplicate_examples: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list, description="Goal runs with no terminal event.")
    lag: LagReport | None = None
