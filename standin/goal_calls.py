"""goalRunWorkflow's activity calls, each with the real worker's options (scaled). No I/O.

Only workflow code calls these (from inside a workflow), so the options live in one place:
planning 5 min start-to-close, retries 1s×2 up to 30s, 5 attempts; execution 10 min, heartbeat
30 s, retries 2s×2 up to 60s, 3 attempts; each Kafka emit 10 s, retries 500ms×2 up to 5s,
3 attempts. Every duration is multiplied by the process's time scale (`standin.runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from standin.contract import GoalEventType, GoalRunInput, StepEventType
    from standin.models import (
        EMIT_GOAL_EVENT,
        EMIT_STEP_EVENT,
        EXECUTE_STEP,
        PLAN_GOAL,
        GoalEventInput,
        Plan,
        PlanInput,
        PlannedStep,
        StepEventInput,
        StepInput,
        StepOutcome,
    )
    from standin.runtime import Runtime


@dataclass(frozen=True)
class GoalCalls:
    """The activity calls of one goal run."""

    goal: GoalRunInput
    rt: Runtime

    async def plan(self, version: int) -> Plan:
        """`planGoal`: the plan (version 0 first, +1 per replan)."""
        limits = self.goal.constraints
        plan: Plan = await workflow.execute_activity(
            PLAN_GOAL,
            PlanInput(
                goal_run_id=self.goal.goal_run_id,
                tenant_id=self.goal.tenant_id,
                goal_description=self.goal.goal_description,
                max_steps=limits.max_steps,
                max_retries=limits.max_retries,
                version=version,
            ),
            result_type=Plan,
            start_to_close_timeout=self.rt.seconds(300),
            retry_policy=self.rt.retry(1, 30, 5),
            summary=f"plan {version}",
        )
        return plan

    async def execute(self, step: PlannedStep, attempt: int) -> StepOutcome:
        """`executeStep`: one attempt at a step (Temporal retries the activity itself)."""
        outcome: StepOutcome = await workflow.execute_activity(
            EXECUTE_STEP,
            StepInput(
                goal_run_id=self.goal.goal_run_id,
                tenant_id=self.goal.tenant_id,
                step=step,
                step_attempt=attempt,
            ),
            result_type=StepOutcome,
            start_to_close_timeout=self.rt.seconds(600),
            heartbeat_timeout=self.rt.seconds(30),
            retry_policy=self.rt.retry(2, 60, 3),
            summary=f"step {step.step_number} attempt {attempt}",
        )
        return outcome

    async def emit_goal(self, event_type: GoalEventType, payload: dict[str, Any]) -> None:
        """`emitGoalEvent`."""
        await workflow.execute_activity(
            EMIT_GOAL_EVENT,
            GoalEventInput(
                goal_run_id=self.goal.goal_run_id,
                tenant_id=self.goal.tenant_id,
                event_type=event_type,
                payload=payload,
            ),
            start_to_close_timeout=self.rt.outage(10),
            retry_policy=self.rt.outage_retry(0.5, 5, 3),
            summary=event_type,
        )

    async def emit_step(self, n: int, event_type: StepEventType, payload: dict[str, Any]) -> None:
        """`emitStepEvent`."""
        await workflow.execute_activity(
            EMIT_STEP_EVENT,
            StepEventInput(
                goal_run_id=self.goal.goal_run_id,
                tenant_id=self.goal.tenant_id,
                step_number=n,
                event_type=event_type,
                payload=payload,
            ),
            start_to_close_timeout=self.rt.outage(10),
            retry_policy=self.rt.outage_retry(0.5, 5, 3),
            summary=f"{event_type} {n}",
        )
