"""The stand-in's call envelopes: what goalRunWorkflow and its activities take and return.

Pure pydantic and the standard library, so the workflow sandbox can pass this module through.
The expected result of a goal run is a pure function of its input (`expected_output`), so a
checker can tell a wrong result from a right one without asking the worker.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The task queue ByteBot's goal-run workers poll.
DEFAULT_TASK_QUEUE = "bytebot-goal-runs"
#: Workflow type name: public API (ByteBot's API, visibility queries and the chaos tool use it).
GOAL_RUN_WORKFLOW = "goalRunWorkflow"
#: Activity type names.
RUN_STEP = "run_step"
EMIT_GOAL_EVENT = "emit_goal_event"


class Frozen(BaseModel):
    """Immutable and strict: a typo in an input fails loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FaultyMode(StrEnum):
    """Deliberate defects, so a chaos verdict can be shown to catch real ones. All off by default.

    Each is switched on per process with ``--faulty MODE``.
    """

    LOSE_EVENTS = "lose-events"
    """A replica drops the GOAL_COMPLETED event of about half the goal runs."""
    REORDER_EVENTS = "reorder-events"
    """A replica emits STEP_COMPLETED before STEP_STARTED for about half the steps."""
    FAIL_UNDER_STRESS = "fail-under-stress"
    """A step retried or much slower than expected fails its goal run, non-retryably."""
    NO_RESTART = "no-restart"
    """The supervisor never restarts a replica that died (or was held down)."""
    WRONG_RESULT = "wrong-result"
    """A goal run whose goal is "canary" returns a wrong output."""


class GoalRunInput(Frozen):
    """The input of one goalRunWorkflow."""

    goal_run_id: str = Field(min_length=1, description="ByteBot's id; also the workflow id.")
    goal: str = Field(default="demo", description='What to do; "canary" marks a checker\'s run.')
    steps: int = Field(default=3, ge=1, le=50, description="How many step activities to run.")
    step_seconds: float = Field(default=0.5, ge=0, le=60, description="How long each step works.")


class GoalRunResult(Frozen):
    """What a completed goalRunWorkflow returns."""

    goal_run_id: str
    goal: str
    status: Literal["COMPLETED"] = "COMPLETED"
    steps_completed: int
    output: str = Field(description="Equals expected_output(goal, steps) when the run was right.")


class StepInput(Frozen):
    """The input of one run_step activity."""

    goal_run_id: str
    goal: str
    step_number: int = Field(ge=1)
    step_seconds: float = Field(ge=0)


class StepResult(Frozen):
    """What one run_step returns: its share of the goal's output."""

    step_number: int
    output: str


class GoalEventType(StrEnum):
    """Event types on the goal topic and the step topic."""

    GOAL_STARTED = "GOAL_STARTED"
    GOAL_COMPLETED = "GOAL_COMPLETED"
    GOAL_FAILED = "GOAL_FAILED"
    STEP_STARTED = "STEP_STARTED"
    STEP_COMPLETED = "STEP_COMPLETED"


GoalLevelEvent = Literal[
    GoalEventType.GOAL_STARTED, GoalEventType.GOAL_COMPLETED, GoalEventType.GOAL_FAILED
]


class GoalEventInput(Frozen):
    """The input of one emit_goal_event activity (goal-level events only)."""

    goal_run_id: str
    goal: str
    event_type: GoalLevelEvent
    reason: str | None = Field(default=None, description="Why the goal failed (GOAL_FAILED only).")


def step_output(goal: str, step_number: int) -> str:
    """The right output of one step: ``"{goal}#{step_number}"``."""
    return f"{goal}#{step_number}"


def combine_outputs(step_outputs: list[str]) -> str:
    """The goal's output from its steps' outputs: sha256 hex of them joined by commas."""
    return hashlib.sha256(",".join(step_outputs).encode()).hexdigest()


def expected_output(goal: str, steps: int) -> str:
    """The output a correct goal run returns for this input.

    ``sha256(",".join(f"{goal}#{i}" for i in range(1, steps + 1)).encode()).hexdigest()``
    """
    return combine_outputs([step_output(goal, i) for i in range(1, steps + 1)])
