"""The verification activities: the system under test's Temporal namespace around a fault.

Owns the four checks the fault workflow runs (steady state, hold probe, recovery, goal runs),
as thin adapters over `activities.verify.census` (reads), `activities.verify.canaries`
(canary goal runs) and the fault backend (worker replicas). Observations only: the verdict is
`models.judge.judge_fault`'s. It never injects or recovers a fault and never touches a goal
run that is not one of its canaries.

Pollers: DescribeTaskQueue keeps listing a worker that has gone for five minutes (300 s
measured on the dev server), and a live idle worker's `last_access_time` is refreshed only
once per long poll (about a minute). So a poller counts as live when it polled within
`poll_refresh`, and, while a canary's first workflow task has waited longer than
`poll_grace`, only if it polled after that task was scheduled: a live worker would have
taken it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client

from activities.faults.backend import FaultBackend
from activities.verify.canaries import canary_id, canary_prefix, start_canary
from activities.verify.census import (
    beat,
    census,
    closed_between,
    failed_since,
    literal,
    run_seconds,
)
from activities.verify.clients import TemporalClients
from activities.verify.goal_runs import GoalRunCheck
from activities.verify.pollers import Pollers, PollerView, not_polling
from activities.verify.reconcile import Reconciler
from activities.verify.recovery import RecoveryWatch, all_replicas, replica_problems
from models.durations import format_duration
from models.observations import (
    Baseline,
    GoalRunsCheck,
    GoalRunsInput,
    HoldProbe,
    HoldProbeInput,
    LatencyStats,
    ProbeContext,
    ReconcileCheck,
    ReconcileInput,
    RecoveryCheck,
    RecoveryInput,
)
from models.scenario import TemporalTarget
from workflows import names

log = structlog.get_logger(__name__)
#: Closed goal runs read at most for the steady state's latency.
LATENCY_SAMPLES = 500
#: Running canaries of the fault examined for a waiting first workflow task.
CANARIES_EXAMINED = 20


def _logger(ctx: ProbeContext) -> Any:
    if not activity.in_activity():
        return log.bind(fault_id=ctx.fault_id)
    info = activity.info()
    return log.bind(
        workflow_id=info.workflow_id,
        activity=info.activity_type,
        attempt=info.attempt,
        fault_id=ctx.fault_id,
    )


class TemporalProbeActivities:
    """Binds the target's Temporal clients and the fault backend to the verification names.

    Args:
        clients: Connected clients for each scenario's Temporal target.
        backend: The fault backend, read for worker replicas.
        concurrency: Concurrent describe/history calls at most.
        max_histories: Histories read at most per fault for the activity counts.
        poll_grace: A canary's first workflow task waiting this long means no live poller.
        poll_refresh: A listed poller that has not polled for this long is gone.
        tick: Pause between two turns of a waiting loop.
    """

    def __init__(
        self,
        clients: TemporalClients,
        backend: FaultBackend,
        *,
        concurrency: int = 32,
        max_histories: int = 200,
        poll_grace: timedelta = timedelta(seconds=2),
        poll_refresh: timedelta = timedelta(seconds=70),
        tick: timedelta = timedelta(seconds=1),
    ) -> None:
        self.clients = clients
        self.backend = backend
        self.concurrency = concurrency
        self.max_histories = max_histories
        self.poll_grace = poll_grace
        self.poll_refresh = poll_refresh
        self.tick = tick
        self.pollers = Pollers(grace=poll_grace, refresh=poll_refresh)
        self.goal_runs = GoalRunCheck(
            backend, concurrency=concurrency, max_histories=max_histories, tick=tick
        )
        self.recovery = RecoveryWatch(backend, self.pollers, tick=tick)
        self.reconciler = Reconciler(concurrency=concurrency)

    async def live_pollers(
        self, client: Client, target: TemporalTarget, canary_ids: list[str]
    ) -> PollerView:
        """Live pollers of the goal runs' task queue by identity, and notes."""
        return await self.pollers.live(client, target, canary_ids)

    @activity.defn(name=names.CHECK_STEADY_STATE)
    async def check_steady_state(self, ctx: ProbeContext) -> Baseline:
        """Snapshot the goal runs in flight, pollers and replicas; start this fault's canaries."""
        target, spec = ctx.verification.temporal, ctx.verification.canary
        client = await self.clients.get(target)
        taken_at = datetime.now(UTC)
        # The looks are independent: taken at once, the baseline costs the slowest of them
        # (the census), not their sum. The canaries start after, so the census never counts them.
        (marks, truncated), view, replicas, latency = await asyncio.gather(
            census(
                client,
                target.workflow_type,
                target.task_queue,
                ctx.verification.max_goal_runs,
                self.concurrency,
            ),
            self.live_pollers(client, target, []),
            self.backend.read_replicas(all_replicas(ctx.target)),
            self._recent_latency(client, ctx, taken_at),
        )
        starts = await asyncio.gather(
            *(
                start_canary(client, target, spec, canary_id(spec, ctx.fault_id, f"steady-{i}"))
                for i in range(spec.count)
            )
        )
        beat("census", len(marks))
        problems = [
            f"canary {s.canary_id} could not be started: {s.error}" for s in starts if not s.ok
        ]
        if view.count == 0:
            problems.append(f"no live poller on task queue '{target.task_queue}'")
        else:
            problems += [
                f"{name} is ready but has no live poller on task queue '{target.task_queue}'"
                for name in not_polling(replicas, view)
            ]
        problems += replica_problems(replicas, ctx.target)
        _logger(ctx).info(
            "steady_state_checked",
            goal_runs=len(marks),
            truncated=truncated,
            pollers=view.count,
            replicas_ready=replicas.ready,
            problems=problems,
        )
        return Baseline(
            taken_at=taken_at,
            goal_runs=marks,
            truncated=truncated,
            pollers=view.count,
            replicas=replicas,
            canary_ids=[s.canary_id for s in starts if s.ok],
            problems=problems,
            latency=latency,
            start_latency=LatencyStats.of([s.latency_s for s in starts if s.ok]),
            starts_ok=sum(s.ok for s in starts),
            starts_failed=sum(not s.ok for s in starts),
        )

    async def _recent_latency(
        self, client: Client, ctx: ProbeContext, now: datetime
    ) -> LatencyStats:
        """End-to-end latency of the system's goal runs that completed shortly before now."""
        verification = ctx.verification
        target = verification.temporal
        closed = await closed_between(
            client,
            target.workflow_type,
            target.task_queue,
            now - verification.latency_lookback,
            now,
            LATENCY_SAMPLES,
        )
        prefix = verification.canary.id_prefix
        seconds = [run_seconds(e) for e in closed if not e.id.startswith(prefix)]
        return LatencyStats.of([x for x in seconds if x is not None])

    @activity.defn(name=names.PROBE_HOLD)
    async def probe_hold(self, probe: HoldProbeInput) -> HoldProbe:
        """One check while the fault holds: a canary start, failed goal runs, live pollers."""
        ctx = probe.context
        target, abort = ctx.verification.temporal, ctx.abort
        client = await self.clients.get(target)
        spec = ctx.verification.canary
        suffix = activity.info().activity_id if activity.in_activity() else "direct"
        attempt = await start_canary(client, target, spec, canary_id(spec, ctx.fault_id, suffix))
        beat("canary", attempt.ok)
        running = [
            e.id
            async for e in client.list_workflows(
                f"WorkflowId STARTS_WITH {literal(canary_prefix(spec, ctx.fault_id))} "
                "AND ExecutionStatus='Running'",
                limit=CANARIES_EXAMINED,
            )
        ]
        view = await self.live_pollers(client, target, running)
        pollers, since, notes = view.count, view.since, list(view.notes)
        identities = sorted(view.live)
        replicas = await self.backend.read_replicas(all_replicas(ctx.target))
        failed = await failed_since(client, target, probe.injected_at, ctx.verification)
        now = datetime.now(UTC)
        if pollers == 0:
            since = min(x for x in (probe.no_pollers_since, since, now) if x is not None)
        else:
            since = None
        breach = None
        if abort.max_failed_goal_runs is not None and len(failed) > abort.max_failed_goal_runs:
            breach = (
                f"{len(failed)} goal runs failed during the fault "
                f"(limit {abort.max_failed_goal_runs}): {', '.join(i for i, _ in failed[:5])}"
            )
        elif abort.max_no_pollers is not None and since and now - since >= abort.max_no_pollers:
            limit = format_duration(abort.max_no_pollers)
            breach = (
                f"no live poller on task queue '{target.task_queue}' for "
                f"{(now - since).total_seconds():.1f}s (limit {limit})"
            )
        if not attempt.ok:
            notes.append(f"canary start rejected: {attempt.error}")
        _logger(ctx).info(
            "hold_probed",
            canary_ok=attempt.ok,
            failed=len(failed),
            pollers=pollers,
            breach=breach,
        )
        return HoldProbe(
            at=now,
            canary_starts_ok=int(attempt.ok),
            canary_starts_failed=int(not attempt.ok),
            canary_ids=[attempt.canary_id] if attempt.ok else [],
            failed_goal_runs=[i for i, _ in failed],
            failed_goal_run_reasons=[f"{i}: {status}" for i, status in failed],
            pollers=pollers,
            no_pollers_since=since,
            breach=breach,
            notes=notes,
            start_latency_s=round(attempt.latency_s, 3),
            replicas_ready=replicas.ready,
            replicas_total=len(replicas.replicas),
            live_pollers=identities,
        )

    @activity.defn(name=names.AWAIT_RECOVERY)
    async def await_recovery(self, recovery: RecoveryInput) -> RecoveryCheck:
        """Wait for pollers, ready replicas and a completed canary; measure time to recovery."""
        client = await self.clients.get(recovery.context.verification.temporal)
        check = await self.recovery.run(client, recovery)
        _logger(recovery.context).info(
            "recovery_checked",
            recovered=check.recovered,
            ttr_s=check.time_to_recovery_s,
            problems=check.problems,
            breach=check.breach,
        )
        return check

    @activity.defn(name=names.CHECK_GOAL_RUNS)
    async def check_goal_runs(self, inp: GoalRunsInput) -> GoalRunsCheck:
        """Wait until the baseline goal runs and canaries closed (or the deadline); classify."""
        client = await self.clients.get(inp.context.verification.temporal)
        check = await self.goal_runs.run(client, inp)
        _logger(inp.context).info(
            "goal_runs_checked",
            checked=check.checked,
            completed=check.completed,
            progressing=check.progressing,
            losses=[x.workflow_id for x in check.losses],
            waited_s=check.waited_s,
        )
        return check

    @activity.defn(name=names.RECONCILE_EVENTS)
    async def reconcile_events(self, inp: ReconcileInput) -> ReconcileCheck:
        """Look up Kafka's incomplete goal runs in Temporal: which lost an event, and why."""
        client = await self.clients.get(inp.context.verification.temporal)
        check = await self.reconciler.run(client, inp)
        _logger(inp.context).info(
            "events_reconciled",
            checked=check.checked,
            lost=check.lost_total,
            still_open=check.still_open,
        )
        return check

    def all(self) -> list[object]:
        """Every activity of this adapter, for the worker."""
        return [
            self.check_steady_state,
            self.probe_hold,
            self.await_recovery,
            self.check_goal_runs,
            self.reconcile_events,
        ]
