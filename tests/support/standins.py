"""Test-side stand-ins for the orchestration tests (named so: they replace real parts).

`MarkerBackend` is a stand-in fault backend whose "fault" is a marker file on disk, so a test
(and a worker in another process) can see what is injected and that recovery removed it.
`HealthyProbes` stands in for the verification and Kafka activities with a healthy system;
the real probes have their own tests against real goal runs and a real broker.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.faults.backend import FaultRejected
from models.kafka import KafkaCheckInput, KafkaOrderReport, KafkaPositions, LagReport
from models.ledger import (
    FaultRequest,
    Injection,
    Recovery,
    ReplicaQuery,
    ReplicaSet,
    TargetPreview,
    TargetRef,
)
from models.observations import (
    Baseline,
    GoalRunsCheck,
    GoalRunsInput,
    HoldProbe,
    HoldProbeInput,
    ProbeContext,
    RecoveryCheck,
    RecoveryInput,
)
from models.scenario import KafkaTarget
from workflows import names

REPLICA = TargetRef(namespace="bytebot", name="replica-0", uid="1", ready=True, restarts=0)


class MarkerBackend:
    """Stand-in fault backend: a fault is `<dir>/<fault_id>.json` while it is injected."""

    name = "stand-in"

    def __init__(
        self, directory: Path, reject_actions: tuple[str, ...] = (), inject_delay_s: float = 0
    ) -> None:
        self.directory = directory
        self.reject_actions = reject_actions
        self.inject_delay_s = inject_delay_s
        directory.mkdir(parents=True, exist_ok=True)

    def marker(self, request: FaultRequest) -> Path:
        return self.directory / f"{request.fault_id}.json"

    def injected(self) -> list[str]:
        """Fault ids currently injected."""
        return sorted(p.stem for p in self.directory.glob("*.json"))

    async def preview(self, request: FaultRequest) -> TargetPreview:
        fault = request.fault
        return TargetPreview(
            fault_id=request.fault_id,
            label=fault.label,
            action=fault.action,
            selector=fault.target.describe(),
            targets=[REPLICA],
        )

    async def inject(self, request: FaultRequest) -> Injection:
        if request.fault.action in self.reject_actions:
            raise FaultRejected(f"stand-in backend rejects {request.fault.action}")
        if self.inject_delay_s:
            await asyncio.sleep(self.inject_delay_s)
        self.marker(request).write_text(json.dumps({"expires_at": request.expires_at.isoformat()}))
        return Injection(targets=[REPLICA], evidence=["marker written"], in_effect=True)

    async def confirm(self, request: FaultRequest) -> Injection:
        present = self.marker(request).exists()
        return Injection(
            targets=[REPLICA], evidence=[f"marker present: {present}"], in_effect=present
        )

    async def recover(self, request: FaultRequest) -> Recovery:
        self.marker(request).unlink(missing_ok=True)
        return Recovery(recovered=True, evidence=["marker removed"])

    async def read_replicas(self, query: ReplicaQuery) -> ReplicaSet:
        return ReplicaSet(replicas=[REPLICA])

    async def sweep(self) -> list[str]:
        swept = []
        for path in self.directory.glob("*.json"):
            expires = datetime.fromisoformat(json.loads(path.read_text())["expires_at"])
            if expires < datetime.now(UTC):
                path.unlink(missing_ok=True)
                swept.append(path.stem)
        return swept


def _now() -> datetime:
    return datetime.now(UTC)


class HealthyProbes:
    """Stand-in verification and Kafka activities that always see a healthy system.

    ``delay_s`` makes each check take that long, as a real one does (the kill tests need its
    phases to last long enough to be caught).
    """

    def __init__(self, delay_s: float = 0) -> None:
        self.delay_s = delay_s

    async def _work(self) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

    @activity.defn(name=names.CHECK_STEADY_STATE)
    async def check_steady_state(self, context: ProbeContext) -> Baseline:
        await self._work()
        return Baseline(taken_at=_now(), pollers=1, replicas=ReplicaSet(replicas=[REPLICA]))

    @activity.defn(name=names.PROBE_HOLD)
    async def probe_hold(self, probe: HoldProbeInput) -> HoldProbe:
        await self._work()
        return HoldProbe(at=_now(), canary_starts_ok=1, pollers=1)

    @activity.defn(name=names.AWAIT_RECOVERY)
    async def await_recovery(self, check: RecoveryInput) -> RecoveryCheck:
        await self._work()
        return RecoveryCheck(
            recovered=True, time_to_recovery_s=0.1, pollers=1, evidence=["stand-in: healthy"]
        )

    @activity.defn(name=names.CHECK_GOAL_RUNS)
    async def check_goal_runs(self, check: GoalRunsInput) -> GoalRunsCheck:
        await self._work()
        return GoalRunsCheck(checked=3, completed=3)

    @activity.defn(name=names.READ_KAFKA_POSITIONS)
    async def read_kafka_positions(self, kafka: KafkaTarget) -> KafkaPositions:
        return KafkaPositions(at=_now())

    @activity.defn(name=names.CHECK_KAFKA_EVENTS)
    async def check_kafka_events(self, check: KafkaCheckInput) -> KafkaOrderReport:
        await self._work()
        return KafkaOrderReport(
            events_read=10, window_events=10, keys=2, lag=LagReport(baseline_lag=0)
        )

    def all(self) -> list[Any]:
        return [
            self.check_steady_state,
            self.probe_hold,
            self.await_recovery,
            self.check_goal_runs,
            self.read_kafka_positions,
            self.check_kafka_events,
        ]
