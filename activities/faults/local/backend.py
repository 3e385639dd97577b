"""LocalBackend: the fault backend for one Linux machine, against the ByteBot stand-in.

Implements `activities.faults.backend.FaultBackend` with the same semantics as Chaos Mesh, as far as
one machine allows (pods are the stand-in supervisor's replica processes):

- selection: `replicas.select` (namespace and labels, then mode, seeded with the fault id)
  among the worker replicas and the supervised infrastructure (the Temporal frontend in
  namespace ``temporal``, the Kafka broker in ``kafka``: `replicas.read_targets`);
- state: one ledger entry per fault in ``<state>/faults/`` (`ledger`): inject adopts an
  existing entry, recover takes a missing one as done, and `sweep` (the janitor, run at worker
  start) recovers entries whose expiry passed;
- effects: `pods` (pod-kill, pod-failure, container-kill), `network` (delay, loss, partition,
  bandwidth, dns-error via the fault proxy), `stress` (cpu, memory, combined via stress-ng).

Every fault carries its expiry into the system (hold file, proxy rule, stress-ng timeout), so
it ends on time even if the chaos worker dies. This module decides and records; the family
modules act. It never raises anything but `FaultRejected`, `NotYet` or a retryable
`ApplicationError` out of its public methods' own checks.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.faults.backend import FaultRejected, NotYet
from activities.faults.local.common import Family, LocalEnv
from activities.faults.local.ledger import FaultEntry, Ledger, TargetSnapshot
from activities.faults.local.network import NetworkFaults
from activities.faults.local.pods import PodFaults
from activities.faults.local.replicas import (
    ReplicaView,
    StandinUnavailable,
    matches,
    no_match_reason,
    select,
)
from activities.faults.local.stress import StressFaults
from activities.faults.preview import preview_problems
from faultproxy import procs
from faultproxy.control import read_rules, remove_rule
from models.fences import namespace_refusal
from models.ledger import (
    FaultRequest,
    Injection,
    Recovery,
    ReplicaQuery,
    ReplicaSet,
    TargetPreview,
    TargetRef,
)

log = structlog.get_logger(__name__)


def _beat(detail: str) -> None:
    """Heartbeat when running as an activity (also how cancellation is heard)."""
    if activity.in_activity():
        activity.heartbeat(detail)


def epoch(moment: datetime) -> float:
    """A datetime as epoch seconds; a naive one is taken as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def snapshot(replica: ReplicaView) -> TargetSnapshot:
    """A selected replica as it is now: pid, restarts, cgroups and their baselines."""
    cgroup = replica.cgroup
    memory = cgroup.memory if cgroup else None
    return TargetSnapshot(
        name=replica.name,
        namespace=replica.namespace,
        state_dir=replica.state_dir,
        pid=replica.pid,
        pid_start_ticks=replica.pid_start_ticks,
        restarts=replica.restarts,
        memory_cgroup=memory,
        cpu_cgroup=cgroup.cpu if cgroup else None,
        memory_bytes=procs.memory_usage(Path(memory)) if memory else 0,
        oom_kills=cgroup.oom_kills if cgroup else 0,
    )


