"""The supervisor: what a Kubernetes Deployment does for ByteBot's workers, done locally.

Keeps ``replica-0 .. replica-N-1`` running, each with its own Temporal address and Kafka
bootstrap (so each replica's traffic can cross its own fault proxy), each in its own cgroups.
It reconciles every `TICK_S`: a replica that died is restarted after a short backoff; a replica
with a hold file in force is stopped and left down until the hold expires or is removed; the
state directory's ``state.json`` is rewritten whenever anything changed.

OOM kills: the memory cgroup's ``oom_kill`` count is sampled every tick. A replica that died of
SIGKILL while that count rose since shortly before it was last seen alive is "OOMKilled";
otherwise SIGKILL is "Killed". A stressor killed by the OOM killer within a tick or two of a
pod-kill could blur the two; nothing else can.

It never touches a process it did not start, except what is still inside its replicas' cgroups
at shutdown (see `cgroups.remove`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import Field, model_validator
from standin.cgroups import ReplicaCgroups
from standin.state import CgroupInfo, ReplicaPhase, ReplicaStatus, StateDir, SupervisorState

from standin import process
from standin.events import GOAL_TOPIC, STEP_TOPIC
from standin.models import DEFAULT_TASK_QUEUE, FaultyMode, Frozen

log = structlog.get_logger(__name__)

TICK_S = 0.1
MIB = 1024 * 1024


class SupervisorSettings(Frozen):
    """What the supervisor runs, and how."""

    state_dir: Path
    replicas: int = Field(default=3, ge=1, le=64)
    temporal_addresses: list[str] = Field(min_length=1, description="One, or one per replica.")
    kafka_bootstraps: list[str] = Field(min_length=1, description="One, or one per replica.")
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    goal_topic: str = GOAL_TOPIC
    step_topic: str = STEP_TOPIC
    memory_limit_mb: int = Field(default=512, ge=0, description="0: no memory limit.")
    cpu_limit_cores: float | None = Field(default=None, gt=0)
    use_cgroups: bool = True
    instance: str = Field(default_factory=lambda: str(os.getpid()))
    faulty: frozenset[FaultyMode] = frozenset()
    restart_backoff_s: float = Field(default=0.5, ge=0)
    stop_timeout_s: float = Field(default=5.0, gt=0, description="SIGTERM to SIGKILL.")
    graceful_shutdown_s: float = Field(default=2.0, ge=0, description="The replicas' worker grace.")
    log_format: str = "console"

    @model_validator(mode="after")
    def _one_or_n_addresses(self) -> SupervisorSettings:
        for flag, values in (
            ("temporal_addresses", self.temporal_addresses),
            ("kafka_bootstraps", self.kafka_bootstraps),
        ):
            if len(values) not in (1, self.replicas):
                raise ValueError(f"{flag}: give 1 or {self.replicas} values, not {len(values)}")
        return self

    def address(self, values: list[str], index: int) -> str:
        """The value for replica ``index`` from a one-or-N list."""
        return values[index] if len(values) > 1 else values[0]


@dataclass
class _Replica:
    """One replica's runtime record (mutable; published as `ReplicaStatus`)."""

    name: str
    index: int
    command: process.ReplicaCommand
    cgroups: ReplicaCgroups | None
    proc: asyncio.subprocess.Process | None = None
    stopper: asyncio.Task[int] | None = None
    started_at: float | None = None
    ready_at: float | None = None
    starts: int = 0
    last_exit_code: int | None = None
    last_exit_reason: str | None = None
    last_exit_at: float | None = None
    next_start_at: float = 0.0
    held_until: float | None = None
    oom_prev: int = 0
    oom_baseline: int = 0
    phase: ReplicaPhase = ReplicaPhase.RESTARTING

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Supervisor:
    """Runs and watches the replicas; `run` until told to stop."""

    def __init__(self, settings: SupervisorSettings) -> None:
        self.settings = settings
        self.dir = StateDir(settings.state_dir)
        self._replicas: list[_Replica] = []
        self._last_published: str | None = None
        self._shutting_down = False

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until ``stop`` is set, then stop every replica and remove the cgroups."""
        self.dir.create()
        self._replicas = [self._make_replica(i) for i in range(self.settings.replicas)]
        log.info(
            "supervisor_started",
            replicas=len(self._replicas),
            state_dir=str(self.dir.root),
            cgroups=self._cgroups_on(),
            faulty=sorted(self.settings.faulty),
        )
        try:
            while not stop.is_set():
                await self._reconcile()
                self._publish()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_S)
        finally:
            await self._shutdown()

    def _make_replica(self, index: int) -> _Replica:
        s = self.settings
        name = f"replica-{index}"
        cgroups = None
        if s.use_cgroups:
            cgroups = ReplicaCgroups.create(
                s.instance,
                name,
                memory_limit_bytes=s.memory_limit_mb * MIB or None,
                cpu_limit_cores=s.cpu_limit_cores,
            )
            if cgroups.memory is None and cgroups.cpu is None:
                cgroups = None
        command = process.ReplicaCommand(
            name=name,
            temporal_address=s.address(s.temporal_addresses, index),
            kafka_bootstrap=s.address(s.kafka_bootstraps, index),
            namespace=s.namespace,
            task_queue=s.task_queue,
            goal_topic=s.goal_topic,
            step_topic=s.step_topic,
            ready_file=self.dir.ready_file(name),
            graceful_shutdown_s=s.graceful_shutdown_s,
            faulty=tuple(sorted(m.value for m in s.faulty if m != FaultyMode.NO_RESTART)),
            log_format=s.log_format,
        )
        return _Replica(name=name, index=index, command=command, cgroups=cgroups)

    def _cgroups_on(self) -> bool:
        return any(r.cgroups is not None for r in self._replicas)

    async def _reconcile(self) -> None:
        now = time.time()
        for r in self._replicas:
            oom_now = r.cgroups.oom_kills() if r.cgroups else 0
            r.held_until = self.dir.held_until(r.name, now)
            if r.alive:
                r.oom_baseline, r.oom_prev = r.oom_prev, oom_now
                if r.held_until is not None and r.stopper is None:
                    log.info("replica_held", replica=r.name, until=r.held_until)
                    r.stopper = asyncio.create_task(self._terminate(r))
                self._update_ready(r, now)
                continue
            if r.proc is not None:
                self._record_exit(r, now, oom_now)
            if r.held_until is not None:
                r.phase = ReplicaPhase.HELD
            elif r.starts and FaultyMode.NO_RESTART in self.settings.faulty:
                r.phase = ReplicaPhase.DEAD
            elif now >= r.next_start_at:
                await self._start(r, now)
            else:
                r.phase = ReplicaPhase.RESTARTING

    async def _terminate(self, r: _Replica) -> int:
        assert r.proc is not None
        return await process.terminate(r.proc, self.settings.stop_timeout_s)

    def _update_ready(self, r: _Replica, now: float) -> None:
        assert r.proc is not None
        try:
            ready = int(r.command.ready_file.read_text().strip() or 0) == r.proc.pid
        except (FileNotFoundError, ValueError):
            ready = False
        if ready and r.ready_at is None:
            r.ready_at = now
            log.info(
                "replica_ready",
                replica=r.name,
                pid=r.proc.pid,
                after_s=round(now - (r.started_at or now), 3),
            )
        r.phase = ReplicaPhase.READY if ready else ReplicaPhase.STARTING

    def _record_exit(self, r: _Replica, now: float, oom_now: int) -> None:
        assert r.proc is not None
        code = process.exit_code(r.proc.returncode)
        r.last_exit_code = code
        r.last_exit_reason = process.exit_reason(code, oom_killed=oom_now > r.oom_baseline)
        r.last_exit_at = now
        r.next_start_at = now + self.settings.restart_backoff_s
        log.warning(
            "replica_exited",
            replica=r.name,
            pid=r.proc.pid,
            exit_code=code,
            reason=r.last_exit_reason,
            oom_kills=oom_now,
        )
        r.proc, r.stopper, r.started_at, r.ready_at = None, None, None, None
        r.command.ready_file.unlink(missing_ok=True)

    async def _start(self, r: _Replica, now: float) -> None:
        r.command.ready_file.unlink(missing_ok=True)
        procs_files = r.cgroups.procs_files if r.cgroups else []
        r.proc = await process.spawn(
            r.command, self.dir.log_file(r.name), procs_files, cwd=self.dir.root
        )
        r.started_at, r.ready_at = now, None
        r.starts += 1
        r.oom_prev = r.oom_baseline = r.cgroups.oom_kills() if r.cgroups else 0
        r.phase = ReplicaPhase.STARTING
        log.info("replica_started", replica=r.name, pid=r.proc.pid, restarts=r.starts - 1)

    def _status(self, r: _Replica) -> ReplicaStatus:
        s = self.settings
        cgroup = None
        if r.cgroups is not None:
            cgroup = CgroupInfo(
                memory=str(r.cgroups.memory) if r.cgroups.memory else None,
                cpu=str(r.cgroups.cpu) if r.cgroups.cpu else None,
                memory_limit_bytes=(s.memory_limit_mb * MIB or None) if r.cgroups.memory else None,
                cpu_limit_cores=s.cpu_limit_cores if r.cgroups.cpu else None,
                oom_kills=r.cgroups.oom_kills(),
            )
        return ReplicaStatus(
            name=r.name,
            index=r.index,
            phase=r.phase,
            pid=r.proc.pid if r.proc is not None and r.alive else None,
            ready=r.phase == ReplicaPhase.READY,
            started_at=r.started_at,
            ready_at=r.ready_at,
            restarts=max(r.starts - 1, 0),
            last_exit_code=r.last_exit_code,
            last_exit_reason=r.last_exit_reason,
            last_exit_at=r.last_exit_at,
            held_until=r.held_until,
            temporal_address=r.command.temporal_address,
            kafka_bootstrap=r.command.kafka_bootstrap,
            cgroup=cgroup,
            log_file=str(self.dir.log_file(r.name)),
        )

    def _publish(self) -> None:
        s = self.settings
        replicas = [self._status(r) for r in self._replicas]
        state = SupervisorState(
            instance=s.instance,
            supervisor_pid=os.getpid(),
            updated_at=0.0,
            namespace=s.namespace,
            task_queue=s.task_queue,
            faulty=sorted(m.value for m in s.faulty),
            cgroups=self._cgroups_on(),
            shutting_down=self._shutting_down,
            replicas=replicas,
        )
        fingerprint = state.model_dump_json()
        if fingerprint == self._last_published:
            return
        self._last_published = fingerprint
        self.dir.write_state(state.model_copy(update={"updated_at": time.time()}))

    async def _shutdown(self) -> None:
        self._shutting_down = True
        log.info("supervisor_stopping")
        live = [r for r in self._replicas if r.alive]
        codes = await asyncio.gather(
            *(r.stopper or self._terminate(r) for r in live), return_exceptions=True
        )
        now = time.time()
        for r, code in zip(live, codes, strict=True):
            log.info("replica_stopped", replica=r.name, exit_code=code)
        for r in self._replicas:
            if r.proc is not None:
                self._record_exit(r, now, r.cgroups.oom_kills() if r.cgroups else 0)
            r.phase = ReplicaPhase.DEAD
            if r.cgroups is not None:
                r.cgroups.remove()
        self._publish()
        log.info("supervisor_stopped")
