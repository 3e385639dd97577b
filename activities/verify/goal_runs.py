"""The no-data-loss check behind `check_goal_runs`: did every goal run in flight survive?

Owns waiting, up to the deadline, for the goal runs in flight at the fault and the fault's
canaries to close, then classifying each: completed (canaries: with the expected result),
still running and progressing, or lost (failed, timed out, terminated, canceled, stalled,
wrong result), with the failure from its history. It also counts activity failures, timeouts
and retries in a bounded number of affected histories, and replica restarts and OOM kills
against the baseline. It never decides a verdict and never acts on a goal run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from activities.faults.backend import FaultBackend
from activities.heartbeats import beating
from activities.verify.canaries import CanaryOutcome, canary_outcome
from activities.verify.census import (
    STATUS_WORDS,
    ActivityCounts,
    Progress,
    attribute,
    beat,
    bounded,
    close_reason,
    count_activities,
    executions,
    progress,
    run_seconds,
    started_between,
)
from activities.verify.recovery import all_replicas
from activities.verify.results import result_failure, wrong_result
from models.contract import GoalRunContract
from models.ledger import ReplicaSet
from models.observations import (
    GoalRunLoss,
    GoalRunMark,
    GoalRunsCheck,
    GoalRunsInput,
    LatencyStats,
)

DONE = frozenset({WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW})


#: Losses kept as examples; `losses_total` counts them all.
MAX_LOSSES = 50


@dataclass(frozen=True)
class _Done:
    """A run that ended well, and how long it took."""

    seconds: float | None


@dataclass(frozen=True)
class _Followed:
    """The runs a check follows: in flight at injection, started while the fault held."""

    marks: list[GoalRunMark]
    started_during: int


class GoalRunCheck:
    """The no-data-loss check, with what it reads through and its limits.

    Args:
        backend: The fault backend, read for worker replicas.
        concurrency: Concurrent describe/history calls at most.
        max_histories: Histories read at most per fault for the activity counts.
        tick: Pause between two turns of the waiting loop.
    """

    def __init__(
        self, backend: FaultBackend, *, concurrency: int, max_histories: int, tick: timedelta
    ) -> None:
        self.backend = backend
        self.concurrency = concurrency
        self.max_histories = max_histories
        self.tick = tick

    async def run(self, client: Client, inp: GoalRunsInput) -> GoalRunsCheck:
        """Wait for the runs to close or idle (or the deadline), then judge every one of them."""
        contract = inp.context.verification.temporal.contract
        followed = await self._followed(client, inp)
        marks = followed.marks
        canaries = list(dict.fromkeys(inp.canary_ids))
        ids = [m.workflow_id for m in marks] + canaries
        began = datetime.now(UTC)
        seen = await executions(client, ids)
        # "Still running and progressing" is judged over this check's own window, after the
        # fault: a run that moved before its workers died must not pass for a live one.
        snapshot = await self._snapshot(client, marks, canaries, seen)
        while True:
            waiting = [m for m in marks if _open(seen, m) and not _idle(seen, m, contract)]
            open_canaries = [c for c in canaries if _latest_open(seen, c)]
            now = datetime.now(UTC)
            if (not waiting and not open_canaries) or now >= inp.deadline:
                break
            beat({"open_goal_runs": len(waiting), "open_canaries": len(open_canaries)})
            left = (inp.deadline - now).total_seconds()
            await asyncio.sleep(max(0.0, min(self.tick.total_seconds(), left)))
            seen = await executions(client, ids)
        waited = (datetime.now(UTC) - began).total_seconds()

        async def fate(mark: GoalRunMark) -> GoalRunLoss | Progress | _Done:
            return await _fate(client, snapshot.get(mark.workflow_id, mark), seen, began, contract)

        async def canary_fate(cid: str) -> CanaryOutcome | GoalRunLoss | Progress:
            return await _canary_fate(client, cid, snapshot.get(cid), began, inp)

        results = await bounded(self.concurrency, beating(fate, "goal runs", len(marks)), marks)
        outcomes = await bounded(
            self.concurrency, beating(canary_fate, "canaries", len(canaries)), canaries
        )
        check = _tally(marks, canaries, results, outcomes)
        counts, read = await self._activity_counts(client, marks, canaries, check.losses, inp)
        replicas = await self.backend.read_replicas(all_replicas(inp.context.target))
        restarts, ooms = replica_changes(inp.baseline.replicas, replicas)
        evidence = [
            f"waited {waited:.1f}s for {len(marks)} goal run(s) and {len(canaries)} canary(ies)",
            f"activity failures {counts.failures}, timeouts {counts.timeouts}, retries "
            f"{counts.retries} in {read} history(ies)",
            f"replica restarts {restarts}, OOM kills {ooms}",
        ]
        if inp.baseline.truncated:
            evidence.append(f"only the first {len(marks)} goal runs in flight were followed")
        return check.model_copy(
            update=dict(
                started_during=followed.started_during,
                activity_failures=counts.failures,
                activity_timeouts=counts.timeouts,
                activity_retries=counts.retries,
                replica_restarts=restarts,
                oom_kills=ooms,
                histories_read=read,
                histories_truncated=read < len(marks) + len(canaries),
                waited_s=round(waited, 3),
                evidence=evidence,
            )
        )

    async def _followed(self, client: Client, inp: GoalRunsInput) -> _Followed:
        """The baseline's runs, and the system's runs started while the fault held."""
        verification = inp.context.verification
        target, limit = verification.temporal, verification.max_goal_runs
        marks = inp.baseline.goal_runs[:limit]
        known = {m.workflow_id for m in marks}
        started = await started_between(
            client,
            target.workflow_type,
            target.task_queue,
            inp.injected_at,
            inp.recovered_at or datetime.now(UTC),
            limit,
        )
        new = [
            GoalRunMark(workflow_id=e.id, run_id=e.run_id, history_length=0)
            for e in started
            # The tool's own canaries are judged as canaries, not as the system's work.
            if e.id not in known and not e.id.startswith(verification.canary.id_prefix)
        ]
        return _Followed(marks + new[: max(0, limit - len(marks))], len(new))

    async def _snapshot(
        self,
        client: Client,
        marks: list[GoalRunMark],
        canaries: list[str],
        seen: dict[tuple[str, str], WorkflowExecution],
    ) -> dict[str, GoalRunMark]:
        """History lengths, now, of the runs and canaries still open."""
        wanted: list[tuple[str, str | None]] = [
            (m.workflow_id, m.run_id) for m in marks if _open(seen, m)
        ]
        wanted += [(c, None) for c in canaries if _latest_open(seen, c)]

        async def mark(run: tuple[str, str | None]) -> GoalRunMark:
            desc = await client.get_workflow_handle(run[0], run_id=run[1]).describe()
            return GoalRunMark(
                workflow_id=run[0], run_id=desc.run_id, history_length=desc.history_length
            )

        found = await bounded(self.concurrency, beating(mark, "marks", len(wanted)), wanted)
        return {m.workflow_id: m for m in found if isinstance(m, GoalRunMark)}

    async def _activity_counts(
        self,
        client: Client,
        marks: list[GoalRunMark],
        canaries: list[str],
        losses: list[GoalRunLoss],
        inp: GoalRunsInput,
    ) -> tuple[ActivityCounts, int]:
        """Counts over at most `max_histories` affected runs, the lost ones first."""
        ordered = [x.workflow_id for x in losses] + [m.workflow_id for m in marks] + canaries
        chosen = list(dict.fromkeys(ordered))[: self.max_histories]
        run_ids = {m.workflow_id: m.run_id for m in marks}

        async def count(workflow_id: str) -> ActivityCounts:
            return await count_activities(
                client, workflow_id, run_ids.get(workflow_id), inp.injected_at
            )

        found = await bounded(self.concurrency, beating(count, "histories", len(chosen)), chosen)
        total = ActivityCounts()
        read = 0
        for counts in found:
            if isinstance(counts, ActivityCounts):
                read += 1
                total.failures += counts.failures
                total.timeouts += counts.timeouts
                total.retries += counts.retries
        return total, read


def _open(seen: dict[tuple[str, str], WorkflowExecution], mark: GoalRunMark) -> bool:
    e = seen.get((mark.workflow_id, mark.run_id))
    return e is None or e.status is WorkflowExecutionStatus.RUNNING


def _idle(
    seen: dict[tuple[str, str], WorkflowExecution], mark: GoalRunMark, contract: GoalRunContract
) -> bool:
    """Open, but waiting by design (for a person, an approval, a resume): no need to wait."""
    e = seen.get((mark.workflow_id, mark.run_id))
    return e is not None and attribute(e, contract.phase_attribute) in contract.idle_phases


def _latest_open(seen: dict[tuple[str, str], WorkflowExecution], workflow_id: str) -> bool:
    """A canary is open while any run of its id is (a canary is never started twice)."""
    runs = [e.status for (wid, _), e in seen.items() if wid == workflow_id]
    return not runs or any(s is WorkflowExecutionStatus.RUNNING for s in runs)


async def _fate(
    client: Client,
    mark: GoalRunMark,
    seen: dict[tuple[str, str], WorkflowExecution],
    since: datetime,
    contract: GoalRunContract,
) -> GoalRunLoss | Progress | _Done:
    """How the run ended (judged by its result), or how it is doing if still open."""
    execution = seen.get((mark.workflow_id, mark.run_id))
    handle = client.get_workflow_handle(mark.workflow_id, run_id=mark.run_id)
    status = execution.status if execution else (await handle.describe()).status
    if status in DONE:
        result = await handle.result(follow_runs=False)
        failed = result_failure(contract, result)
        if failed is not None:
            return GoalRunLoss(workflow_id=mark.workflow_id, status="result-failed", reason=failed)
        wrong = wrong_result(contract, result, execution)
        if wrong is not None:
            return GoalRunLoss(workflow_id=mark.workflow_id, status="wrong-result", reason=wrong)
        return _Done(run_seconds(execution) if execution else None)
    if status is WorkflowExecutionStatus.RUNNING:
        if execution is not None and attribute(execution, contract.phase_attribute) in (
            contract.idle_phases
        ):
            phase = attribute(execution, contract.phase_attribute)
            return Progress(False, mark.history_length, f"idle by design: {phase}", True)
        moved = await progress(client, mark, since)
        if moved.progressing or moved.idle:
            return moved
        return GoalRunLoss(workflow_id=mark.workflow_id, status="stalled", reason=moved.detail)
    word = STATUS_WORDS.get(status, str(status)) if status else "missing"
    reason = await close_reason(client, mark.workflow_id, mark.run_id)
    return GoalRunLoss(workflow_id=mark.workflow_id, status=word, reason=reason)


async def _canary_fate(
    client: Client, canary_id: str, mark: GoalRunMark | None, began: datetime, inp: GoalRunsInput
) -> CanaryOutcome | GoalRunLoss | Progress:
    verification = inp.context.verification
    outcome = await canary_outcome(
        client, canary_id, verification.canary, verification.temporal.contract
    )
    if not outcome.running:
        if outcome.ok:
            return outcome
        return GoalRunLoss(
            workflow_id=canary_id, status=outcome.status, reason=outcome.reason, canary=True
        )
    moved = await progress(client, mark, began) if mark else None
    if moved is not None and moved.progressing:
        return moved
    detail = moved.detail if moved else "not found when the check began"
    return GoalRunLoss(
        workflow_id=canary_id,
        status="stalled",
        reason=f"not completed by the deadline: {detail}",
        canary=True,
    )


def _tally(
    marks: list[GoalRunMark],
    canaries: list[str],
    results: list[GoalRunLoss | Progress | _Done | BaseException],
    outcomes: list[CanaryOutcome | GoalRunLoss | Progress | BaseException],
) -> GoalRunsCheck:
    losses: list[GoalRunLoss] = []
    completed = progressing = idle = canaries_ok = canaries_progressing = 0
    seconds: list[float] = []
    for mark, result in zip(marks, results, strict=True):
        if isinstance(result, BaseException):
            losses.append(
                GoalRunLoss(workflow_id=mark.workflow_id, status="missing", reason=str(result))
            )
        elif isinstance(result, GoalRunLoss):
            losses.append(result)
        elif isinstance(result, Progress):
            idle += result.idle
            progressing += not result.idle
        else:
            completed += 1
            if result.seconds is not None:
                seconds.append(result.seconds)
    for cid, outcome in zip(canaries, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            losses.append(
                GoalRunLoss(workflow_id=cid, status="missing", reason=str(outcome), canary=True)
            )
        elif isinstance(outcome, GoalRunLoss):
            losses.append(outcome)
        elif isinstance(outcome, Progress):
            canaries_progressing += 1
        else:
            canaries_ok += 1
    return GoalRunsCheck(
        checked=len(marks),
        completed=completed,
        progressing=progressing,
        idle=idle,
        losses=losses[:MAX_LOSSES],
        losses_total=len(losses),
        results_checked=completed + sum(1 for x in losses if x.status.endswith("result")),
        canaries_ok=canaries_ok,
        canaries_started=len(canaries),
        canaries_progressing=canaries_progressing,
        latency=LatencyStats.of(seconds) if seconds else None,
    )


def replica_changes(before: ReplicaSet, after: ReplicaSet) -> tuple[int, int]:
    """Replica restarts and OOM kills since the baseline.

    A replica restarted in place shows a higher restart count; one replaced (a new pod, or a
    new process locally) shows a new uid, or its name is gone (replaced by a new name).
    """
    now = {r.name: r for r in after.replicas}
    restarts = ooms = 0
    for old in before.replicas:
        new = now.get(old.name)
        if new is None:
            restarts += 1
            continue
        bumped = max(0, (new.restarts or 0) - (old.restarts or 0))
        if not bumped and old.uid and new.uid and new.uid != old.uid:
            bumped = 1
        restarts += bumped
        if bumped and new.last_exit_reason == "OOMKilled":
            ooms += 1
    return restarts, ooms
