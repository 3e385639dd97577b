"""A fault's course over time, as the report plots it: one compact point per observation.

Built from what the probes already return (the steady state, each hold probe, the recovery
check, the Kafka lag samples) so the report can draw every fault with its window shaded. Kept
small on purpose: it travels in the fault's result and the run's report (Temporal payloads).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from pydantic import Field

from models.base import Frozen
from models.kafka import KafkaOrderReport, LagSample
from models.ledger import FaultRecord, ReplicaSet
from models.observations import Baseline, GoalRunsCheck, HoldProbe, LatencyStats, RecoveryCheck

T = TypeVar("T")


#: Hold points kept per fault (thinned evenly, first and last kept): enough for a plot, and a
#: 1-hour fault's timeline stays a few tens of KB in the report.
MAX_HOLD_POINTS = 120


def thin(items: list[T], cap: int) -> list[T]:
    """At most `cap` items, evenly spread, keeping the first and the last."""
    if len(items) <= cap or cap < 2:
        return items[:cap] if cap < 2 else items
    step = (len(items) - 1) / (cap - 1)
    return [items[round(i * step)] for i in range(cap)]


class PointSource(StrEnum):
    """Which check a point comes from."""

    BASELINE = "baseline"
    HOLD = "hold"
    RECOVERY = "recovery"


class TimelinePoint(Frozen):
    """What one check saw at one moment."""

    at: datetime
    source: PointSource
    starts_ok: int = Field(default=0, description="Goal-run (canary) starts accepted.")
    starts_failed: int = Field(default=0, description="Goal-run (canary) starts refused.")
    start_latency_s: float | None = None
    pollers: int | None = None
    pollers_by_replica: dict[str, int] = Field(
        default_factory=dict, description="Live pollers per replica name; 'other' if unmatched."
    )
    replicas_ready: int | None = None
    failed_goal_runs: int = 0


class FaultTimeline(Frozen):
    """A fault's points, its consumer-lag course and the latencies before and after."""

    points: list[TimelinePoint] = Field(default_factory=list)
    lag: list[LagSample] = Field(default_factory=list)
    lag_baseline: int | None = None
    replicas_total: int | None = None
    latency_before: LatencyStats | None = Field(
        default=None, description="End-to-end latency of goal runs closed before the fault."
    )
    latency_after: LatencyStats | None = Field(
        default=None, description="End-to-end latency of goal runs closed after injection."
    )
    back_at: datetime | None = Field(
        default=None, description="When the system was back (recovered + time to recovery)."
    )


def pollers_by_replica(identities: list[str], replicas: ReplicaSet) -> dict[str, int]:
    """Count poller identities per replica, matching the replica's name or uid as a token.

    Worker identities are `<pid>@<host>` (the SDK's default; the host is the pod) or the
    stand-in's `<replica>/<pid>`; tokens avoid counting `replica-10` as `replica-1`.
    """
    counts = {r.name: 0 for r in replicas.replicas}
    for identity in identities:
        tokens = set(re.split(r"[/@:]", identity))
        owner = next(
            (r.name for r in replicas.replicas if r.name in tokens or (r.uid and r.uid in tokens)),
            "other",
        )
        counts[owner] = counts.get(owner, 0) + 1
    return counts


def _probe_point(probe: HoldProbe, replicas: ReplicaSet) -> TimelinePoint:
    return TimelinePoint(
        at=probe.at,
        source=PointSource.HOLD,
        starts_ok=probe.canary_starts_ok,
        starts_failed=probe.canary_starts_failed,
        start_latency_s=probe.start_latency_s,
        pollers=probe.pollers,
        pollers_by_replica=pollers_by_replica(probe.live_pollers, replicas)
        if probe.live_pollers
        else {},
        replicas_ready=probe.replicas_ready,
        failed_goal_runs=probe.failed_count,
    )


def fault_timeline(
    record: FaultRecord,
    baseline: Baseline | None,
    probes: list[HoldProbe],
    recovery: RecoveryCheck | None,
    goal_runs: GoalRunsCheck | None = None,
    kafka: KafkaOrderReport | None = None,
) -> FaultTimeline:
    """The fault's timeline from its observations (a pure function)."""
    replicas = baseline.replicas if baseline else ReplicaSet()
    points: list[TimelinePoint] = []
    if baseline is not None:
        points.append(
            TimelinePoint(
                at=baseline.taken_at,
                source=PointSource.BASELINE,
                starts_ok=baseline.starts_ok,
                starts_failed=baseline.starts_failed,
                start_latency_s=baseline.start_latency.p50_s if baseline.start_latency else None,
                pollers=baseline.pollers,
                replicas_ready=baseline.replicas.ready,
            )
        )
    points += [_probe_point(p, replicas) for p in thin(probes, MAX_HOLD_POINTS)]
    back_at = None
    if recovery is not None and record.recovered_at is not None:
        after = recovery.time_to_recovery_s or recovery.replicas_ready_after_s or 0.0
        back_at = record.recovered_at + timedelta(seconds=after)
        points.append(
            TimelinePoint(
                at=back_at,
                source=PointSource.RECOVERY,
                pollers=recovery.pollers,
                replicas_ready=recovery.replicas.ready if recovery.replicas.replicas else None,
            )
        )
    lag = kafka.lag if kafka is not None else None
    return FaultTimeline(
        points=points,
        lag=lag.samples if lag else [],
        lag_baseline=lag.baseline_lag if lag else None,
        replicas_total=len(replicas.replicas) or None,
        latency_before=baseline.latency if baseline else None,
        latency_after=goal_runs.latency if goal_runs else None,
        back_at=back_at if recovery and recovery.recovered else None,
    )
