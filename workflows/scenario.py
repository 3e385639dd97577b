"""ChaosScenarioWorkflow: a chaos scenario, step by step, each fault a child workflow.

Reads like the scenario it runs: resolve the scenario -> (dry run: preview targets) ->
for each step: wait while paused, run its faults in parallel as `ChaosFaultWorkflow`s,
stop on a failed step unless told to continue -> judge the run. The parent keeps the fault
ledger (a child signals once when its hold begins; its final row comes with its result) and
answers the `status` query.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from models.durations import format_duration
    from models.faults import FaultSpec
    from models.judge import judge_run
    from models.ledger import FaultRecord, FaultRequest, Injection, TargetPreview
    from models.observations import ProbeContext
    from models.peers import watched_workers
    from models.report import FaultReport, ScenarioReport, StepReport, Verdict, worst
    from models.run import FaultRunInput, ResolvedScenario, RunStatus
    from models.scenario import Scenario, ScenarioInput, Step
    from models.summary import progress_summary, run_summary
    from workflows import names, policies, visibility
    from workflows.failures import root_cause
    from workflows.fault import LEDGER_SIGNAL, FaultWorkflow


#: Findings the `status` query shows (the latest; the report keeps every fault's own).
MAX_STATUS_FINDINGS = 50


def fault_id_for(execution_run_id: str, step: int, fault: FaultSpec) -> str:
    """Stable id of a fault in a run (`chaos-<run>-<step>-<name>`), a valid Kubernetes name."""
    run = hashlib.sha256(execution_run_id.encode()).hexdigest()[:8]
    return f"chaos-{run}-{step:02d}-{fault.label}"[:63].rstrip("-")


@workflow.defn(name=names.SCENARIO_WORKFLOW, failure_exception_types=[ValidationError])
class ChaosScenarioWorkflow:
    """Runs a chaos scenario against the system under test and returns its verdict."""

    def __init__(self) -> None:
        self._scenario_name = "?"
        self._phase = "starting"
        self._step: int | None = None
        self._step_label: str | None = None
        self._paused = False
        self._abort_reason: str | None = None
        self._ledger: dict[str, FaultRecord] = {}
        self._running: dict[str, ChildWorkflowHandle[FaultWorkflow, FaultReport]] = {}
        self._requests: dict[str, FaultRequest] = {}
        self._findings: list[str] = []

    # -- signals and queries ------------------------------------------------------------

    @workflow.signal(name=names.ABORT_SIGNAL)
    async def abort(self, reason: str) -> None:
        """Recover every fault now and end the run with verdict `aborted`."""
        if self._abort_reason is None:
            self._abort_reason = reason or "aborted by an operator"
            await self._abort_children()

    @workflow.signal(name=names.PAUSE_SIGNAL)
    async def pause(self) -> None:
        """Hold before the next step, and pause the running faults (their hold goes on)."""
        self._paused = True
        await self._pause_running(names.PAUSE_FAULT)

    @workflow.signal(name=names.RESUME_SIGNAL)
    async def resume(self) -> None:
        """Resume the paused faults and go on with the next step."""
        self._paused = False
        await self._pause_running(names.RESUME_FAULT)

    @workflow.signal(name=LEDGER_SIGNAL)
    def fault_recorded(self, record: FaultRecord) -> None:
        """A child's ledger row changed (its hold began, or its recovery failed)."""
        self._ledger[record.fault_id] = record
        request = self._requests.get(record.fault_id)
        if request is not None and record.expires_at is not None:
            # The child stamps the expiry at injection; pause/resume tell the backend the same.
            self._requests[record.fault_id] = request.model_copy(
                update={"expires_at": record.expires_at}
            )
        self._show_progress()

    @workflow.query(name=names.STATUS_QUERY)
    def status(self) -> RunStatus:
        """Phase, current step and faults, time left, the ledger and findings so far."""
        now = workflow.now()
        running = [self._ledger[f] for f in self._running if f in self._ledger]
        left = [(r.expires_at - now).total_seconds() for r in running if r.expires_at]
        return RunStatus(
            scenario=self._scenario_name,
            phase=self._phase,
            step=self._step,
            step_label=self._step_label,
            running_faults=list(self._running),
            time_left_s=max([0.0, *left]) if left else None,
            paused=self._paused,
            abort_reason=self._abort_reason,
            ledger=list(self._ledger.values()),
            # The latest only: a query's answer is a payload too (2 MB at most).
            findings=self._findings[-MAX_STATUS_FINDINGS:],
            findings_total=len(self._findings),
        )

    # -- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, run_input: ScenarioInput) -> ScenarioReport:
        started_at = workflow.now()
        resolved = await self._resolve(run_input)
        scenario = resolved.scenario
        self._scenario_name = scenario.name
        workflow.upsert_search_attributes(
            [
                visibility.SCENARIO.value_set(scenario.name),
                visibility.VERDICT.value_set("running"),
            ]
        )

        if run_input.dry_run:
            steps = await self._preview(scenario, resolved)
        else:
            steps = await self._run_steps(scenario, resolved)

        verdict, criteria, score = judge_run(steps)
        if run_input.dry_run:
            verdict = Verdict.DRY_RUN
        if self._abort_reason:
            verdict = Verdict.ABORTED
        report = ScenarioReport(
            scenario=scenario.name,
            workflow_id=workflow.info().workflow_id,
            backend=resolved.backend,
            dry_run=run_input.dry_run,
            started_at=started_at,
            ended_at=workflow.now(),
            verdict=verdict,
            reason=self._reason(verdict, steps),
            criteria=criteria,
            steps=steps,
            ledger=list(self._ledger.values()),
            score_pct=score,
        )
        await self._set_phase("done")
        workflow.upsert_search_attributes([visibility.VERDICT.value_set(verdict.value)])
        workflow.set_current_details(run_summary(report))
        return report

    async def _resolve(self, run_input: ScenarioInput) -> ResolvedScenario:
        """Look up a built-in scenario and check it; a bad input fails the run at once."""
        await self._set_phase("resolve")
        try:
            return await workflow.execute_activity(
                names.RESOLVE_SCENARIO,
                run_input,
                result_type=ResolvedScenario,
                start_to_close_timeout=policies.QUICK,
                retry_policy=policies.QUICK_RETRY,
                summary="resolve and validate the scenario",
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise ApplicationError(
                    f"invalid scenario: {cause.message}",
                    type="InvalidScenario",
                    non_retryable=True,
                ) from err
            raise

    async def _preview(self, scenario: Scenario, resolved: ResolvedScenario) -> list[StepReport]:
        """The dry run: every fault's targets and the backend's validation; nothing injected."""
        await self._set_phase("dry-run")
        steps = []
        for index, step in enumerate(scenario.steps):
            reports = []
            for fault in step.faults:
                request = self._request(index, fault, resolved)
                preview = await workflow.execute_activity(
                    names.PREVIEW_FAULT,
                    request,
                    result_type=TargetPreview,
                    start_to_close_timeout=policies.QUICK,
                    retry_policy=policies.QUICK_RETRY,
                    summary=f"preview {fault.label}",
                )
                verdict = Verdict.DRY_RUN if preview.accepted else Verdict.FAIL
                reports.append(
                    FaultReport(
                        fault_id=request.fault_id,
                        label=fault.label,
                        action=fault.action,
                        expected=fault.expected.summary,
                        verdict=verdict,
                        reason="; ".join(preview.problems),
                        preview=preview,
                    )
                )
            verdict = worst([r.verdict for r in reports]) if reports else Verdict.DRY_RUN
            steps.append(StepReport(index=index, label=step.label, verdict=verdict, faults=reports))
        return steps

    async def _run_steps(self, scenario: Scenario, resolved: ResolvedScenario) -> list[StepReport]:
        steps: list[StepReport] = []
        stopped: str | None = None
        for index, step in enumerate(scenario.steps):
            if not stopped and self._paused:
                await self._set_phase("paused")
                await workflow.wait_condition(lambda: not self._paused or bool(self._abort_reason))
            stopped = stopped or self._abort_reason
            if stopped:
                steps.append(StepReport(index=index, label=step.label, verdict=Verdict.NOT_RUN))
                continue
            self._step, self._step_label = index, step.label
            report = await self._run_step(index, step, scenario, resolved)
            steps.append(report)
            self._findings += [
                f"{f.label}: {finding}"
                for f in report.faults
                for c in f.criteria
                for finding in c.findings
            ]
            if report.verdict is Verdict.ABORTED and not self._abort_reason:
                self._abort_reason = next(
                    (f.reason for f in report.faults if f.verdict is Verdict.ABORTED), "aborted"
                )
            if report.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE) and (
                not scenario.continue_on_failure
            ):
                stopped = f"step {index} ({step.label}) ended {report.verdict.value}"
        self._step = self._step_label = None
        return steps

    async def _run_step(
        self, index: int, step: Step, scenario: Scenario, resolved: ResolvedScenario
    ) -> StepReport:
        if step.pause is not None:
            await self._set_phase(f"step {index}: pause")
            # A pause ends early on abort; its normal end is the timeout.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: bool(self._abort_reason), timeout=step.pause)
            return StepReport(index=index, label=step.label, verdict=Verdict.PASS)
        await self._set_phase(f"step {index}: {step.label}")
        requests = [self._request(index, fault, resolved) for fault in step.faults]
        for request in requests:
            self._ledger[request.fault_id] = FaultRecord(
                fault_id=request.fault_id,
                step=index,
                label=request.fault.label,
                action=request.fault.action,
                target=request.fault.target.describe(),
                # None until the child injects: it stamps the one expiry the backend is told.
            )
            self._requests[request.fault_id] = request
            watched = request.fault.target
            if watched_workers(watched) != watched and workflow.patched(names.WATCH_WORKERS_PATCH):
                watched = watched_workers(watched)
            self._running[request.fault_id] = await workflow.start_child_workflow(
                FaultWorkflow.run,
                FaultRunInput(
                    request=request,
                    alongside=frozenset().union(
                        *(r.fault.expected.tolerated for r in requests if r is not request)
                    ),
                    context=ProbeContext(
                        scenario_id=request.scenario_id,
                        fault_id=request.fault_id,
                        verification=scenario.verification,
                        target=watched,
                        abort=scenario.abort_conditions,
                    ),
                ),
                id=f"{workflow.info().workflow_id}.{request.fault_id}",
                # If this run is terminated, each child still gets to recover its fault.
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{request.fault.action} on {request.fault.target.describe()} "
                f"for {format_duration(request.fault.duration)}",
            )
        results = await asyncio.gather(
            *(self._child_report(r) for r in requests), return_exceptions=False
        )
        return StepReport(
            index=index,
            label=step.label,
            verdict=worst([r.verdict for r in results]),
            faults=list(results),
        )

    async def _child_report(self, request: FaultRequest) -> FaultReport:
        """Await one fault's child; a child that failed still yields a report (a failure)."""
        handle = self._running[request.fault_id]
        try:
            report = await handle
        except ChildWorkflowError as err:
            # The root cause, not the wrapper's "Child Workflow execution failed".
            cause = f"the fault's run failed: {root_cause(err)}"
            record = self._ledger.get(request.fault_id)
            report = FaultReport(
                fault_id=request.fault_id,
                label=request.fault.label,
                action=request.fault.action,
                expected=request.fault.expected.summary,
                verdict=Verdict.ABORTED if self._abort_reason else Verdict.FAIL,
                reason=cause,
                record=record,
            )
        finally:
            self._running.pop(request.fault_id, None)
        self._record_result(report)
        if report.verdict is Verdict.ABORTED:
            # One fault breached an abort condition: recover every other fault now too.
            self._abort_reason = self._abort_reason or report.reason
            await self._abort_children()
        return report

    def _request(self, index: int, fault: FaultSpec, resolved: ResolvedScenario) -> FaultRequest:
        wf = workflow.info()
        return FaultRequest(
            fault_id=fault_id_for(wf.run_id, index, fault),
            scenario_id=wf.workflow_id,
            step=index,
            fault=fault,
            expires_at=workflow.now() + fault.duration + timedelta(seconds=30),
            allowed_namespaces=resolved.allowed_namespaces,
        )

    async def _pause_running(self, activity: str) -> None:
        """Pause or resume every running fault in its backend; the outcome is a finding."""
        for fault_id in list(self._running):
            request = self._requests.get(fault_id)
            if request is None:
                continue
            try:
                result = await workflow.execute_activity(
                    activity,
                    request,
                    result_type=Injection,
                    start_to_close_timeout=policies.QUICK,
                    retry_policy=policies.QUICK_RETRY,
                    summary=f"{activity.split('_')[0]} {request.fault.label}",
                )
                self._findings += result.evidence
            except ActivityError as err:
                self._findings.append(f"{activity} {fault_id} failed: {err.cause or err}")

    async def _abort_children(self) -> None:
        for handle in list(self._running.values()):
            try:
                await workflow.get_external_workflow_handle(handle.id).signal(
                    names.ABORT_SIGNAL, self._abort_reason
                )
            except ApplicationError:
                workflow.logger.warning("child %s already closed", handle.id)

    async def _set_phase(self, phase: str) -> None:
        self._phase = phase
        workflow.upsert_search_attributes([visibility.PHASE.value_set(phase[:100])])
        self._show_progress()

    def _show_progress(self) -> None:
        # What the Web UI shows as the run's current details while it runs.
        workflow.set_current_details(
            progress_summary(
                self._scenario_name,
                self._phase,
                list(self._ledger.values()),
                now=workflow.now(),
                findings=self._findings,
            )
        )

    def _record_result(self, report: FaultReport) -> None:
        """A child's final ledger row comes with its result (no signal per change)."""
        if report.record is not None:
            self._ledger[report.fault_id] = report.record

    def _reason(self, verdict: Verdict, steps: list[StepReport]) -> str:
        if self._abort_reason:
            return self._abort_reason
        reasons = [
            f"{f.label}: {f.reason}"
            for s in steps
            for f in s.faults
            if f.verdict is verdict and f.reason
        ]
        return "; ".join(reasons[:10])
