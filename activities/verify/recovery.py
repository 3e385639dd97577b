"""The recovery check behind `await_recovery`: is the system back, by itself, and how fast?

Owns the waiting loop after a fault was recovered: live pollers on the goal runs' task queue,
every baseline replica ready again (through the fault backend), and a fresh canary completed
with the expected result. The time to recovery runs from the fault's end until the last of
these held. It never acts on the system: no restart, no retry of anything but its own reads.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from activities.faults.backend import FaultBackend
from activities.verify.canaries import CanaryOutcome, canary_outcome, start_canary
from activities.verify.census import beat
from activities.verify.pollers import Pollers
from models.durations import format_duration
from models.faults import PodTarget, SelectMode
from models.ledger import ReplicaQuery, ReplicaSet
from models.observations import RecoveryCheck, RecoveryInput

#: The conditions of a recovery, by the name its heartbeat and evidence use.
POLLERS, REPLICAS, CANARY = "pollers", "replicas", "canary"


def all_replicas(target: PodTarget) -> ReplicaQuery:
    """Every worker replica of the fault's target set, not only those the fault selects."""
    return ReplicaQuery(
        target=PodTarget(
            namespace=target.namespace, labels=target.labels, mode=SelectMode.ALL, value=None
        )
    )


def replica_problems(replicas: ReplicaSet, target: PodTarget) -> list[str]:
    """Why the worker replicas are not steady: none found, or some not ready."""
    if not replicas.replicas:
        labels = ",".join(f"{k}={v}" for k, v in sorted(target.labels.items()))
        return [f"no worker replica matches {target.namespace}/{labels}"]
    unready = [r.name for r in replicas.replicas if not r.ready]
    if unready:
        return [f"{len(unready)} of {len(replicas.replicas)} worker replicas not ready: {unready}"]
    return []


def _streak(first: dict[str, datetime], name: str, holds: bool, now: datetime) -> None:
    if holds:
        first.setdefault(name, now)
    else:
        first.pop(name, None)


def _resumed() -> dict[str, datetime]:
    """First times each condition held, from the last attempt's heartbeat (retries resume)."""
    if not activity.in_activity() or not activity.info().heartbeat_details:
        return {}
    details = activity.info().heartbeat_details[0]
    if not isinstance(details, dict):
        return {}
    return {k: datetime.fromisoformat(v) for k, v in details.items() if isinstance(v, str)}


class RecoveryWatch:
    """The recovery check, with what it reads through.

    Args:
        backend: The fault backend, read for worker replicas.
        pollers: Reads the live pollers of the goal runs' task queue.
        tick: Pause between two turns of the waiting loop.
    """

    def __init__(self, backend: FaultBackend, pollers: Pollers, *, tick: timedelta) -> None:
        self.backend = backend
        self.pollers = pollers
        self.tick = tick

    async def run(self, client: Client, inp: RecoveryInput) -> RecoveryCheck:
        """Poll until pollers, replicas and a canary are back, or the settle window ends."""
        ctx = inp.context
        target, spec = ctx.verification.temporal, ctx.verification.canary
        give_up = inp.recovered_at + ctx.verification.settle
        limit = ctx.abort.max_recovery
        if limit is not None:
            # Past the abort limit, waiting longer only delays the abort.
            give_up = min(give_up, inp.recovered_at + limit)
        canary_id = f"{ctx.fault_id}-recovery" if spec.count else None
        started = False
        first = _resumed()
        outcome: CanaryOutcome | None = None
        pollers, replicas = 0, ReplicaSet()
        notes: list[str] = []
        want_ready = inp.baseline.replicas.ready
        while True:
            now = datetime.now(UTC)
            if canary_id and not started:
                started = (await start_canary(client, target, spec, canary_id)).ok
            pollers, _, notes = await self.pollers.live(
                client, target, [canary_id] if canary_id and started else []
            )
            replicas = await self.backend.read_replicas(all_replicas(ctx.target))
            # A condition counts from the start of its latest streak: a gone poller may still
            # look live until a canary's task has waited long enough to prove otherwise.
            _streak(first, POLLERS, pollers > 0, now)
            _streak(
                first,
                REPLICAS,
                replicas.ready >= want_ready and not replica_problems(replicas, ctx.target),
                now,
            )
            if canary_id and started:
                outcome = await canary_outcome(client, canary_id, spec.expected_result)
                if outcome.ok:
                    first.setdefault(CANARY, outcome.closed_at or now)
            needed = {POLLERS, REPLICAS} | ({CANARY} if canary_id else set())
            canary_final = outcome is not None and not outcome.running and not outcome.ok
            if needed <= first.keys() or canary_final or now >= give_up:
                break
            beat({k: v.isoformat() for k, v in first.items()})
            await asyncio.sleep(self.tick.total_seconds())
        return _report(inp, first, needed, pollers, replicas, outcome, canary_id, notes, limit)


def _report(
    inp: RecoveryInput,
    first: dict[str, datetime],
    needed: set[str],
    pollers: int,
    replicas: ReplicaSet,
    outcome: CanaryOutcome | None,
    canary_id: str | None,
    notes: list[str],
    limit: timedelta | None,
) -> RecoveryCheck:
    """The recovery check from the first times each condition held."""
    after = {k: max(0.0, (v - inp.recovered_at).total_seconds()) for k, v in first.items()}
    recovered = needed <= first.keys()
    ttr = max(after[k] for k in needed) if recovered else None
    tq = inp.context.verification.temporal.task_queue
    problems: list[str] = []
    if POLLERS not in first:
        problems.append(f"no live poller on task queue '{tq}' ({'; '.join(notes)})")
    if REPLICAS not in first:
        problems.append(
            f"{replicas.ready} of {inp.baseline.replicas.ready} baseline worker replicas ready: "
            + ", ".join(
                f"{r.name}={'ready' if r.ready else 'not ready'}" for r in replicas.replicas
            )
        )
    if canary_id and CANARY not in first:
        why = outcome.reason or outcome.status if outcome else "could not be started"
        problems.append(f"recovery canary {canary_id} did not complete as expected: {why}")
    evidence = [f"{k} back after {v:.1f}s" for k, v in sorted(after.items(), key=lambda x: x[1])]
    if ttr is not None:
        evidence.insert(0, f"time to recovery: {ttr:.1f}s (pollers, replicas and a canary)")
    breach = None
    if limit is not None and (ttr is None or ttr > limit.total_seconds()):
        took = f"{ttr:.1f}s" if ttr is not None else "not recovered"
        breach = f"recovery took longer than {format_duration(limit)} ({took}): " + "; ".join(
            problems
        )
    return RecoveryCheck(
        recovered=recovered,
        time_to_recovery_s=round(ttr, 3) if ttr is not None else None,
        pollers=pollers,
        replicas=replicas,
        canary_completed=(outcome.ok if outcome else False) if canary_id else None,
        problems=problems,
        evidence=evidence,
        breach=breach,
        pollers_back_after_s=after.get(POLLERS),
        replicas_ready_after_s=after.get(REPLICAS),
        canary_completed_after_s=after.get(CANARY),
        canary_id=canary_id,
    )
