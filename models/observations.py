"""What the verification probes observe around a fault: goal runs, pollers, replicas, canaries.

Each probe is an activity taking one of the `...Input` envelopes and returning one model.
The verdict is computed from these by `models.judge.judge_fault`, a pure function.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, ConfigDict, Field, model_validator

from models.base import Frozen
from models.faults import PodTarget
from models.kafka import KafkaPositions
from models.ledger import ReplicaSet
from models.scenario import AbortConditions, Verification


class LatencyStats(Frozen):
    """Percentiles of a set of durations, in seconds."""

    count: int = Field(ge=0)
    p50_s: float | None = None
    p95_s: float | None = None

    @classmethod
    def of(cls, seconds: list[float]) -> LatencyStats:
        """Nearest-rank p50 and p95 of `seconds` (none when empty)."""
        ordered = sorted(seconds)
        if not ordered:
            return cls(count=0)

        def rank(pct: float) -> float:
            return ordered[max(0, min(len(ordered) - 1, round(pct * len(ordered) + 0.5) - 1))]

        return cls(count=len(ordered), p50_s=rank(0.50), p95_s=rank(0.95))

    def __str__(self) -> str:
        if self.p50_s is None or self.p95_s is None:
            return "no samples"
        return f"p50 {self.p50_s:.2f}s, p95 {self.p95_s:.2f}s over {self.count}"


class ProbeContext(Frozen):
    """What every probe needs to know: whose fault, which system, which limits."""

    scenario_id: str = Field(
        validation_alias=AliasChoices("scenario_id", "run_id"),
        description="Workflow id of the scenario run (`run_id` in recorded histories).",
    )
    fault_id: str
    verification: Verification
    target: PodTarget = Field(description="The fault's target; replicas are read through it.")
    abort: AbortConditions = Field(default_factory=AbortConditions)


class GoalRunMark(Frozen):
    """A goal run in flight when a fault began, and how far its history had got."""

    workflow_id: str
    run_id: str
    history_length: int


class Baseline(Frozen):
    """The steady state before a fault: what must survive it."""

    taken_at: datetime
    goal_runs: list[GoalRunMark] = Field(default_factory=list)
    truncated: bool = Field(
        default=False, description="More goal runs were in flight than followed."
    )
    pollers: int = 0
    replicas: ReplicaSet = Field(default_factory=ReplicaSet)
    kafka: KafkaPositions | None = None
    canary_ids: list[str] = Field(default_factory=list, description="Canaries started now.")
    problems: list[str] = Field(default_factory=list, description="Why it is not steady.")
    latency: LatencyStats | None = Field(
        default=None, description="End-to-end latency of goal runs closed shortly before."
    )
    start_latency: LatencyStats | None = Field(
        default=None, description="How long the frontend took to accept the baseline canaries."
    )
    starts_ok: int = Field(default=0, description="Baseline canary starts accepted.")
    starts_failed: int = Field(default=0, description="Baseline canary starts refused.")

    @property
    def steady(self) -> bool:
        """True when nothing was wrong before the fault."""
        return not self.problems


class BaselineMarks(Frozen):
    """The part of the steady state a verification activity reads (not the whole `Baseline`).

    Unknown fields are ignored: an activity task scheduled by an earlier release carries the
    whole `Baseline`, and it must still run.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _from_baseline(cls, data: Any) -> Any:
        # A whole `Baseline` is accepted too (direct callers: tests, benchmarks).
        if isinstance(data, Baseline):
            return {
                "goal_runs": data.goal_runs,
                "truncated": data.truncated,
                "replicas": data.replicas,
            }
        return data

    goal_runs: list[GoalRunMark] = Field(
        default_factory=list, description="Goal runs in flight (only where they are followed)."
    )
    truncated: bool = Field(
        default=False, description="More goal runs were in flight than followed."
    )
    replicas: ReplicaSet = Field(default_factory=ReplicaSet)

    @classmethod
    def of(cls, baseline: Baseline, *, goal_runs: bool) -> BaselineMarks:
        """The replicas of `baseline`, and its goal-run marks when `goal_runs`."""
        return cls(
            goal_runs=baseline.goal_runs if goal_runs else [],
            truncated=baseline.truncated,
            replicas=baseline.replicas,
        )


