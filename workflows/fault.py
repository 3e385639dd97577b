"""ChaosFaultWorkflow: one fault, from steady state through injection and hold to its verdict.

Phases: steady-state check -> inject -> confirm in effect -> hold (periodic probes) ->
recover (always, in `finally`) -> confirm recovery -> verify -> judge. Deterministic: every
side effect is an activity; time comes from `workflow.now()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from models.faults import FaultSpec
    from models.judge import judge_fault
    from models.kafka import KafkaCheckInput, KafkaOrderReport, KafkaPositions
    from models.ledger import FaultRecord, FaultRequest, FaultStatus, Injection, Recovery
    from models.observations import (
        Baseline,
        GoalRunsCheck,
        GoalRunsInput,
        HoldProbe,
        HoldProbeInput,
        ProbeContext,
        ReconcileCheck,
        ReconcileInput,
        RecoveryCheck,
        RecoveryInput,
    )
    from models.peers import peers_selected_by
    from models.report import FaultObservations, FaultReport, Verdict
    from models.run import FaultProgress, FaultRunInput
    from models.scenario import Verification
    from models.timeline import fault_timeline
    from workflows import names, policies, visibility

LEDGER_SIGNAL = names.LEDGER_SIGNAL
T = TypeVar("T")
#: Verification runs Temporal's check, then Kafka's, then reconciles the two (was: side by side).
RECONCILE_PATCH = "verify-then-reconcile"
#: At least one hold probe per fault, even when confirming it took the whole hold.
PROBE_ONCE_PATCH = "probe-at-least-once"
#: Time the backend grants beyond the hold for our own recovery before it ends the fault.
EXPIRY_SLACK = timedelta(seconds=15)


async def _none() -> None:
    return None


def _failure_text(error: BaseException) -> str:
    """The innermost message of an activity or application failure."""
    cause: BaseException | None = error
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    return str(cause)


@workflow.defn(name=names.FAULT_WORKFLOW, failure_exception_types=[ValidationError])
class FaultWorkflow:
    """Injects one fault, holds it, always recovers it, and judges the system under test."""

    def __init__(self) -> None:
        self._phase = "starting"
        self._record: FaultRecord | None = None
        self._abort_reason: str | None = None
        self._probes: list[HoldProbe] = []
        self._cancelled = False
        self._lag_samples: list[KafkaPositions] = []
        self._hold_until: datetime | None = None

    def _stopping(self) -> bool:
        """True once the hold must end early: an abort, or this run being cancelled."""
        return self._cancelled or self._abort_reason is not None

    @workflow.signal(name=names.ABORT_SIGNAL)
    def abort(self, reason: str) -> None:
        """End the hold now and recover (sent by the parent when the run aborts)."""
        self._abort_reason = self._abort_reason or reason

    @workflow.query(name=names.RECORD_QUERY)
    def record(self) -> FaultRecord | None:
        """This fault's ledger row."""
        return self._record

    @workflow.query(name=names.PHASE_QUERY)
    def phase(self) -> str:
        """The current phase."""
        return self._phase

    @workflow.query(name=names.PROGRESS_QUERY)
    def progress(self) -> FaultProgress:
        """Phase, ledger row, end of the hold and probes so far (what the CLI shows live)."""
        return FaultProgress(
            phase=self._phase,
            record=self._record,
            hold_until=self._hold_until,
            probes=len(self._probes),
            last_probe=self._probes[-1] if self._probes else None,
        )

    @workflow.run
    async def run(self, run: FaultRunInput) -> FaultReport:
        request, fault = run.request, run.request.fault
        self._record = FaultRecord(
            fault_id=request.fault_id,
            step=request.step,
            label=fault.label,
            action=fault.action,
            target=fault.target.describe(),
            expires_at=request.expires_at,
        )
        workflow.upsert_search_attributes([visibility.FAULT.value_set(fault.label)])
        ctx = run.context
        obs: dict[str, object] = {"kafka_expected": ctx.verification.kafka is not None}

        await self._set_phase("steady-state")
        baseline = await self._probe(names.CHECK_STEADY_STATE, ctx, Baseline, ctx.verification)
        if not baseline.steady:
            await self._set_phase("done")
            return FaultReport(
                fault_id=request.fault_id,
                label=fault.label,
                action=fault.action,
                expected=fault.expected.summary,
                verdict=Verdict.INCONCLUSIVE,
                reason="the system was not steady before the fault: "
                + "; ".join(baseline.problems),
                record=self._record,
            )
        kafka_start = await self._kafka_positions(ctx)
        # The expiry counts from now, not from when the run was planned: the backend ends the
        # fault by itself then, even if this workflow is gone.
        request = request.model_copy(
            update={"expires_at": workflow.now() + fault.duration + EXPIRY_SLACK}
        )
        run = run.model_copy(update={"request": request})

        body = asyncio.create_task(self._inject_and_hold(run, baseline))
        try:
            await workflow.wait_condition(lambda: body.done() or self._abort_reason is not None)
        finally:
            if not body.done():
                # Waits for the injection's own cancellation, so recovery never overtakes it.
                # The flag covers a cancel that lands on an await which cannot be cancelled.
                self._cancelled = True
                body.cancel()
                await asyncio.wait([body])
            recovered_at = await self._recover(request)
        if body.cancelled():
            obs["in_effect"] = False  # stopped before the fault could be confirmed
        elif (failure := body.exception()) is not None:
            obs["error"] = f"injection failed: {_failure_text(failure)}"
            obs["in_effect"] = False
        else:
            obs["in_effect"] = body.result()

        injected_at = self._record.injected_at or workflow.now()
        await self._set_phase("confirm-recovery")
        recovery = await self._probe(
            names.AWAIT_RECOVERY,
            RecoveryInput(
                context=ctx,
                baseline=baseline,
                recovered_at=recovered_at,
                injected_at=injected_at,
                targets=[t.name for t in self._record.targets],
            ),
            RecoveryCheck,
            ctx.verification,
        )
        if recovery.breach:
            self._abort_reason = self._abort_reason or recovery.breach

        await self._set_phase("verify")
        deadline = workflow.now() + ctx.verification.settle
        canaries = [cid for p in self._probes for cid in p.canary_ids] + baseline.canary_ids
        goal_runs_input = GoalRunsInput(
            context=ctx,
            baseline=baseline,
            canary_ids=canaries,
            injected_at=injected_at,
            deadline=deadline,
            recovered_at=recovered_at,
        )
        kafka_input = None
        if ctx.verification.kafka is not None and kafka_start is not None:
            kafka_input = KafkaCheckInput(
                kafka=ctx.verification.kafka,
                start=kafka_start,
                deadline=deadline,
                recovered_at=recovered_at,
                lag_samples=self._lag_samples,
            )
        reconcile = None
        if workflow.patched(RECONCILE_PATCH):
            # Temporal first: once its runs have ended or gone idle, their events are written,
            # so Kafka's window is read to its end at once and what is missing is reconciled.
            goal_runs = await self._probe(
                names.CHECK_GOAL_RUNS, goal_runs_input, GoalRunsCheck, ctx.verification
            )
            kafka = None
            if kafka_input is not None:
                kafka = await self._probe(
                    names.CHECK_KAFKA_EVENTS, kafka_input, KafkaOrderReport, ctx.verification
                )
                reconcile = await self._reconcile(ctx, kafka, kafka_input.start)
        else:
            goal_runs_check = self._probe(
                names.CHECK_GOAL_RUNS, goal_runs_input, GoalRunsCheck, ctx.verification
            )
            kafka_check = None
            if kafka_input is not None:
                kafka_check = self._probe(
                    names.CHECK_KAFKA_EVENTS, kafka_input, KafkaOrderReport, ctx.verification
                )
            goal_runs, kafka = await asyncio.gather(goal_runs_check, kafka_check or _none())
        await self._set_phase("done")
        return self._with_timeline(
            FaultObservations(
                record=self._record,
                expected=fault.expected.model_copy(
                    update={"tolerated": fault.expected.tolerated | run.alongside}
                ),
                baseline=baseline,
                probes=self._probes,
                recovery=recovery,
                goal_runs=goal_runs,
                kafka=kafka,
                reconcile=reconcile,
                exactly_once=bool(ctx.verification.kafka and ctx.verification.kafka.exactly_once),
                limits=ctx.verification.degradation,
                aborted=self._abort_reason,
                **obs,
            )
        )

    async def _reconcile(
        self, ctx: ProbeContext, kafka: KafkaOrderReport, start: KafkaPositions
    ) -> ReconcileCheck | None:
        """Look up in Temporal the goal runs whose events Kafka lacks; None if none lack any."""
        if not kafka.no_terminal and not kafka.no_start:
            return None
        return await self._probe(
            names.RECONCILE_EVENTS,
            ReconcileInput(
                context=ctx,
                no_terminal=kafka.no_terminal,
                no_start=kafka.no_start,
                window_start=start.at,
                window_end_at=kafka.window_end_at,
            ),
            ReconcileCheck,
            ctx.verification,
        )

    async def _inject_and_hold(self, run: FaultRunInput, baseline: Baseline) -> bool:
        """Inject, confirm, hold until the duration ends; True when the fault took effect."""
        request, fault = run.request, run.request.fault
        await self._set_phase("inject")
        injection = await workflow.execute_activity(
            names.INJECT_FAULT,
            request,
            result_type=Injection,
            start_to_close_timeout=policies.INJECT_TIMEOUT,
            retry_policy=policies.INJECT_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"inject {fault.action} into {fault.target.describe()}",
        )
        injected_at = workflow.now()
        await self._update_record(
            status=FaultStatus.INJECTED,
            injected_at=injected_at,
            targets=injection.targets,
            evidence=injection.evidence,
        )
        hold_until = self._hold_until = injected_at + fault.duration
        in_effect = await self._confirm(request, fault, hold_until)
        if self._stopping():
            return in_effect

        await self._set_phase("hold")
        no_pollers_since: datetime | None = None
        interval = run.context.verification.probe_interval
        # A short fault whose confirmation took its whole hold still gets one probe while it
        # holds (before recovery): a fault nobody looked at during it tested nothing.
        once = workflow.patched(PROBE_ONCE_PATCH)
        while not self._stopping():
            left = hold_until - workflow.now()
            if left <= timedelta(0) and (self._probes or not once):
                break
            if left > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        # The first probe comes halfway at the latest, so every fault gets one.
                        self._stopping,
                        timeout=min(left if self._probes else left / 2, interval),
                        timeout_summary="hold the fault",
                    )
            if self._stopping() or (self._probes and workflow.now() >= hold_until):
                break
            probe = await self._probe(
                names.PROBE_HOLD,
                HoldProbeInput(
                    context=run.context,
                    injected_at=injected_at,
                    no_pollers_since=no_pollers_since,
                ),
                HoldProbe,
                run.context.verification,
            )
            self._probes.append(probe)
            try:
                positions = await self._kafka_positions(run.context)
            except ActivityError:
                if not workflow.patched(names.LAG_SAMPLE_MAY_FAIL_PATCH):
                    raise
                positions = None  # Kafka itself is down (a fault on the broker): no sample
            if positions is not None:
                self._lag_samples.append(positions)  # the lag's course during the fault
            no_pollers_since = probe.no_pollers_since
            if probe.breach:
                self._abort_reason = probe.breach
        return in_effect

    async def _confirm(self, request: FaultRequest, fault: FaultSpec, until: datetime) -> bool:
        """Poll the backend until the fault is seen in effect, at most until the hold ends."""
        await self._set_phase("confirm")
        window = max(until - workflow.now(), timedelta(seconds=5))
        if "temporal" in peers_selected_by(fault.target) and workflow.patched(
            names.CONFIRM_AFTER_OUTAGE_PATCH
        ):  # a fault on Temporal itself holds up this very activity: it may answer after it
            window += policies.FRONTEND_OUTAGE_GRACE
        try:
            effect = await workflow.execute_activity(
                names.CONFIRM_FAULT,
                request,
                result_type=Injection,
                start_to_close_timeout=policies.CONFIRM_TIMEOUT,
                schedule_to_close_timeout=window,
                retry_policy=policies.CONFIRM_RETRY,
                summary=f"confirm {fault.action} took effect",
            )
        except ActivityError as err:
            await self._update_record(
                evidence=[f"never confirmed: {_failure_text(err)}"], tell_parent=True
            )
            return False
        record = self._record
        assert record is not None
        await self._update_record(
            evidence=record.evidence + effect.evidence,
            targets=effect.targets or record.targets,
            tell_parent=True,
        )
        return effect.in_effect

    async def _recover(self, request: FaultRequest) -> datetime:
        """Recover the fault whatever happened before; idempotent in the backend."""
        await self._set_phase("recover")
        try:
            recovery = await workflow.execute_activity(
                names.RECOVER_FAULT,
                request,
                result_type=Recovery,
                start_to_close_timeout=policies.RECOVER_TIMEOUT,
                retry_policy=policies.RECOVER_RETRY,
                summary=f"recover {request.fault.action}",
            )
        except ActivityError as err:
            await self._update_record(status=FaultStatus.RECOVERY_FAILED, tell_parent=True)
            raise ApplicationError(
                f"recovery of {request.fault_id} failed: {_failure_text(err)}",
                type="RecoveryFailed",
                non_retryable=True,
            ) from err
        record = self._record
        assert record is not None
        status = FaultStatus.RECOVERED if record.injected_at else FaultStatus.NOT_INJECTED
        now = workflow.now()
        await self._update_record(
            status=status, recovered_at=now, evidence=record.evidence + recovery.evidence
        )
        return now

    async def _kafka_positions(self, ctx: ProbeContext) -> KafkaPositions | None:
        if ctx.verification.kafka is None:
            return None
        return await workflow.execute_activity(
            names.READ_KAFKA_POSITIONS,
            ctx.verification.kafka,
            result_type=KafkaPositions,
            start_to_close_timeout=policies.QUICK,
            retry_policy=policies.PROBE_RETRY,
            summary="read Kafka offsets and lag",
        )

    async def _probe(
        self, name: str, arg: object, result_type: type[T], verification: Verification
    ) -> T:
        """Run a verification activity: heartbeating, bounded by the settle window."""
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=verification.settle + timedelta(minutes=1),
            heartbeat_timeout=policies.PROBE_HEARTBEAT,
            retry_policy=policies.PROBE_RETRY,
            summary=name.replace("_", " "),
        )

    async def _set_phase(self, phase: str) -> None:
        self._phase = phase
        workflow.upsert_search_attributes([visibility.PHASE.value_set(phase)])

    def _with_timeline(self, observations: FaultObservations) -> FaultReport:
        """The verdict, with the fault's course over time for the report's plots."""
        report = judge_fault(observations)
        timeline = fault_timeline(
            observations.record,
            observations.baseline,
            observations.probes,
            observations.recovery,
            observations.goal_runs,
            observations.kafka,
        )
        return report.model_copy(update={"timeline": timeline})

    async def _update_record(self, *, tell_parent: bool = False, **changes: object) -> None:
        """Change this fault's ledger row; tell the parent run only when `tell_parent`.

        A signal per change flooded the parent's history (four events each); the parent now
        hears once, when the hold begins (for its `status` query), or when recovery failed
        (this run then has no result). The final row comes with the result, and the
        `record`/`progress` queries answer in between.
        """
        assert self._record is not None
        self._record = self._record.model_copy(update=changes)
        parent = workflow.info().parent
        if parent is None:
            return
        if not tell_parent and workflow.patched(names.LEDGER_BY_RESULT_PATCH):
            return
        signal = workflow.get_external_workflow_handle(parent.workflow_id).signal(
            LEDGER_SIGNAL, self._record
        )
        try:
            # Shielded: cancelling an in-flight external signal (when this run is cancelled
            # while telling a terminated parent) breaks the SDK's state machine, and then the
            # recovery in `finally` could never run.
            await asyncio.shield(signal)
        except FailureError:
            workflow.logger.warning("parent gone; ledger row kept in this run only")
