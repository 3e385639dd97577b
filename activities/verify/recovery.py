"""The recovery check behind `await_recovery`: is the system back, by itself, and how fast?

Owns the waiting loop after a fault was recovered: live pollers on the goal runs' task queue,
every baseline replica ready again (through the fault backend), and a fresh canary completed
with the expected result. The time to recovery runs from the fault's end until the last of
these held. It never acts on the system: no restart, no retry of anything but its own reads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from activities.faults.backend import FaultBackend
from activities.verify.canaries import CanaryOutcome, canary_id, canary_outcome, start_canary
from activities.verify.census import beat
from activities.verify.pollers import Pollers, PollerView, not_polling
from models.durations import format_duration
from models.faults import PodTarget, SelectMode
from models.ledger import ReplicaQuery, ReplicaSet
from models.observations import RecoveryCheck, RecoveryInput

#: The conditions of a recovery, by the name its heartbeat and evidence use.
POLLERS, REPLICAS, CANARY = "pollers", "replicas", "canary"
#: The heartbeat's keys for when it was sent and the seconds lost so far (not conditions).
BEAT_AT, LOST = "beat_at", "lost_s"


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


#: A replica the fault hit must poll this long after the fault ended (see `not_polling`).
POLL_AGAIN = timedelta(seconds=2)


def _due(inp: RecoveryInput) -> dict[str, datetime]:
    """By when each replica the fault hit must have polled again."""
    return {name: inp.recovered_at + POLL_AGAIN for name in inp.targets}


def _streak(first: dict[str, datetime], name: str, holds: bool, now: datetime) -> None:
    if holds:
        first.setdefault(name, now)
    else:
        first.pop(name, None)


def resume_point(now: datetime) -> tuple[dict[str, datetime], timedelta]:
    """From the last attempt's heartbeat: when each condition first held, and the time lost.

    The time lost is the gap since that heartbeat: the check was not running (its worker died,
    the server was away), so it did not look, and that gap does not count against the settle
    window: otherwise a chaos worker's death shortens the time the system gets to recover.
    """
    if not activity.in_activity():
        return {}, timedelta(0)
    info = activity.info()
    if not info.heartbeat_details:
        # An earlier attempt that never heartbeated died before its first look: all of it lost.
        lost = now - info.scheduled_time if info.attempt > 1 else timedelta(0)
        return {}, max(timedelta(0), lost)
    details = info.heartbeat_details[0]
    if not isinstance(details, dict):
        return {}, timedelta(0)
    times = {k: datetime.fromisoformat(v) for k, v in details.items() if isinstance(v, str)}
    beat_at = times.pop(BEAT_AT, None)
    before = timedelta(seconds=float(details.get(LOST) or 0))
    return times, before + (max(timedelta(0), now - beat_at) if beat_at else timedelta(0))


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
        recovery_canary = canary_id(spec, ctx.fault_id, "recovery") if spec.count else None
        started = False
        first, lost = resume_point(datetime.now(UTC))
        give_up += lost
        outcome: CanaryOutcome | None = None
        view, replicas = PollerView(), ReplicaSet()
        want_ready = inp.baseline.replicas.ready
        contract = target.contract
        while True:
            now = datetime.now(UTC)
            if recovery_canary and not started:
                started = (await start_canary(client, target, spec, recovery_canary)).ok
            view = await self.pollers.live(
                client, target, [recovery_canary] if recovery_canary and started else []
            )
            replicas = await self.backend.read_replicas(all_replicas(ctx.target))
            # Every ready replica must poll, and each one the fault hit must have polled since:
            # a worker that stays up and ready but stopped polling takes no work.
            quiet = not_polling(replicas, view, _due(inp), inp.baseline.replicas)
            # A condition counts from the start of its latest streak: a gone poller may still
            # look live until a canary's task has waited long enough to prove otherwise.
            _streak(first, POLLERS, view.count > 0 and not quiet, now)
            _streak(
                first,
                REPLICAS,
                replicas.ready >= want_ready and not replica_problems(replicas, ctx.target),
                now,
            )
            if recovery_canary and started:
                outcome = await canary_outcome(client, recovery_canary, spec, contract)
                if outcome.ok:
                    first.setdefault(CANARY, outcome.closed_at or now)
            needed = {POLLERS, REPLICAS} | ({CANARY} if recovery_canary else set())
            canary_final = outcome is not None and not outcome.running and not outcome.ok
            if needed <= first.keys() or canary_final or now >= give_up:
                break
            stamps = {k: v.isoformat() for k, v in first.items()}
            beat({**stamps, BEAT_AT: now.isoformat(), LOST: lost.total_seconds()})
            await asyncio.sleep(self.tick.total_seconds())
        waited = datetime.now(UTC) - inp.recovered_at
        seen = _Seen(view, replicas, outcome, recovery_canary, waited)
        return _report(inp, first, needed, seen, limit)


@dataclass(frozen=True)
class _Seen:
    """What the last turn of the recovery loop saw."""

    view: PollerView
    replicas: ReplicaSet
    outcome: CanaryOutcome | None
    canary_id: str | None
    waited: timedelta


def _never_back(inp: RecoveryInput, replicas: ReplicaSet) -> list[tuple[str, str]]:
    """Baseline replicas not running and ready at the end, with what they look like now."""
    now = {r.name: r for r in replicas.replicas}
    gone = []
    for before in inp.baseline.replicas.replicas:
        after = now.get(before.name)
        if after is None:
            gone.append((before.name, "no longer exists"))
        elif not after.ready:
            exit_ = f", last exit {after.last_exit_reason}" if after.last_exit_reason else ""
            state = "not running" if not after.uid else "running but not ready"
            gone.append((before.name, f"{state}{exit_}, restarts {after.restarts or 0}"))
    return gone


def _report(
    inp: RecoveryInput,
    first: dict[str, datetime],
    needed: set[str],
    seen: _Seen,
    limit: timedelta | None,
) -> RecoveryCheck:
    """The recovery check from the first times each condition held."""
    after = {k: max(0.0, (v - inp.recovered_at).total_seconds()) for k, v in first.items()}
    recovered = needed <= first.keys()
    ttr = max(after[k] for k in needed) if recovered else None
    tq = inp.context.verification.temporal.task_queue
    replicas = seen.replicas
    waited = format_duration(timedelta(seconds=round(seen.waited.total_seconds(), 1)))
    problems: list[str] = []
    never_back = _never_back(inp, replicas)
    problems += [f"{name} not back after {waited}: {how}" for name, how in never_back]
    quiet = not_polling(replicas, seen.view, _due(inp), inp.baseline.replicas)
    problems += [
        f"{name} is ready but has not polled task queue '{tq}' since the fault ended"
        for name in quiet
    ]
    if POLLERS not in first and not quiet:
        problems.append(f"no live poller on task queue '{tq}' ({'; '.join(seen.view.notes)})")
    if REPLICAS not in first and not never_back:
        problems.append(
            f"{replicas.ready} of {inp.baseline.replicas.ready} baseline worker replicas ready: "
            + ", ".join(
                f"{r.name}={'ready' if r.ready else 'not ready'}" for r in replicas.replicas
            )
        )
    if seen.canary_id and CANARY not in first:
        outcome = seen.outcome
        why = outcome.reason or outcome.status if outcome else "could not be started"
        problems.append(f"recovery canary {seen.canary_id} did not complete as expected: {why}")
    evidence = [f"{k} back after {v:.1f}s" for k, v in sorted(after.items(), key=lambda x: x[1])]
    evidence.append(f"live pollers: {sorted(seen.view.live)}")
    if ttr is not None:
        evidence.insert(0, f"time to recovery: {ttr:.1f}s (pollers, replicas and a canary)")
    else:
        evidence.insert(0, f"time to recovery unknown: not recovered after {waited}")
    breach = None
    # Only a measured breach aborts: a recovery that took longer than the limit, or one not
    # done although the limit has passed. A shorter settle window proves nothing either way.
    if limit is not None and (
        (ttr is not None and ttr > limit.total_seconds()) or (ttr is None and seen.waited >= limit)
    ):
        took = f"{ttr:.1f}s" if ttr is not None else f"not recovered after {waited}"
        breach = f"recovery took longer than {format_duration(limit)} ({took}): " + "; ".join(
            problems
        )
    return RecoveryCheck(
        recovered=recovered,
        time_to_recovery_s=round(ttr, 3) if ttr is not None else None,
        pollers=seen.view.count,
        replicas=replicas,
        canary_completed=(seen.outcome.ok if seen.outcome else False) if seen.canary_id else None,
        problems=problems,
        evidence=evidence,
        breach=breach,
        pollers_back_after_s=after.get(POLLERS),
        replicas_ready_after_s=after.get(REPLICAS),
        canary_completed_after_s=after.get(CANARY),
        canary_id=seen.canary_id,
        never_back=[name for name, _ in never_back],
        not_polling=quiet,
    )
