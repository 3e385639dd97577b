"""The verdict of a chaos run, per success criterion, per fault and for the run.

These are the shapes of the verdict; `models.judge` computes it from the observations.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, model_validator

from models.base import Frozen
from models.faults import ExpectedBehavior
from models.kafka import KafkaOrderReport
from models.ledger import FaultRecord, TargetPreview
from models.observations import (
    Baseline,
    GoalRunsCheck,
    HoldProbe,
    ReconcileCheck,
    RecoveryCheck,
)
from models.scenario import DegradationLimits
from models.timeline import FaultTimeline


class Verdict(StrEnum):
    """The outcome of a criterion, a fault, a step or a run."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ABORTED = "aborted"
    NOT_RUN = "not-run"
    DRY_RUN = "dry-run"


class Criterion(StrEnum):
    """The seed's four success criteria."""

    NO_DATA_LOSS = "no-data-loss"
    AUTOMATIC_RECOVERY = "automatic-recovery"
    EVENT_ORDERING = "event-ordering"
    GRACEFUL_DEGRADATION = "graceful-degradation"


class CriterionResult(Frozen):
    """One criterion's verdict for one fault, with the evidence behind it."""

    criterion: Criterion
    verdict: Verdict
    summary: str
    findings: list[str] = Field(default_factory=list, description="What went wrong, by name.")
    evidence: list[str] = Field(default_factory=list, description="What was measured.")


class FaultObservations(Frozen):
    """Everything the probes saw around one fault: the input of `judge_fault`."""

    record: FaultRecord
    expected: ExpectedBehavior
    in_effect: bool = False
    baseline: Baseline | None = None
    probes: list[HoldProbe] = Field(default_factory=list)
    recovery: RecoveryCheck | None = None
    goal_runs: GoalRunsCheck | None = None
    kafka: KafkaOrderReport | None = None
    reconcile: ReconcileCheck | None = None
    kafka_expected: bool = True
    limits: DegradationLimits = Field(default_factory=DegradationLimits)
    exactly_once: bool = False
    aborted: str | None = None
    error: str | None = None


class FaultReport(Frozen):
    """One fault's verdict, criteria, time to recovery and ledger row."""

    fault_id: str
    label: str
    action: str
    expected: str
    verdict: Verdict
    reason: str = ""
    criteria: list[CriterionResult] = Field(default_factory=list)
    time_to_recovery_s: float | None = None
    record: FaultRecord | None = None
    preview: TargetPreview | None = None
    timeline: FaultTimeline | None = Field(
        default=None, description="What the probes saw over time, for the report's plots."
    )


class StepReport(Frozen):
    """One step's faults, or its pause."""

    index: int
    label: str
    verdict: Verdict
    faults: list[FaultReport] = Field(default_factory=list)


class ScenarioReport(Frozen):
    """The result of `ChaosScenarioWorkflow`: the verdict and why."""

    scenario: str
    workflow_id: str
    backend: str
    dry_run: bool = False
    started_at: datetime
    ended_at: datetime
    verdict: Verdict
    reason: str = ""
    criteria: list[CriterionResult] = Field(default_factory=list)
    steps: list[StepReport] = Field(default_factory=list)
    ledger: list[FaultRecord] = Field(
        default_factory=list,
        exclude=True,
        description="Each fault's ledger row. Not serialized: the rows travel once, in their "
        "fault reports (`record`), and are rebuilt from them when a report is read.",
    )
    score_pct: float = Field(0.0, ge=0, le=100, description="Share of criteria checks passed.")

    @model_validator(mode="after")
    def _ledger_from_records(self) -> ScenarioReport:
        if not self.ledger:
            rows = [f.record for f in self.faults() if f.record is not None]
            # Frozen: set once, while the model is being built.
            object.__setattr__(self, "ledger", rows)
        return self

    def faults(self) -> list[FaultReport]:
        """Every fault report, in order."""
        return [fault for step in self.steps for fault in step.faults]


def worst(verdicts: list[Verdict]) -> Verdict:
    """Combine verdicts: aborted > fail > inconclusive > pass; nothing counted is not-run."""
    counted = [v for v in verdicts if v not in (Verdict.NOT_RUN, Verdict.DRY_RUN)]
    for verdict in (Verdict.ABORTED, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.PASS):
        if verdict in counted:
            return verdict
    return Verdict.DRY_RUN if Verdict.DRY_RUN in verdicts else Verdict.NOT_RUN