class LocalBackend:
    """Faults on the stand-in's replicas, their traffic and their cgroups."""

    name = "local"

    def __init__(
        self,
        state_dir: Path,
        sut_state_dir: Path,
        proxy_control_dir: Path,
        targets_dir: Path | None = None,
    ) -> None:
        """Build the backend.

        Args:
            state_dir: This backend's own state (ledger entries, helper logs); kept across
                worker restarts so the janitor finds what an earlier worker injected.
            sut_state_dir: The stand-in supervisor's ``--state-dir`` (``state.json``, ``hold/``).
            proxy_control_dir: The fault proxy's control directory (``rules/``, ``status.json``).
            targets_dir: Where supervised infrastructure publishes itself (``<name>/target.json``
                and ``state.json``: the Temporal frontend, the Kafka broker); None: only workers.
        """
        self.ledger = Ledger(state_dir)
        self.sut_state_dir = sut_state_dir
        self.env = LocalEnv(
            state_dir=state_dir,
            sut_state_dir=sut_state_dir,
            proxy_control_dir=proxy_control_dir,
            save=self.ledger.save,
            beat=_beat,
            targets_dir=targets_dir,
        )
        families: list[Family] = [
            PodFaults(self.env),
            NetworkFaults(self.env),
            StressFaults(self.env),
        ]
        self._families = {action: f for f in families for action in f.actions}
        self._locks: dict[str, asyncio.Lock] = {}

    async def preview(self, request: FaultRequest) -> TargetPreview:
        """The replicas the fault would hit and whether it can be injected; changes nothing."""
        spec, problems = request.fault, []
        chosen: list[ReplicaView] = []
        if (
            refusal := namespace_refusal(spec.namespaces(), request.allowed_namespaces)
        ) is not None:
            problems.append(refusal)
        try:
            replicas = self.env.replicas().replicas
        except StandinUnavailable as e:
            problems.append(str(e))
        else:
            chosen = select(spec.target, replicas, request.fault_id)
            if not chosen:
                problems.append(no_match_reason(spec.target, replicas))
            matched = sum(matches(spec.target, r) for r in replicas)
            problems += [p for p in preview_problems(spec, matched) if p not in problems]
        problems += self._family(spec.action).problems(spec, chosen)
        return TargetPreview(
            fault_id=request.fault_id,
            label=spec.label,
            action=spec.action,
            selector=spec.target.describe(),
            targets=[r.ref() for r in chosen],
            accepted=not problems,
            problems=problems,
        )

    async def inject(self, request: FaultRequest) -> Injection:
        """Select, record, apply; a retry adopts what an earlier attempt did."""
        async with self._lock(request.fault_id):
            entry = self._load(request.fault_id)
            if entry is not None and entry.phase != "injecting":
                note = "adopted" if entry.phase == "injected" else "already recovered"
                return Injection(
                    targets=self._refs(entry), evidence=[*entry.evidence, note], in_effect=False
                )
            if entry is None:
                entry = self._plan(request)
            family = self._family(request.fault.action)
            try:
                await family.apply(request.fault, entry)
            except StandinUnavailable as e:  # the entry keeps what was done; a retry resumes
                raise ApplicationError(str(e), type="StandinUnavailable") from e
            entry.phase = "injected"
            self.ledger.save(entry)
            log.info(
                "local_fault_applied",
                fault_id=entry.fault_id,
                action=entry.action,
                targets=[t.name for t in entry.targets],
            )
            return Injection(
                targets=self._refs(entry), evidence=list(entry.evidence), in_effect=False
            )

    async def confirm(self, request: FaultRequest) -> Injection:
        """Evidence that the fault is in effect; `NotYet` while it is not."""
        entry = self._load(request.fault_id)
        if entry is None or entry.phase == "injecting":
            raise NotYet(f"fault {request.fault_id} is not injected yet")
        if entry.phase == "recovered":
            raise FaultRejected(f"fault {request.fault_id} was already recovered")
        try:
            ok, evidence = await self._family(entry.action).check(request.fault, entry)
        except StandinUnavailable as e:
            raise NotYet(str(e)) from e
        if not ok:
            raise NotYet("not in effect yet: " + "; ".join(evidence))
        return Injection(targets=self._refs(entry, current=True), evidence=evidence, in_effect=True)

    async def recover(self, request: FaultRequest) -> Recovery:
        """End the fault; missing or already recovered counts as done."""
        async with self._lock(request.fault_id):
            entry = self._load(request.fault_id)
            if entry is None:
                return Recovery(recovered=True, evidence=["nothing was injected for this fault"])
            if entry.phase == "recovered":
                return Recovery(recovered=True, evidence=entry.recovery_evidence)
            done, evidence = await self._undo(entry)
            return Recovery(recovered=done, evidence=evidence)

    async def read_replicas(self, query: ReplicaQuery) -> ReplicaSet:
        """Every replica the query's selector matches (not a selection)."""
        try:
            replicas = self.env.replicas().replicas
        except StandinUnavailable as e:
            raise ApplicationError(str(e), type="StandinUnavailable") from e
        hit = sorted((r for r in replicas if matches(query.target, r)), key=lambda r: r.name)
        return ReplicaSet(replicas=[r.ref() for r in hit])

    async def sweep(self) -> list[str]:
        """Recover every fault whose expiry passed (the janitor); the fault ids swept."""
        swept = []
        for entry in self.ledger.all():
            if entry.phase != "recovered" and entry.expired():
                try:
                    async with self._lock(entry.fault_id):
                        await self._undo(entry)
                except Exception as e:  # one stuck entry must not keep the worker from starting
                    log.warning("local_fault_sweep_failed", fault_id=entry.fault_id, error=repr(e))
                    continue
                swept.append(entry.fault_id)
        rules, _ = read_rules(self.env.proxy_control_dir)
        for rule in rules:
            if not rule.live():
                remove_rule(self.env.proxy_control_dir, rule.fault_id)
        if swept:
            log.info("local_faults_swept", fault_ids=swept)
        return swept

    def _plan(self, request: FaultRequest) -> FaultEntry:
        """Check, select and record a new fault (phase ``injecting``)."""
        spec = request.fault
        if (
            refusal := namespace_refusal(spec.namespaces(), request.allowed_namespaces)
        ) is not None:
            raise FaultRejected(refusal)
        expires_at = epoch(request.expires_at)
        if expires_at <= time.time():
            raise FaultRejected(f"the fault's expiry {request.expires_at} has already passed")
        try:
            replicas = self.env.replicas().replicas
        except StandinUnavailable as e:
            raise ApplicationError(str(e), type="StandinUnavailable") from e
        chosen = select(spec.target, replicas, request.fault_id)
        if not chosen:
            raise FaultRejected(no_match_reason(spec.target, replicas))
        if problems := self._family(spec.action).problems(spec, chosen):
            raise FaultRejected("; ".join(problems))
        entry = FaultEntry(
            fault_id=request.fault_id,
            scenario_id=request.scenario_id,
            action=spec.action,
            expires_at=expires_at,
            targets=[snapshot(r) for r in chosen],
            evidence=[f"selected {', '.join(r.name for r in chosen)} by {spec.target.describe()}"],
        )
        return self.ledger.save(entry)

    async def _undo(self, entry: FaultEntry) -> tuple[bool, list[str]]:
        done, evidence = await self._family(entry.action).undo(entry)
        if not done:  # the entry stays open: a retry (or the janitor) undoes it again
            log.warning("local_fault_lingers", fault_id=entry.fault_id, evidence=evidence)
            return False, evidence
        entry.phase, entry.recovered_at, entry.recovery_evidence = (
            "recovered",
            time.time(),
            evidence,
        )
        self.ledger.save(entry)
        log.info("local_fault_undone", fault_id=entry.fault_id, action=entry.action)
        return True, evidence

    def _family(self, action: str) -> Family:
        try:
            return self._families[action]
        except KeyError:
            raise FaultRejected(f"the local backend cannot inject '{action}'") from None

    def _load(self, fault_id: str) -> FaultEntry | None:
        try:
            return self.ledger.load(fault_id)
        except ValueError as e:
            raise FaultRejected(str(e)) from e

    def _lock(self, fault_id: str) -> asyncio.Lock:
        return self._locks.setdefault(fault_id, asyncio.Lock())

    def _refs(self, entry: FaultEntry, current: bool = False) -> list[TargetRef]:
        """The entry's targets: as injected, or (``current``) as the supervisor sees them now."""
        state = None
        if current:
            try:
                state = self.env.replicas()
            except StandinUnavailable:
                state = None
        refs = []
        for t in entry.targets:
            now = state.replica(t.name) if state else None
            refs.append(
                now.ref()
                if now
                else TargetRef(
                    namespace=t.namespace,
                    name=t.name,
                    uid=str(t.pid or ""),
                    ready=None,
                    restarts=t.restarts,
                    last_exit_reason=None,
                )
            )
        return refs
