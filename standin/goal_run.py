"""goalRunWorkflow as ByteBot runs it: plan, execute with retries and replans, report. No I/O.

INITIALIZING, then PLANNING (`planGoal`), EXECUTING each step (`executeStep` between a
STEP_STARTED and a STEP_COMPLETED/STEP_FAILED), retrying a failed step after
min(30 s, 2^n s) (scaled) up to ``maxRetries`` times, then REPLANNING (step numbers start
again at 1) up to ``maxReplans`` times; high-risk steps wait in AWAITING_APPROVAL for
`approveStep`/`rejectStep`; `pauseGoal` parks the run in PAUSED at the next step boundary until
`resumeGoal`; `cancelGoal` ends it CANCELLED. ``mode: "CAPABILITY_PROBE"`` runs one step with no
planning and no approval.

Like the real workflow, it catches every failure of its body and COMPLETES with
``status: "FAILED"`` and `ErrorDetails`; the terminal goal event's emit failure is swallowed.
``ByteBotPhase`` and the other ``ByteBot*`` search attributes are kept current.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from standin import runtime
    from standin.contract import (
        APPROVE_STEP,
        CANCEL_GOAL,
        CAPABILITY_PROBE,
        GET_CURRENT_STEP,
        GET_PROGRESS,
        GOAL_RUN_WORKFLOW,
        PAUSE_GOAL,
        REJECT_STEP,
        RESUME_GOAL,
        ErrorDetails,
        GoalEventType,
        GoalRunInput,
        GoalRunResult,
        GoalStatus,
        Phase,
        Progress,
        StepEventType,
    )
    from standin.goal_calls import GoalCalls
    from standin.models import (
        FaultyMode,
        Plan,
        PlannedStep,
        StepDecision,
        StepOutcome,
        selected,
    )


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox for this workflow: `standin` passed through, so `runtime` is the process's."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("standin")
    )


PHASE = SearchAttributeKey.for_keyword("ByteBotPhase")
TENANT_ID = SearchAttributeKey.for_keyword("ByteBotTenantId")
GOAL_RUN_ID = SearchAttributeKey.for_keyword("ByteBotGoalRunId")
STEP_COUNT = SearchAttributeKey.for_int("ByteBotStepCount")
HAS_HIGH_RISK = SearchAttributeKey.for_bool("ByteBotHasHighRiskSteps")
AWAITING_APPROVAL = SearchAttributeKey.for_bool("ByteBotIsAwaitingApproval")
ERROR_TYPE = SearchAttributeKey.for_keyword("ByteBotErrorType")

#: The probe's one step works this long (unscaled).
PROBE_STEP_MS = 500
APPROVAL_WAIT_S = 24 * 3600.0


class GoalFailure(Exception):
    """The goal run cannot succeed; becomes ``status: "FAILED"`` and its `ErrorDetails`."""

    def __init__(self, details: ErrorDetails) -> None:
        super().__init__(details.error_message)
        self.details = details


class GoalCancelled(Exception):
    """`cancelGoal` took effect."""


@workflow.defn(name=GOAL_RUN_WORKFLOW, failure_exception_types=[ValidationError])
class GoalRunWorkflow:
    """One goal run; see the module docstring."""

    def __init__(self) -> None:
        self._rt = runtime.current()
        self._goal: GoalRunInput | None = None
        self._phase = Phase.INITIALIZING
        self._plan: Plan | None = None
        self._current: PlannedStep | None = None
        self._steps_done = 0
        self._paused = self._cancel = self._awaiting = False
        self._decision: bool | None = None

    # --- signals and queries ------------------------------------------------------------

    @workflow.signal(name=APPROVE_STEP)
    def approve_step(self, decision: StepDecision | None = None) -> None:
        """Approve the step waiting for approval."""
        if self._awaiting:
            self._decision = True

    @workflow.signal(name=REJECT_STEP)
    def reject_step(self, decision: StepDecision | None = None) -> None:
        """Reject the step waiting for approval (it is skipped)."""
        if self._awaiting:
            self._decision = False

    @workflow.signal(name=PAUSE_GOAL)
    def pause_goal(self) -> None:
        """Pause at the next step boundary."""
        self._paused = True

    @workflow.signal(name=RESUME_GOAL)
    def resume_goal(self) -> None:
        """Resume a paused run."""
        self._paused = False

    @workflow.signal(name=CANCEL_GOAL)
    def cancel_goal(self) -> None:
        """End the run CANCELLED at the next step boundary or wait."""
        self._cancel = True

    @workflow.query(name=GET_PROGRESS)
    def get_progress(self) -> Progress:
        """Where the run is."""
        return Progress(
            goal_run_id=self._goal.goal_run_id if self._goal else "",
            phase=self._phase,
            plan_version=self._plan.version if self._plan else 0,
            total_steps=len(self._plan.steps) if self._plan else 0,
            current_step=self._current.step_number if self._current else None,
            steps_completed=self._steps_done,
            is_paused=self._phase == Phase.PAUSED,
            is_awaiting_approval=self._awaiting,
        )

    @workflow.query(name=GET_CURRENT_STEP)
    def get_current_step(self) -> PlannedStep | None:
        """The step being worked on, if any."""
        return self._current

    # --- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, goal: GoalRunInput) -> GoalRunResult:
        """Run the goal; always returns a result (COMPLETED, FAILED or CANCELLED)."""
        self._goal = goal
        self._calls = GoalCalls(goal, self._rt)
        workflow.upsert_search_attributes(
            [
                TENANT_ID.value_set(goal.tenant_id),
                GOAL_RUN_ID.value_set(goal.goal_run_id),
                STEP_COUNT.value_set(0),
                HAS_HIGH_RISK.value_set(False),
                AWAITING_APPROVAL.value_set(False),
            ]
        )
        self._set_phase(Phase.INITIALIZING)
        try:
            await self._emit_goal(
                "GOAL_STARTED",
                {
                    "goalDescription": goal.goal_description,
                    "userId": goal.user_id,
                    "mode": goal.mode,
                },
            )
            if goal.mode == CAPABILITY_PROBE:
                await self._probe()
            else:
                await self._plan_and_execute()
        except GoalCancelled:
            return await self._finish(GoalStatus.CANCELLED, "GOAL_CANCELLED")
        except workflow.NondeterminismError:
            raise
        except Exception as e:  # the real workflow catches every failure of its body
            details = e.details if isinstance(e, GoalFailure) else _details_of(e)
            return await self._finish(GoalStatus.FAILED, "GOAL_FAILED", details)
        return await self._finish(GoalStatus.COMPLETED, "GOAL_COMPLETED")

    async def _probe(self) -> None:
        step = PlannedStep(step_number=1, description="capability probe", work_ms=PROBE_STEP_MS)
        self._plan = Plan(version=0, steps=[step])
        workflow.upsert_search_attributes([STEP_COUNT.value_set(1)])
        self._set_phase(Phase.EXECUTING)
        if not await self._run_step(step, max_retries=0):
            raise GoalFailure(
                ErrorDetails(
                    error_type="STEP_FAILED", failed_step=1, error_message="the probe's step failed"
                )
            )
        self._steps_done = 1

    async def _plan_and_execute(self) -> None:
        assert self._goal is not None
        limits = self._goal.constraints
        version = 0
        while True:
            self._set_phase(Phase.PLANNING if version == 0 else Phase.REPLANNING)
            self._plan = await self._calls.plan(version)
            self._steps_done = 0
            workflow.upsert_search_attributes(
                [
                    STEP_COUNT.value_set(len(self._plan.steps)),
                    HAS_HIGH_RISK.value_set(any(s.high_risk for s in self._plan.steps)),
                ]
            )
            self._set_phase(Phase.EXECUTING)
            failed = await self._execute(self._plan)
            if failed is None:
                break
            if version >= limits.max_replans:
                raise GoalFailure(
                    ErrorDetails(
                        error_type="STEP_FAILED",
                        failed_step=failed,
                        recoverable=False,
                        error_message=f"step {failed} failed {limits.max_retries + 1} times in "
                        f"each of {version + 1} plans",
                    )
                )
            version += 1
        self._set_phase(Phase.VERIFYING)

    async def _execute(self, plan: Plan) -> int | None:
        """Run a plan's steps; the number of a step that failed for good, else None."""
        assert self._goal is not None
        for step in plan.steps:
            await self._checkpoint()
            self._current = step
            needs_ok = step.high_risk and self._goal.constraints.require_approval_for_high_risk
            if needs_ok and not await self._approval(step):
                await self._emit_step(step.step_number, "STEP_SKIPPED", {"reason": "rejected"})
            elif step.skip:
                await self._emit_step(step.step_number, "STEP_SKIPPED", {"reason": "planned"})
            elif not await self._run_step(step, self._goal.constraints.max_retries):
                return step.step_number
            self._steps_done += 1
        self._current = None
        return None

    async def _run_step(self, step: PlannedStep, max_retries: int) -> bool:
        """Attempt a step up to ``max_retries + 1`` times; whether it completed."""
        assert self._goal is not None and self._plan is not None
        n = step.step_number
        for attempt in range(1, max_retries + 2):
            if attempt > 1:
                await self._sleep(self._rt.seconds(min(30.0, 2.0 ** (attempt - 1))))
            await self._checkpoint()
            payload = {
                "attempt": attempt,
                "planVersion": self._plan.version,
                "description": step.description,
            }
            await self._emit_step(n, "STEP_STARTED", payload)
            try:
                outcome = await self._calls.execute(step, attempt)
            except ActivityError as e:
                cause = e.cause
                if isinstance(cause, ApplicationError) and cause.non_retryable:
                    await self._emit_step(n, "STEP_FAILED", {**payload, "error": str(cause)})
                    raise GoalFailure(
                        ErrorDetails(
                            error_type=cause.type or "STEP_FAILED",
                            error_message=str(cause),
                            failed_step=n,
                        )
                    ) from e
                outcome = StepOutcome(success=False, error=str(cause or e))
            if outcome.success:
                await self._emit_step(n, "STEP_COMPLETED", payload)
                return True
            await self._emit_step(n, "STEP_FAILED", {**payload, "error": outcome.error})
        return False

    async def _approval(self, step: PlannedStep) -> bool:
        n = step.step_number
        await self._emit_step(n, "STEP_APPROVAL_REQUESTED", {"description": step.description})
        self._decision, self._awaiting = None, True
        workflow.upsert_search_attributes([AWAITING_APPROVAL.value_set(True)])
        self._set_phase(Phase.AWAITING_APPROVAL)
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None or self._cancel,
                timeout=self._rt.seconds(APPROVAL_WAIT_S),
            )
        except TimeoutError:
            self._decision = False
        self._awaiting = False
        workflow.upsert_search_attributes([AWAITING_APPROVAL.value_set(False)])
        self._set_phase(Phase.EXECUTING)
        if self._cancel:
            raise GoalCancelled
        approved = bool(self._decision)
        await self._emit_step(n, "STEP_APPROVED" if approved else "STEP_REJECTED", {})
        return approved

    async def _checkpoint(self) -> None:
        """Honour cancelGoal and pauseGoal between steps."""
        if self._cancel:
            raise GoalCancelled
        if not self._paused:
            return
        before = self._phase
        self._set_phase(Phase.PAUSED)
        await self._emit_goal("GOAL_PAUSED", {})
        await workflow.wait_condition(lambda: not self._paused or self._cancel)
        if self._cancel:
            raise GoalCancelled
        await self._emit_goal("GOAL_RESUMED", {})
        self._set_phase(before)

    async def _sleep(self, duration: timedelta) -> None:
        """A retry backoff that a cancelGoal cuts short."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._cancel, timeout=duration)

    async def _finish(
        self, status: GoalStatus, event: GoalEventType, details: ErrorDetails | None = None
    ) -> GoalRunResult:
        assert self._goal is not None
        self._current = None
        self._set_phase(Phase(status.value))
        if details is not None:
            workflow.upsert_search_attributes([ERROR_TYPE.value_set(details.error_type)])
        elapsed_ms = int((workflow.now() - workflow.info().start_time).total_seconds() * 1000)
        steps = self._steps_done
        if (
            status == GoalStatus.COMPLETED
            and FaultyMode.WRONG_RESULT in self._rt.faulty
            and (self._goal.mode == CAPABILITY_PROBE or selected(self._goal.goal_run_id))
        ):
            steps += 1
        payload: dict[str, Any] = {"stepsCompleted": steps, "totalDurationMs": elapsed_ms}
        if details is not None:
            payload["errorDetails"] = details.model_dump(by_alias=True)
        try:  # swallowed, as ByteBot does: the run returns its result even without the event
            await self._emit_goal(event, payload)
        except ActivityError as e:
            workflow.logger.warning("terminal event %s not emitted: %s", event, e.cause)
        return GoalRunResult(
            goal_run_id=self._goal.goal_run_id,
            status=status,
            completed_at=workflow.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            summary=f"{status.value.lower()} after {steps} step(s)",
            steps_completed=steps,
            total_duration_ms=elapsed_ms,
            final_outcome="all steps done" if status == GoalStatus.COMPLETED else None,
            error_details=details,
        )

    # --- helpers ------------------------------------------------------------------------

    def _set_phase(self, phase: Phase) -> None:
        self._phase = phase
        workflow.upsert_search_attributes([PHASE.value_set(phase.value)])
        workflow.set_current_details(f"{phase.value}")

    async def _emit_goal(self, event_type: GoalEventType, payload: dict[str, Any]) -> None:
        await self._calls.emit_goal(event_type, payload)

    async def _emit_step(self, n: int, event_type: StepEventType, payload: dict[str, Any]) -> None:
        await self._calls.emit_step(n, event_type, payload)


def _details_of(error: Exception) -> ErrorDetails:
    """ErrorDetails for an unexpected failure (an emit or planning out of retries, a bug)."""
    cause = error.cause if isinstance(error, ActivityError) and error.cause else error
    kind = (
        cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
    )
    if isinstance(error, ActivityError):
        kind = f"{error.activity_type}:{kind}"
    return ErrorDetails(error_type=kind, error_message=str(cause), recoverable=True)
