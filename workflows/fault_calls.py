"""The fault workflow's verification calls and its verdict, apart from its phases.

Deterministic helpers of `ChaosFaultWorkflow` (every side effect is an activity): a probe
activity bounded by the settle window, the Kafka positions read, the Temporal/Kafka
reconciliation and the verdict with its timeline.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from models.judge import judge_fault
    from models.kafka import KafkaCheckInput, KafkaOrderReport, KafkaPositions
    from models.observations import (
        GoalRunsCheck,
        GoalRunsInput,
        ProbeContext,
        ReconcileCheck,
        ReconcileInput,
    )
    from models.report import FaultObservations, FaultReport
    from models.scenario import Verification
    from models.timeline import fault_timeline
    from workflows import names, policies

T = TypeVar("T")
#: A probe whose last attempt was lost with its worker is run again (was: that was its failure).
WORKER_LOSS_PATCH = "probe-outlives-worker-loss"
#: Times a probe is run again after its worker was lost: each run has its own attempts, so a
#: worker restarted over and over during one probe is ridden out, a probe that hangs is not.
MAX_WORKER_LOSSES = 3


async def probe(name: str, arg: object, result_type: type[T], verification: Verification) -> T:
    """Run a verification activity: heartbeating, bounded by the settle window.

    A heartbeat timeout means the worker running it died (SIGKILL, pod evicted): that says
    nothing about the system under test, so the probe is run again rather than failed, a few
    times; a probe that fails for itself fails after its retries as before.
    """
    losses = 0
    while True:
        try:
            return await workflow.execute_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=verification.settle + timedelta(minutes=1),
                heartbeat_timeout=policies.PROBE_HEARTBEAT,
                retry_policy=policies.PROBE_RETRY,
                summary=name.replace("_", " "),
            )
        except ActivityError as error:
            # patched() last: its marker is recorded only where a probe is run again.
            lost = losses < MAX_WORKER_LOSSES and _worker_lost(error)
            if not lost or not workflow.patched(WORKER_LOSS_PATCH):
                raise
            losses += 1
            workflow.logger.warning("%s lost with its worker; running it again", name)


def _worker_lost(error: ActivityError) -> bool:
    """Whether the activity's last attempt stopped heartbeating: its worker is gone."""
    cause = error.cause
    return isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.HEARTBEAT


async def kafka_positions(ctx: ProbeContext) -> KafkaPositions | None:
    """The topics' end offsets and the group's lag now; None without Kafka checks."""
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


async def reconcile(
    ctx: ProbeContext, kafka: KafkaOrderReport, start: KafkaPositions
) -> ReconcileCheck | None:
    """Look up in Temporal the goal runs whose events Kafka lacks; None if none lack any."""
    if not kafka.no_terminal and not kafka.no_start:
        return None
    return await probe(
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


async def _none() -> None:
    return None


async def verify(
    ctx: ProbeContext,
    goal_runs_input: GoalRunsInput,
    kafka_input: KafkaCheckInput | None,
    *,
    reconcile_first: bool,
) -> tuple[GoalRunsCheck, KafkaOrderReport | None, ReconcileCheck | None]:
    """Temporal's check, Kafka's, and their reconciliation (`reconcile_first`: the patch)."""
    if not reconcile_first:  # runs begun before the patch: the two checks side by side
        goal_runs_check = probe(
            names.CHECK_GOAL_RUNS, goal_runs_input, GoalRunsCheck, ctx.verification
        )
        kafka_check = None
        if kafka_input is not None:
            kafka_check = probe(
                names.CHECK_KAFKA_EVENTS, kafka_input, KafkaOrderReport, ctx.verification
            )
        runs, kafka = await asyncio.gather(goal_runs_check, kafka_check or _none())
        return runs, kafka, None
    # Temporal first: once its runs have ended or gone idle, their events are written, so
    # Kafka's window is read to its end at once and what is missing is reconciled.
    runs = await probe(names.CHECK_GOAL_RUNS, goal_runs_input, GoalRunsCheck, ctx.verification)
    if kafka_input is None:
        return runs, None, None
    kafka = await probe(names.CHECK_KAFKA_EVENTS, kafka_input, KafkaOrderReport, ctx.verification)
    return runs, kafka, await reconcile(ctx, kafka, kafka_input.start)


def with_timeline(observations: FaultObservations) -> FaultReport:
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
