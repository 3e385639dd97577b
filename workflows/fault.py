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
    from models.kafka import KafkaCheckInput, LagSample
    from models.ledger import FaultRecord, FaultRequest, FaultStatus, Injection, Recovery
    from models.observations import (
        Baseline,
        BaselineMarks,
        GoalRunsInput,
        HoldProbe,
        HoldProbeInput,
        RecoveryCheck,
        RecoveryInput,
    )
    from models.peers import peers_selected_by
    from models.report import FaultObservations, FaultReport, Verdict
    from models.run import FaultProgress, FaultRunInput
    from models.scenario import MAX_HOLD_PROBES
    from models.timeline import MAX_HOLD_POINTS, thin
    from workflows import fault_calls as calls
    from workflows import names, policies, visibility
    from workflows.failures import failure_text, root_cause

LEDGER_SIGNAL = names.LEDGER_SIGNAL
T = TypeVar("T")
#: Verification runs Temporal's check, then Kafka's, then reconciles the two (was: side by side).
RECONCILE_PATCH = "verify-then-reconcile"
#: At least one hold probe per fault, even when confirming it took the whole hold.
PROBE_ONCE_PATCH = "probe-at-least-once"
#: Hold probes are spread so a fault gets at most `MAX_HOLD_PROBES` (a bounded history), and
#: inject/recover heartbeat (a lost worker is noticed in seconds, not at the 2-minute timeout).
BOUNDED_HOLD_PATCH = "bounded-hold"
#: Time the backend grants beyond the hold for our own recovery before it ends the fault.
EXPIRY_SLACK = timedelta(seconds=15)