#: Examples kept in a list that grows with the goal runs (the count is kept beside it).
MAX_EXAMPLES = 20


class HoldProbeInput(Frozen):
    """A periodic check while a fault holds."""

    context: ProbeContext
    baseline: Baseline | None = Field(
        default=None,
        description="Not read by the probe, so not sent: every probe's input is in the history.",
    )
    injected_at: datetime
    no_pollers_since: datetime | None = Field(
        default=None,
        description="Carried from the last probe: when pollers were last seen missing.",
    )


class HoldProbe(Frozen):
    """What one check during the hold saw; `breach` names a crossed abort condition.

    Its failed goal runs are capped at `MAX_EXAMPLES` (the count is in `failed_total`): every
    probe's result is in the fault's history, and a probe lists all runs failed since injection.
    """

    @model_validator(mode="before")
    @classmethod
    def _cap_failed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            ids = data.get("failed_goal_runs") or []
            reasons = data.get("failed_goal_run_reasons") or []
            if len(ids) > MAX_EXAMPLES or len(reasons) > MAX_EXAMPLES:
                total = max(data.get("failed_total") or 0, len(ids))
                data = {
                    **data,
                    "failed_goal_runs": ids[:MAX_EXAMPLES],
                    "failed_goal_run_reasons": reasons[:MAX_EXAMPLES],
                    "failed_total": total,
                }
        return data

    at: datetime
    canary_starts_ok: int = 0
    canary_starts_failed: int = 0
    canary_ids: list[str] = Field(default_factory=list)
    failed_goal_runs: list[str] = Field(default_factory=list)
    pollers: int = Field(default=0, description="Live pollers of the goal runs' task queue.")
    no_pollers_since: datetime | None = None
    breach: str | None = None
    notes: list[str] = Field(default_factory=list)
    failed_goal_run_reasons: list[str] = Field(
        default_factory=list, description="`<workflow id>: <status>` of each failed goal run."
    )
    start_latency_s: float | None = Field(
        default=None, description="How long the frontend took to accept the canary start."
    )
    replicas_ready: int | None = Field(
        default=None, description="Worker replicas ready at this probe; None: not read."
    )
    replicas_total: int | None = Field(default=None, description="Worker replicas known.")
    live_pollers: list[str] = Field(
        default_factory=list, description="Identities of the live pollers (who polls where)."
    )
    failed_total: int | None = Field(
        default=None,
        description="Goal runs failed since injection when more than the examples listed.",
    )

    @property
    def failed_count(self) -> int:
        """How many goal runs had failed since injection (not only the examples)."""
        return max(self.failed_total or 0, len(self.failed_goal_runs))


class RecoveryInput(Frozen):
    """Wait, after the fault was recovered, for the system to come back by itself."""

    context: ProbeContext
    baseline: BaselineMarks = Field(description="The baseline's replicas (no goal-run marks).")
    recovered_at: datetime
    injected_at: datetime
    targets: list[str] = Field(
        default_factory=list, description="Names of the replicas the fault hit."
    )


class RecoveryCheck(Frozen):
    """Whether, and how fast, the system came back with no manual action."""

    recovered: bool
    time_to_recovery_s: float | None = Field(
        default=None,
        description="From the end of the fault until pollers, replicas and a canary are back.",
    )
    pollers: int = 0
    replicas: ReplicaSet = Field(default_factory=ReplicaSet)
    canary_completed: bool | None = None
    problems: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    breach: str | None = None
    pollers_back_after_s: float | None = Field(
        default=None, description="From the end of the fault until a live poller was seen."
    )
    replicas_ready_after_s: float | None = Field(
        default=None,
        description="From the end of the fault until every baseline replica was ready.",
    )
    canary_completed_after_s: float | None = Field(
        default=None, description="From the end of the fault until the recovery canary completed."
    )
    canary_id: str | None = Field(default=None, description="The recovery canary's workflow id.")
    never_back: list[str] = Field(
        default_factory=list, description="Targets that were not running and ready by the end."
    )
    not_polling: list[str] = Field(
        default_factory=list, description="Ready replicas with no live poller of their own."
    )


