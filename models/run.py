"""Envelopes of the orchestration itself: a resolved scenario, a fault run, the run status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from models.base import Frozen
from models.faults import Symptom
from models.ledger import FaultRecord, FaultRequest
from models.observations import HoldProbe, ProbeContext
from models.scenario import Scenario


class ResolvedScenario(Frozen):
    """A scenario ready to run: built-in name looked up, caps applied, safety checked."""

    scenario: Scenario
    backend: str = Field(description="The fault backend of the worker that will run it.")
    allowed_namespaces: list[str] = Field(default_factory=list)


class FaultRunInput(Frozen):
    """The input of one `ChaosFaultWorkflow`: the fault, and how to check the system."""

    request: FaultRequest
    context: ProbeContext
    alongside: frozenset[Symptom] = Field(
        default=frozenset(),
        description="What the step's other faults, held at the same time, are expected to "
        "cause (a sibling's pod kill restarts a replica): normal under this fault too.",
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_retired_fields(cls, data: Any) -> Any:
        # `parent_workflow_id` was never read (the child signals `workflow.info().parent`);
        # recorded histories still carry it, and they must keep replaying.
        if isinstance(data, dict) and "parent_workflow_id" in data:
            data = {k: v for k, v in data.items() if k != "parent_workflow_id"}
        return data


class RunStatus(Frozen):
    """What the `status` query answers while a run is in progress."""

    scenario: str
    phase: str
    step: int | None = None
    step_label: str | None = None
    running_faults: list[str] = Field(default_factory=list)
    time_left_s: float | None = Field(None, description="Until the longest running fault ends.")
    paused: bool = False
    abort_reason: str | None = None
    ledger: list[FaultRecord] = Field(default_factory=list)
    findings: list[str] = Field(
        default_factory=list, description="The latest findings (at most 50; see the total)."
    )
    findings_total: int | None = Field(None, description="Findings so far, all of them.")


class FaultProgress(Frozen):
    """What a fault run's `progress` query answers: its phase, row, hold and probes so far."""

    phase: str
    record: FaultRecord | None = None
    hold_until: datetime | None = Field(None, description="When the hold ends, once injected.")
    probes: int = Field(0, description="Hold probes so far.")
    last_probe: HoldProbe | None = None