@workflow.defn(name=names.FAULT_WORKFLOW, failure_exception_types=[ValidationError])
class FaultWorkflow:
    """Injects one fault, holds it, always recovers it, and judges the system under test."""

    def __init__(self) -> None:
        self._phase = "starting"
        self._record: FaultRecord | None = None
        self._abort_reason: str | None = None
        self._probes: list[HoldProbe] = []
        self._cancelled = False
        self._lag_samples: list[LagSample] = []
        self._hold_until: datetime | None = None
        #: What the inject-and-hold task is doing, so a failure names its phase.
        self._doing = "injection"
        self._confirmed = False

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
        baseline = await calls.probe(names.CHECK_STEADY_STATE, ctx, Baseline, ctx.verification)
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
        kafka_start = await calls.kafka_positions(ctx)
        # The expiry counts from now, not from when the run was planned: the backend ends the
        # fault by itself then, even if this workflow is gone.
        request = request.model_copy(
            update={"expires_at": workflow.now() + fault.duration + EXPIRY_SLACK}
        )
        run = run.model_copy(update={"request": request})
        # One expiry per fault: the ledger row says what the backend was told.
        self._record = self._row().model_copy(update={"expires_at": request.expires_at})

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
            obs["error"] = f"{self._doing} failed: {root_cause(failure)}"
            # A probe failing during the hold does not undo a confirmed fault.
            obs["in_effect"] = self._doing == "a hold probe" and self._confirmed
        else:
            obs["in_effect"] = body.result()

        record = self._row()
        injected_at = record.injected_at or workflow.now()
        await self._set_phase("confirm-recovery")
        recovery = await calls.probe(
            names.AWAIT_RECOVERY,
            RecoveryInput(
                context=ctx,
                baseline=BaselineMarks.of(baseline, goal_runs=False),
                recovered_at=recovered_at,
                injected_at=injected_at,
                targets=[t.name for t in record.targets],
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
            baseline=BaselineMarks.of(baseline, goal_runs=True),
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
                lag_samples=thin(self._lag_samples, MAX_HOLD_POINTS),
            )
        goal_runs, kafka, reconcile = await calls.verify(
            ctx, goal_runs_input, kafka_input, reconcile_first=workflow.patched(RECONCILE_PATCH)
        )
        await self._set_phase("done")
        return calls.with_timeline(
            FaultObservations(
                record=self._row(),
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

    async def _inject_and_hold(self, run: FaultRunInput, baseline: Baseline) -> bool:
        """Inject, confirm, hold until the duration ends; True when the fault took effect."""
        request, fault = run.request, run.request.fault
        await self._set_phase("inject")
        self._doing = "injection"
        injection = await workflow.execute_activity(
            names.INJECT_FAULT,
            request,
            result_type=Injection,
            start_to_close_timeout=policies.INJECT_TIMEOUT,
            heartbeat_timeout=self._backend_heartbeat(),
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
        self._doing = "confirming the fault"
        in_effect = self._confirmed = await self._confirm(request, fault, hold_until)
        if self._stopping():
            return in_effect

        await self._set_phase("hold")
        self._doing = "a hold probe"
        no_pollers_since: datetime | None = None
        interval = run.context.verification.probe_interval
        if workflow.patched(BOUNDED_HOLD_PATCH):
            # A long fault's probes are spread out: its history stays bounded.
            interval = max(interval, fault.duration / MAX_HOLD_PROBES)
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
            probe = await calls.probe(
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
                positions = await calls.kafka_positions(run.context)
            except ActivityError:
                if not workflow.patched(names.LAG_SAMPLE_MAY_FAIL_PATCH):
                    raise
                positions = None  # Kafka itself is down (a fault on the broker): no sample
            if positions is not None:
                # The lag's course during the fault: the check reads only the total.
                self._lag_samples.append(LagSample(at=positions.at, total_lag=positions.total_lag))
            no_pollers_since = probe.no_pollers_since
            if probe.breach:
                self._abort_reason = probe.breach
        return in_effect

    async def _confirm(self, request: FaultRequest, fault: FaultSpec, until: datetime) -> bool:
        """Poll the backend until the fault is seen in effect, at most until the hold ends."""
        await self._set_phase("confirm")
        # One heartbeat timeout beyond the hold: a worker that dies mid-confirm is noticed that
        # late, and its death must not turn a fault in effect into one never confirmed.
        window = max(until - workflow.now(), timedelta(seconds=5)) + policies.BACKEND_HEARTBEAT
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
                heartbeat_timeout=policies.BACKEND_HEARTBEAT,
                schedule_to_close_timeout=window,
                retry_policy=policies.CONFIRM_RETRY,
                summary=f"confirm {fault.action} took effect",
            )
        except ActivityError as err:
            await self._update_record(
                evidence=[f"never confirmed: {failure_text(err)}"], tell_parent=True
            )
            return False
        record = self._row()
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
                heartbeat_timeout=self._backend_heartbeat(),
                retry_policy=policies.RECOVER_RETRY,
                summary=f"recover {request.fault.action}",
            )
        except ActivityError as err:
            await self._update_record(status=FaultStatus.RECOVERY_FAILED, tell_parent=True)
            raise ApplicationError(
                f"recovery of {request.fault_id} failed: {failure_text(err)}",
                type="RecoveryFailed",
                non_retryable=True,
            ) from err
        record = self._row()
        status = FaultStatus.RECOVERED if record.injected_at else FaultStatus.NOT_INJECTED
        now = workflow.now()
        await self._update_record(
            status=status, recovered_at=now, evidence=record.evidence + recovery.evidence
        )
        return now

    def _row(self) -> FaultRecord:
        """This fault's ledger row (set first thing in `run`, so always there by now)."""
        if self._record is None:  # not an assert: a failing workflow task retries for ever
            raise ApplicationError(
                "the fault's ledger row is missing", type="InternalError", non_retryable=True
            )
        return self._record

    def _backend_heartbeat(self) -> timedelta | None:
        """Inject/recover heartbeat timeout; none for runs begun before it was set."""
        return policies.BACKEND_HEARTBEAT if workflow.patched(BOUNDED_HOLD_PATCH) else None

    async def _set_phase(self, phase: str) -> None:
        self._phase = phase
        workflow.upsert_search_attributes([visibility.PHASE.value_set(phase)])

    async def _update_record(self, *, tell_parent: bool = False, **changes: object) -> None:
        """Change this fault's ledger row; tell the parent run only when `tell_parent`.

        A signal per change flooded the parent's history (four events each); the parent now
        hears once, when the hold begins (for its `status` query), or when recovery failed
        (this run then has no result). The final row comes with the result, and the
        `record`/`progress` queries answer in between.
        """
        self._record = self._row().model_copy(update=changes)
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
