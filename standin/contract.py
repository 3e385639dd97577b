"""ByteBot's public Temporal contract, as its worker defines it: names, input, result, phases.

Pure pydantic and the standard library, so the workflow sandbox passes it through. Field names
are ByteBot's own (camelCase on the wire, snake_case in Python through aliases). Models read
leniently (`extra="ignore"`), as the TypeScript worker ignores fields it does not know, so a
caller's richer input still starts a run.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: The real worker's namespace, task queue and workflow type (public API).
NAMESPACE = "bytebot"
TASK_QUEUE = "bytebot-goal-runs"
GOAL_RUN_WORKFLOW = "goalRunWorkflow"
CAPABILITY_PROBE = "CAPABILITY_PROBE"

#: Signals and queries of goalRunWorkflow.
APPROVE_STEP = "approveStep"
REJECT_STEP = "rejectStep"
PAUSE_GOAL = "pauseGoal"
RESUME_GOAL = "resumeGoal"
CANCEL_GOAL = "cancelGoal"
GET_PROGRESS = "getProgress"
GET_CURRENT_STEP = "getCurrentStep"


class Camel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Phase(StrEnum):
    """`ByteBotPhase`: where a goal run is."""

    INITIALIZING = "INITIALIZING"
    PLANNING = "PLANNING"
    EXECUTING = "EXECUTING"
    WAITING_USER_INPUT = "WAITING_USER_INPUT"
    VERIFYING = "VERIFYING"
    REPLANNING = "REPLANNING"
    PAUSED = "PAUSED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class GoalStatus(StrEnum):
    """`GoalRunResult.status`."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"


class Constraints(Camel):
    """`GoalRunInput.constraints`."""

    max_steps: int = Field(default=10, ge=1, description="Plans are cut to this many steps.")
    max_retries: int = Field(default=3, ge=0, description="Retries of a failed step per plan.")
    max_replans: int = Field(default=3, ge=0, description="New plans after a step fails for good.")
    timeout_ms: int = Field(default=3_600_000, ge=1)
    require_approval_for_high_risk: bool = True


class GoalContext(Camel):
    """`GoalRunInput.context`."""

    previous_attempts: int = 0
    inherited_knowledge: list[str] = Field(default_factory=list)


class GoalRunInput(Camel):
    """The input of one goalRunWorkflow; its workflow id is ``goalRunId``."""

    goal_run_id: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    user_id: str = "anonymous"
    goal_description: str = Field(min_length=1)
    constraints: Constraints = Field(default_factory=Constraints)
    context: GoalContext = Field(default_factory=GoalContext)
    mode: str | None = Field(default=None, description='"CAPABILITY_PROBE": one step, no LLM.')


class ErrorDetails(Camel):
    """Why a goal run failed."""

    error_type: str
    error_message: str
    failed_step: int | None = None
    recoverable: bool = False


class GoalRunResult(Camel):
    """What goalRunWorkflow returns; a failed goal run COMPLETES with ``status: "FAILED"``."""

    goal_run_id: str
    status: GoalStatus
    completed_at: str = Field(description="ISO-8601, ms, Z.")
    summary: str = ""
    steps_completed: int = Field(
        description="Completed plus skipped steps of the final plan (COMPLETED: all of them)."
    )
    total_duration_ms: int
    final_outcome: str | None = None
    error_details: ErrorDetails | None = None
    artifacts: list[str] = Field(default_factory=list)
    knowledge_gained: list[str] = Field(default_factory=list)


class Progress(Camel):
    """The `getProgress` query's answer."""

    goal_run_id: str
    phase: Phase
    plan_version: int = Field(description="0 for the first plan, +1 per replan.")
    total_steps: int
    current_step: int | None
    steps_completed: int
    is_paused: bool
    is_awaiting_approval: bool


GoalEventType = Literal[
    "GOAL_STARTED",
    "GOAL_COMPLETED",
    "GOAL_FAILED",
    "GOAL_CANCELLED",
    "GOAL_PAUSED",
    "GOAL_RESUMED",
]
StepEventType = Literal[
    "STEP_STARTED",
    "STEP_COMPLETED",
    "STEP_FAILED",
    "STEP_SKIPPED",
    "STEP_APPROVAL_REQUESTED",
    "STEP_APPROVED",
    "STEP_REJECTED",
]
TERMINAL_GOAL_EVENTS = frozenset({"GOAL_COMPLETED", "GOAL_FAILED", "GOAL_CANCELLED"})
