"""What the Kafka checks observe: offsets, consumer lag, per-key event order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from models.base import Frozen
from models.scenario import KafkaTarget


class PartitionOffset(Frozen):
    """An offset of one partition of one topic."""

    topic: str
    partition: int
    offset: int


class PartitionLag(Frozen):
    """One partition's consumer lag: the group's committed offset against the end offset."""

    topic: str
    partition: int
    committed: int
    end: int
    lag: int = Field(description="end - committed, never below 0.")


class KafkaPositions(Frozen):
    """End offsets of the topics and the consumer group's lag at one moment."""

    at: datetime
    end_offsets: list[PartitionOffset] = Field(default_factory=list)
    committed: list[PartitionOffset] = Field(default_factory=list)
    total_lag: int = 0
    lag: list[PartitionLag] = Field(
        default_factory=list, description="Per partition the group has committed offsets on."
    )
    group_exists: bool | None = Field(default=None, description="None: not asked.")
    group_members: int | None = None


class LagSample(Frozen):
    """The group's total lag at one moment."""

    at: datetime
    total_lag: int


def _lag_only(sample: Any) -> Any:
    if isinstance(sample, dict):
        return {"at": sample["at"], "total_lag": sample.get("total_lag", 0)}
    return sample


class KafkaCheckInput(Frozen):
    """Check the events written between two positions (a fault's window)."""

    @model_validator(mode="before")
    @classmethod
    def _lag_only(cls, data: Any) -> Any:
        # Earlier releases sent whole positions per sample (every partition's offsets); the
        # check reads only the total lag, and an in-flight task of theirs must still run.
        if isinstance(data, dict) and data.get("lag_samples"):
            data = {
                **data,
                "lag_samples": [_lag_only(x) for x in data["lag_samples"]],
            }
        return data

    kafka: KafkaTarget
    start: KafkaPositions
    deadline: datetime = Field(description="Terminal events and lag drain are due by then.")
    recovered_at: datetime | None = Field(
        default=None,
        description="When the fault was recovered: drain time counts from it (else: now).",
    )
    lag_samples: list[LagSample] = Field(
        default_factory=list,
        description="The total lag read during the fault (for its peak), thinned to ~100.",
    )


class LagReport(Frozen):
    """The consumer group's lag course: baseline, peak, and when it drained."""

    baseline_lag: int
    peak_lag: int = 0
    final_lag: int = 0
    drained: bool = True
    drained_after_s: float | None = None
    tolerance: int = Field(
        default=0, description="Lag above the baseline still counted as drained."
    )
    samples: list[LagSample] = Field(
        default_factory=list, description="The course, thinned to at most ~100 samples."
    )
    partitions: list[PartitionLag] = Field(
        default_factory=list, description="At the end: the partitions still behind, worst first."
    )
    group_members: int | None = Field(
        default=None, description="Members of the group at the end; None: not known."
    )
    group_problem: str | None = Field(
        default=None, description="The group does not exist or has no members: lag means nothing."
    )
    group_lost: bool = Field(
        default=False, description="The group had members before the fault and has none after."
    )


class OrderViolation(Frozen):
    """An event out of its lifecycle order, with where to find it."""

    key: str
    topic: str
    partition: int
    offset: int
    previous: str = Field(description="The event before it, e.g. 'STEP_COMPLETED@41'.")
    event: str = Field(description="The event itself, e.g. 'STEP_STARTED@42'.")
    reason: str
    goal_run_id: str | None = None
    previous_key: str | None = Field(
        default=None, description="The earlier event's key, if another."
    )
    previous_topic: str | None = None
    previous_partition: int | None = None
    previous_offset: int | None = None


class LifecycleCounts(Frozen):
    """Legitimate lifecycle turns seen, so a reader knows what the window held."""

    step_retries: int = Field(default=0, description="STEP_STARTED again after STEP_FAILED.")
    replans: int = Field(default=0, description="A step number started again after it ended.")
    approvals: int = Field(default=0, description="STEP_APPROVAL_REQUESTED seen.")
    skips: int = 0
    pauses: int = 0
    cancels: int = 0


#: Fields of earlier releases' reports: recorded histories carry them and must keep replaying.
_RETIRED_REPORT_FIELDS = frozenset({"gaps", "gap_details"})


class KafkaOrderReport(Frozen):
    """Per-key lifecycle order over a fault's window."""

    @model_validator(mode="before")
    @classmethod
    def _drop_retired_fields(cls, data: Any) -> Any:
        # `gaps` became `no_terminal` (reconciled with Temporal before anything is judged).
        if isinstance(data, dict) and _RETIRED_REPORT_FIELDS & data.keys():
            data = {k: v for k, v in data.items() if k not in _RETIRED_REPORT_FIELDS}
        return data

    events_read: int = 0
    keys: int = 0
    violations: list[OrderViolation] = Field(default_factory=list)
    duplicates: int = Field(default=0, description="Re-sent events: same id, or same content.")
    duplicate_examples: list[str] = Field(default_factory=list)
    lag: LagReport | None = None
    goal_runs: int = Field(default=0, description="Goal runs in the window (in scope).")
    violations_total: int = Field(
        default=0, description="All violations; `violations` keeps examples."
    )
    unparseable: int = Field(
        default=0, description="Records that are not a valid event (also violations)."
    )
    no_terminal: list[str] = Field(
        default_factory=list, description="Goal runs in the window with no terminal event (cap)."
    )
    no_terminal_total: int = 0
    no_start: list[str] = Field(
        default_factory=list, description="Goal runs whose first event was not GOAL_STARTED (cap)."
    )
    no_start_total: int = 0
    lost_step_events: list[str] = Field(
        default_factory=list,
        description="Steps still open although their goal run ended: a lost terminal step event.",
    )
    lost_step_events_total: int = 0
    cross_topic: int = Field(
        default=0,
        description="Step events stamped before GOAL_STARTED or after the goal's end (reported).",
    )
    cross_topic_examples: list[str] = Field(default_factory=list)
    lifecycle: LifecycleCounts = Field(default_factory=LifecycleCounts)
    window_events: int = Field(default=0, description="Events read inside the window.")
    window_end: list[PartitionOffset] = Field(
        default_factory=list, description="End offsets when the check began: the window's end."
    )
    window_end_at: datetime | None = Field(
        default=None, description="When those end offsets were read."
    )
    read_to: list[PartitionOffset] = Field(default_factory=list)
    complete: bool = Field(default=True, description="The whole window was read.")
    attempt: int = Field(default=1, description="The activity attempt that produced the report.")
    resumed: bool = Field(
        default=False, description="It resumed from an earlier attempt's progress."
    )
    elapsed_s: float = 0.0
    notes: list[str] = Field(default_factory=list)


class KafkaCheckProgress(Frozen):
    """Heartbeat details of the check: what a retry resumes from."""

    started_at: datetime
    window_end: list[PartitionOffset]
    read_to: list[PartitionOffset] | None = Field(
        default=None,
        description="Positions the checker state matches; none: re-read from the start.",
    )
    checker: dict[str, Any] | None = None
    peak_lag: int = 0
    drained_at: datetime | None = None
    samples: list[LagSample] = Field(default_factory=list)