class GoalRunsInput(Frozen):
    """Check that every goal run in flight at the fault, and every canary, survived it."""

    context: ProbeContext
    baseline: BaselineMarks = Field(description="The goal runs and replicas before the fault.")
    canary_ids: list[str] = Field(default_factory=list)
    injected_at: datetime
    deadline: datetime
    recovered_at: datetime | None = Field(
        default=None, description="The fault's end: goal runs started until then are followed."
    )


class GoalRunLoss(Frozen):
    """A goal run that did not survive: failed, timed out, terminated, stalled, wrong result."""

    workflow_id: str
    status: str = Field(
        description="failed, timed-out, terminated, canceled, stalled, result-failed, "
        "wrong-result or missing."
    )
    reason: str
    canary: bool = Field(
        default=False, description="A canary of this fault, not a goal run of the system."
    )


class GoalRunsCheck(Frozen):
    """The fate of the goal runs that were in flight, and of the canaries."""

    checked: int = 0
    completed: int = 0
    progressing: int = 0
    losses: list[GoalRunLoss] = Field(default_factory=list)
    canaries_ok: int = 0
    canaries_started: int = 0
    activity_failures: int = 0
    activity_timeouts: int = 0
    activity_retries: int = 0
    oom_kills: int = 0
    replica_restarts: int = 0
    canaries_progressing: int = Field(
        default=0, description="Canaries still running, but progressing."
    )
    histories_read: int = Field(default=0, description="Histories read for the activity counts.")
    histories_truncated: bool = Field(
        default=False, description="More affected runs than histories read: the counts are a floor."
    )
    waited_s: float = Field(default=0.0, description="How long the check waited for runs to close.")
    evidence: list[str] = Field(default_factory=list, description="What was measured, in words.")
    started_during: int = Field(
        default=0, description="Goal runs started while the fault held, followed too."
    )
    idle: int = Field(default=0, description="Runs still open but waiting by design.")
    results_checked: int = Field(default=0, description="Closed runs whose result was judged.")
    losses_total: int = Field(default=0, description="All losses; `losses` keeps examples.")
    latency: LatencyStats | None = Field(
        default=None, description="End-to-end latency of goal runs that closed after injection."
    )


class LostEvent(Frozen):
    """An event Temporal says happened that Kafka does not have."""

    goal_run_id: str
    event: str = Field(description="The missing event, e.g. GOAL_COMPLETED.")
    cause: str = Field(description="What the goal run's history says about its emit.")
    swallowed: bool = Field(
        default=False,
        description="The emit gave up and the workflow swallowed it: the system's own design.",
    )


class ReconcileInput(Frozen):
    """Goal runs whose events look incomplete in Kafka, to be checked against Temporal."""

    context: ProbeContext
    no_terminal: list[str] = Field(default_factory=list, description="No terminal event read.")
    no_start: list[str] = Field(
        default_factory=list, description="Events read, but no GOAL_STARTED before them."
    )
    window_start: datetime = Field(description="The Kafka window's start (the steady state).")
    window_end_at: datetime | None = Field(
        default=None, description="When the window's end was read: later closes are not judged."
    )


class ReconcileCheck(Frozen):
    """Temporal and Kafka reconciled: what ended or started in Temporal but is not in Kafka."""

    checked: int = 0
    still_open: int = Field(default=0, description="Runs with no terminal event that still run.")
    lost: list[LostEvent] = Field(default_factory=list)
    lost_total: int = 0
    evidence: list[str] = Field(default_factory=list)
