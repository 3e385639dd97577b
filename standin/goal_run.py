"""goalRunWorkflow: ByteBot's goal run, as the stand-in plays it. Orchestration only, no I/O.

GOAL_STARTED, then each step in turn as a `run_step` activity, then GOAL_COMPLETED; a step that
cannot succeed (non-retryable, or out of attempts) emits GOAL_FAILED and fails the run. The
output is combined from the steps' outputs, so it equals `expected_output(goal, steps)` exactly
when every step did its job.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from standin.models import (
        EMIT_GOAL_EVENT,
        GOAL_RUN_WORKFLOW,
        RUN_STEP,
        GoalEventInput,
        GoalEventType,
        GoalLevelEvent,
        GoalRunInput,
        GoalRunResult,
        StepInput,
        StepResult,
        combine_outputs,
    )

#: Retried with a short, capped backoff: a replica that dies or loses Kafka is replaced quickly.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=20,
)
START_TO_CLOSE = timedelta(seconds=30)
HEARTBEAT_TIMEOUT = timedelta(seconds=5)


@workflow.defn(name=GOAL_RUN_WORKFLOW, failure_exception_types=[ValidationError])
class GoalRunWorkflow:
    """Runs a goal's steps one after another and reports the goal's fate on Kafka."""

    def __init__(self) -> None:
        self._steps_completed = 0

    @workflow.query(name="steps_completed")
    def steps_completed(self) -> int:
        """How many steps have completed so far."""
        return self._steps_completed

    @workflow.run
    async def run(self, goal_run: GoalRunInput) -> GoalRunResult:
        """Run the goal; fails (non-retryably) after emitting GOAL_FAILED if a step fails."""
        await self._emit(goal_run, GoalEventType.GOAL_STARTED)
        outputs: list[str] = []
        try:
            for number in range(1, goal_run.steps + 1):
                workflow.set_current_details(f"step {number} of {goal_run.steps}")
                result = await workflow.execute_activity(
                    RUN_STEP,
                    StepInput(
                        goal_run_id=goal_run.goal_run_id,
                        goal=goal_run.goal,
                        step_number=number,
                        step_seconds=goal_run.step_seconds,
                    ),
                    result_type=StepResult,
                    start_to_close_timeout=START_TO_CLOSE,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                    summary=f"step {number}",
                )
                outputs.append(result.output)
                self._steps_completed = number
        except ActivityError as e:
            reason = str(e.cause or e)
            await self._emit(goal_run, GoalEventType.GOAL_FAILED, reason=reason)
            raise ApplicationError(
                f"goal run failed at step {self._steps_completed + 1}: {reason}",
                type="GoalFailed",
                non_retryable=True,
            ) from e
        await self._emit(goal_run, GoalEventType.GOAL_COMPLETED)
        workflow.set_current_details("completed")
        return GoalRunResult(
            goal_run_id=goal_run.goal_run_id,
            goal=goal_run.goal,
            steps_completed=self._steps_completed,
            output=combine_outputs(outputs),
        )

    async def _emit(
        self, goal_run: GoalRunInput, event_type: GoalLevelEvent, reason: str | None = None
    ) -> None:
        await workflow.execute_activity(
            EMIT_GOAL_EVENT,
            GoalEventInput(
                goal_run_id=goal_run.goal_run_id,
                goal=goal_run.goal,
                event_type=event_type,
                reason=reason,
            ),
            start_to_close_timeout=START_TO_CLOSE,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary=event_type.value,
        )
