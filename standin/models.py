"""The stand-in worker's own envelopes: activity names and inputs, the plan, its defects.

Pure pydantic and the standard library (the workflow sandbox passes it through). The activity
names are ByteBot's (`emitGoalEvent`, `emitStepEvent`: checkers read them from histories);
`planGoal` and `executeStep` stand for its LLM planning and orchestrator-backed execution.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import Field

from standin.contract import Camel, GoalEventType, StepEventType

PLAN_GOAL = "planGoal"
EXECUTE_STEP = "executeStep"
EMIT_GOAL_EVENT = "emitGoalEvent"
EMIT_STEP_EVENT = "emitStepEvent"


class FaultyMode(StrEnum):
    """Deliberate defects, so a verdict can be shown to catch real ones. All off by default."""

    LOSE_EVENTS = "lose-events"
    """emitGoalEvent reports GOAL_COMPLETED written without writing it, for about half the runs."""
    REORDER_EVENTS = "reorder-events"
    """STEP_COMPLETED is written before STEP_STARTED for about half the steps."""
    FAIL_UNDER_STRESS = "fail-under-stress"
    """A step whose activity is retried or much slower than planned fails its goal run."""
    NO_RESTART = "no-restart"
    """The supervisor never restarts a replica that died (or was held down)."""
    WRONG_RESULT = "wrong-result"
    """About half the COMPLETED results, and every probe's, count one step too many."""
    STOP_COMMITTING = "stop-committing"
    """The consumer stays in its group but stops committing after its first minute (scaled)."""
    STOP_POLLING = "stop-polling"
    """A replica that lost Temporal once stops its worker for good, yet stays ready (a zombie)."""


WORKER_MODES = frozenset(
    {
        FaultyMode.LOSE_EVENTS,
        FaultyMode.REORDER_EVENTS,
        FaultyMode.FAIL_UNDER_STRESS,
        FaultyMode.WRONG_RESULT,
        FaultyMode.STOP_POLLING,
    }
)


def selected(key: str) -> bool:
    """A stable coin flip for a defect: True for about half the keys, the same on every retry."""
    return hashlib.sha256(key.encode()).digest()[0] % 2 == 0


class StepDecision(Camel):
    """The argument of `approveStep` / `rejectStep` (all optional: the waiting step is meant)."""

    step_id: str | None = None
    reason: str | None = None


class PlannedStep(Camel):
    """One step of a plan, as the (stand-in) LLM planner wrote it."""

    step_number: int = Field(ge=1)
    description: str
    work_ms: int = Field(ge=0, description="Unscaled time the step works.")
    high_risk: bool = False
    skip: bool = False
    failures: int = Field(default=0, ge=0, description="How many attempts report failure.")


class Plan(Camel):
    """What `planGoal` returns."""

    version: int = Field(ge=0, description="0 for the first plan, +1 per replan.")
    steps: list[PlannedStep] = Field(min_length=1)


class PlanInput(Camel):
    """The input of `planGoal`."""

    goal_run_id: str
    tenant_id: str
    goal_description: str
    max_steps: int
    max_retries: int
    version: int = 0


class StepInput(Camel):
    """The input of `executeStep`."""

    goal_run_id: str
    tenant_id: str
    step: PlannedStep
    step_attempt: int = Field(ge=1, description="The workflow's attempt at this step.")


class StepOutcome(Camel):
    """What `executeStep` returns: the orchestrator's answer."""

    success: bool
    output: str = ""
    error: str | None = None


class GoalEventInput(Camel):
    """The input of `emitGoalEvent`."""

    goal_run_id: str
    tenant_id: str
    event_type: GoalEventType
    payload: dict[str, Any] = Field(default_factory=dict)


class StepEventInput(Camel):
    """The input of `emitStepEvent`."""

    goal_run_id: str
    tenant_id: str
    step_number: int = Field(ge=1)
    event_type: StepEventType
    payload: dict[str, Any] = Field(default_factory=dict)
