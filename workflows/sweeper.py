"""ChaosOrphanSweeperWorkflow: delete chaos objects that outlived their run, report stuck ones.

Runs on its own Temporal Schedule (`bytebot-chaos-orphan-sweeper`, every 5 minutes, overlap
skip; created by `control.schedules.ensure_sweeper_schedule`). Lists this tool's objects,
asks Temporal which owning runs still run, decides with `models.sweep.plan_sweep` against
`workflow.now()`, deletes the orphans, and returns what it did. Deterministic: all I/O is in
the activities. It never forces a finalizer; stuck deletions are reported in the result.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.sweep import (
        ChaosObjectList,
        DeleteInput,
        DeleteResult,
        RunStates,
        RunStatesInput,
        SweepInput,
        SweepReport,
        plan_sweep,
    )
    from workflows import names

STEP_TIMEOUT = timedelta(minutes=2)
STEP_HEARTBEAT = timedelta(seconds=30)
STEP_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=20))


@workflow.defn(name=names.SWEEPER_WORKFLOW)
class ChaosOrphanSweeperWorkflow:
    """One sweep over the allowed namespaces; see the module docstring."""

    @workflow.run
    async def run(self, sweep: SweepInput) -> SweepReport:
        listed = await workflow.execute_activity(
            names.LIST_CHAOS_OBJECTS,
            sweep,
            result_type=ChaosObjectList,
            start_to_close_timeout=STEP_TIMEOUT,
            heartbeat_timeout=STEP_HEARTBEAT,
            retry_policy=STEP_RETRY,
            summary="list this tool's chaos objects",
        )
        run_ids = sorted({o.scenario_id for o in listed.objects if o.scenario_id})
        runs = RunStates()
        if run_ids:
            runs = await workflow.execute_activity(
                names.CHECK_CHAOS_RUNS,
                RunStatesInput(scenario_ids=run_ids),
                result_type=RunStates,
                start_to_close_timeout=STEP_TIMEOUT,
                heartbeat_timeout=STEP_HEARTBEAT,
                retry_policy=STEP_RETRY,
                summary=f"look up {len(run_ids)} owning run(s)",
            )
        plan = plan_sweep(listed.objects, runs, workflow.now(), sweep.stuck_after)
        if plan.orphans:
            await workflow.execute_activity(
                names.DELETE_CHAOS_OBJECTS,
                DeleteInput(orphans=plan.orphans),
                result_type=DeleteResult,
                start_to_close_timeout=STEP_TIMEOUT,
                heartbeat_timeout=STEP_HEARTBEAT,
                retry_policy=STEP_RETRY,
                summary=f"delete {len(plan.orphans)} orphan(s)",
            )
        for stuck in plan.stuck:
            workflow.logger.warning("stuck chaos object %s: %s", stuck.object.ref, stuck.reason)
        report = SweepReport(
            checked=len(listed.objects),
            deleted=plan.orphans,
            kept=plan.kept,
            stuck=plan.stuck,
            problems=listed.problems,
        )
        workflow.set_current_details(
            f"checked {report.checked}, deleted {len(report.deleted)}, "
            f"stuck {len(report.stuck)}, problems {len(report.problems)}"
        )
        return report
