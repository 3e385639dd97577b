"""The supervisor: what a Kubernetes Deployment does for ByteBot's workers, done locally.

Keeps ``replica-0 .. replica-N-1`` of any worker command running, each with its own Temporal
address and Kafka bootstrap (so each replica's traffic can cross its own fault proxy), its own
HTTP and metrics ports, its own cgroups. Every `TICK_S` it reconciles: a replica that died is
restarted after an exponential back-off (CrashLoopBackOff, short and capped; reset once a
replica stayed ready for ``backoff_reset_s``); a replica with a hold file in force gets
SIGTERM, the pod's grace, SIGKILL, and stays down until the hold expires; readiness comes from
the replica's probe; ``state.json`` is rewritten whenever anything changed.

OOM kills: the memory cgroup's ``oom_kill`` count is sampled every tick. A replica that died of
SIGKILL while that count rose since shortly before it was last seen alive is "OOMKilled";
otherwise SIGKILL is "Killed".

It never touches a process it did not start, except what is still inside its replicas' cgroups
at shutdown (see `cgroups.remove`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass

import structlog

from standin.deployment import process
from standin.deployment.cgroups import ReplicaCgroups
from standin.deployment.probes import ExecProbe, HttpProbe, Probe, Running, TcpProbe
from standin.deployment.settings import DEFAULT_COMMAND as DEFAULT_COMMAND
from standin.deployment.settings import DEFAULT_READY_URL as DEFAULT_READY_URL
from standin.deployment.settings import DeploymentSettings as DeploymentSettings
from standin.deployment.state import (
    CgroupInfo,
    ReplicaPhase,
    ReplicaStatus,
    StateDir,
    SupervisorState,
)

log = structlog.get_logger(__name__)

TICK_S = 0.1
MIB = 1024 * 1024

_HANDED_OUT: set[int] = set()


def _free_port() -> int:
    """A loopback port free now and not handed to another replica of this supervisor.

    The kernel may hand out a just-closed ephemeral port again at once: two replicas then got
    the same HTTP port, one crashed on it, and the other's server answered its probe.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class _Replica:
    """One replica's runtime record (mutable; published as `ReplicaStatus`)."""

    name: str
    index: int
    values: dict[str, str]
    command: process.ReplicaCommand
    probe: Probe
    cgroups: ReplicaCgroups | None
    proc: asyncio.subprocess.Process | None = None
    prober: asyncio.Task[None] | None = None
    stopper: asyncio.Task[int] | None = None
    pid_start_ticks: int | None = None
    started_at: float | None = None
    ready: bool = False
    ready_at: float | None = None
    ready_since: float | None = None
    starts: int = 0
    crashes: int = 0
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

    def __init__(self, settings: DeploymentSettings) -> None:
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
            command=self.settings.worker_command,
            probe=self.settings.probe_text(),
            cgroups=self._cgroups_on(),
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
        name = f"{s.name_prefix}-{index}"
        values = {
            "replica": name,
            "temporal": s.pick(s.temporal_addresses, index),
            "kafka": s.pick(s.kafka_bootstraps, index),
            "http_port": str(_free_port()),
            "metrics_port": str(_free_port()),
            "namespace": s.namespace,
            "task_queue": s.task_queue,
            "python": sys.executable,
        }
        worker_env = {
            "TEMPORAL_ADDRESS": values["temporal"],
            "TEMPORAL_NAMESPACE": s.namespace,
            "TEMPORAL_TASK_QUEUE": s.task_queue,
            "KAFKA_BROKERS": values["kafka"],
            "HTTP_PORT": values["http_port"],
            "METRICS_PORT": values["metrics_port"],
            "REPLICA_NAME": name,
        }
        per_replica = {k: s.pick(v, index) for k, v in s.replica_env.items()}
        env = {**(worker_env if s.worker_env else {}), **s.env, **per_replica}
        argv = process.render(shlex.split(s.worker_command), values)
        probe: Probe = Running()
        if s.ready_url:
            probe = HttpProbe(s.ready_url.format_map(values))
        elif s.ready_exec:
            probe = ExecProbe(process.render(shlex.split(s.ready_exec), values))
        elif s.ready_tcp:
            host, _, port = s.ready_tcp.format_map(values).rpartition(":")
            probe = TcpProbe(host or "127.0.0.1", int(port))
        cgroups = None
        if s.use_cgroups:
            cgroups = ReplicaCgroups.create(
                s.instance,
                name,
                memory_limit_bytes=s.memory_limit_mb * MIB or None,
                cpu_limit_cores=s.cpu_limit_cores,
                controllers=("memory", "cpu") if s.cpu_cgroup else ("memory",),
            )
            if cgroups.memory is None and cgroups.cpu is None:
                cgroups = None
        command = process.ReplicaCommand(argv=argv, env=env)
        return _Replica(name, index, values, command, probe, cgroups)

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
                r.phase = ReplicaPhase.READY if r.ready else ReplicaPhase.STARTING
                continue
            if r.proc is not None:
                self._record_exit(r, now, oom_now)
            if r.held_until is not None:
                r.phase = ReplicaPhase.HELD
            elif r.starts and not self.settings.restart:
                r.phase = ReplicaPhase.DEAD
            elif now >= r.next_start_at:
                await self._start(r, now)
            else:
                r.phase = ReplicaPhase.RESTARTING

    async def _terminate(self, r: _Replica) -> int:
        assert r.proc is not None
        return await process.terminate(r.proc, self.settings.termination_grace_s)

    async def _probe_loop(self, r: _Replica, proc: asyncio.subprocess.Process) -> None:
        """Probe one incarnation until it exits; keep ``r.ready`` to the probe's verdict."""
        s = self.settings
        failures = 0
        while proc.returncode is None:
            ok = await r.probe.check(s.probe_timeout_s)
            if proc.returncode is not None or r.proc is not proc:
                return
            failures = 0 if ok else failures + 1
            now = time.time()
            if ok and not r.ready:
                r.ready, r.ready_since = True, now
                r.ready_at = r.ready_at or now
                log.info(
                    "replica_ready",
                    replica=r.name,
                    pid=proc.pid,
                    after_s=round(now - (r.started_at or now), 3),
                )
            elif failures >= s.failure_threshold and r.ready:
                r.ready, r.ready_since = False, None
                log.warning("replica_unready", replica=r.name, pid=proc.pid)
            if r.ready and r.ready_since and now - r.ready_since >= s.backoff_reset_s:
                r.crashes = 0  # it ran well: the next crash starts the back-off afresh
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), s.probe_period_s)

    def _record_exit(self, r: _Replica, now: float, oom_now: int, crashed: bool = True) -> None:
        assert r.proc is not None
        s = self.settings
        code = process.exit_code(r.proc.returncode)
        r.last_exit_code = code
        r.last_exit_reason = process.exit_reason(code, oom_killed=oom_now > r.oom_baseline)
        r.last_exit_at = now
        if crashed and r.stopper is None:  # a crash, not a hold: back off exponentially
            r.crashes += 1
            delay = min(s.backoff_max_s, s.backoff_initial_s * 2 ** (r.crashes - 1))
            r.next_start_at = now + delay
        log.warning(
            "replica_exited",
            replica=r.name,
            pid=r.proc.pid,
            exit_code=code,
            reason=r.last_exit_reason,
            oom_kills=oom_now,
        )
        if r.prober is not None:
            r.prober.cancel()
        r.proc, r.stopper, r.prober, r.started_at = None, None, None, None
        r.ready, r.ready_since, r.pid_start_ticks = False, None, None

    async def _start(self, r: _Replica, now: float) -> None:
        procs_files = r.cgroups.procs_files if r.cgroups else []
        r.proc = await process.spawn(
            r.command, self.dir.log_file(r.name), procs_files, cwd=self.dir.root
        )
        r.pid_start_ticks = process.start_ticks(r.proc.pid)
        r.started_at, r.ready, r.ready_since = now, False, None
        r.starts += 1
        r.oom_prev = r.oom_baseline = r.cgroups.oom_kills() if r.cgroups else 0
        r.phase = ReplicaPhase.STARTING
        r.prober = asyncio.create_task(self._probe_loop(r, r.proc))
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
        pid = r.proc.pid if r.proc is not None and r.alive else None
        return ReplicaStatus(
            name=r.name,
            index=r.index,
            phase=r.phase,
            pid=pid,
            pid_start_ticks=r.pid_start_ticks if pid else None,
            identity_hint=f"{pid}@{socket.gethostname()}" if pid else None,
            http_port=int(r.values["http_port"]),
            metrics_port=int(r.values["metrics_port"]),
            command=r.command.argv,
            ready=r.alive and r.ready and r.phase == ReplicaPhase.READY,
            started_at=r.started_at,
            ready_at=r.ready_at,
            ready_since=r.ready_since,
            next_start_at=r.next_start_at if r.phase == ReplicaPhase.RESTARTING else None,
            consecutive_crashes=r.crashes,
            restarts=max(r.starts - 1, 0),
            last_exit_code=r.last_exit_code,
            last_exit_reason=r.last_exit_reason,
            last_exit_at=r.last_exit_at,
            held_until=r.held_until,
            temporal_address=r.values["temporal"],
            kafka_bootstrap=r.values["kafka"],
            cgroup=cgroup,
            log_file=str(self.dir.log_file(r.name)),
        )

    def _publish(self) -> None:
        s = self.settings
        state = SupervisorState(
            instance=s.instance,
            supervisor_pid=os.getpid(),
            updated_at=0.0,
            namespace=s.namespace,
            task_queue=s.task_queue,
            faulty=sorted(s.faulty),
            termination_grace_s=s.termination_grace_s,
            readiness_probe=s.probe_text(),
            cgroups=self._cgroups_on(),
            shutting_down=self._shutting_down,
            replicas=[self._status(r) for r in self._replicas],
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
                oom_now = r.cgroups.oom_kills() if r.cgroups else 0
                self._record_exit(r, now, oom_now, crashed=False)
            r.phase = ReplicaPhase.DEAD
            if r.cgroups is not None:
                r.cgroups.remove()
        self._publish()
        log.info("supervisor_stopped")
