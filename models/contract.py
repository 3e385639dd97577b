"""How the system under test's goal runs say what happened: ByteBot's contract, as data.

The real `goalRunWorkflow` catches every failure of its body and *completes* with
`status: "FAILED"` in its result, so an execution status says little; the result, the plan's
step count and the phase search attribute say the rest. Every field defaults to ByteBot's own
name, so a scenario only sets them for another system.
"""

from __future__ import annotations

from pydantic import Field

from models.base import Frozen

#: Phases in which a goal run waits by design (for a person, an approval, a resume).
IDLE_PHASES = ("WAITING_USER_INPUT", "PAUSED", "AWAITING_APPROVAL")


class GoalRunContract(Frozen):
    """Where a goal run's outcome lives: result fields and search attributes."""

    id_field: str = Field("goalRunId", description="Input and result field of the goal run id.")
    status_field: str = Field("status", description="Result field with the outcome.")
    ok_statuses: list[str] = Field(
        default_factory=lambda: ["COMPLETED"], description="Outcomes that mean the work was done."
    )
    accepted_statuses: list[str] = Field(
        default_factory=lambda: ["CANCELLED"],
        description="Outcomes that are no loss either (a person cancelled the goal).",
    )
    steps_field: str = Field("stepsCompleted", description="Result field: steps done.")
    error_field: str = Field("errorDetails", description="Result field with the failure.")
    plan_steps_attribute: str | None = Field(
        "ByteBotStepCount",
        description="Int search attribute: steps in the final plan; a done run did them all.",
    )
    phase_attribute: str | None = Field(
        "ByteBotPhase", description="Keyword search attribute with the goal run's phase."
    )
    idle_phases: list[str] = Field(
        default_factory=lambda: list(IDLE_PHASES),
        description="Phases that wait by design: such a run is idle, not stalled.",
    )
