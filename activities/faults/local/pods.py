"""pod-kill, pod-failure and container-kill on the stand-in's replica processes.

- pod-kill: SIGKILL the replica's process (SIGTERM first when a grace period is set); the
  supervisor restarts it, as a Deployment would. Confirmed by a new pid in ``state.json``.
- pod-failure: a hold file ``<its supervisor's state dir>/hold/<replica>`` with ``until`` = the
  fault's expiry; the supervisor stops the replica and keeps it down until the file is deleted
  or ``until`` passes (the dead-man switch is in the file). Recovery deletes it and waits for
  the restart.
- container-kill: a real OOM kill. The OOM helper (`oom`) runs inside the replica's memory
  cgroup and pushes it over its limit; the kernel kills the replica (exit 137) and the
  supervisor records ``OOMKilled``. Without a memory cgroup, SIGKILL, and the evidence says so.

Every kill targets a pid from ``state.json`` that is verified to be a replica process first, and
an injection retried after a kill sees the new pid and does not kill again.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from activities.faults.local.common import LocalEnv, iso, poll_until
from activities.faults.local.ledger import FaultEntry, TargetSnapshot
from activities.faults.local.replicas import ReplicaView, StandinUnavailable
from faultproxy import procs
from faultproxy.control import write_atomic
from models.faults import ContainerKill, FaultBase, PodKill

#: How long an injection waits for a restarting replica to be up before it acts.
RUNNING_WAIT_S = 10.0
#: How long a recovery waits for the replicas to be back.
BACK_WAIT_S = 20.0
OOM_TIMEOUT_S = 10.0
CONTAINERS = ("worker",)


class PodFaults:
    """The PodChaos actions on local replicas."""

    actions: tuple[str, ...] = ("pod-kill", "pod-failure", "container-kill")

    def __init__(self, env: LocalEnv) -> None:
        self.env = env

    def problems(self, spec: FaultBase, targets: list[ReplicaView]) -> list[str]:
        """container-kill names containers; a local pod has one (a worker's is 'worker')."""
        if isinstance(spec, ContainerKill):
            have = {c for t in targets for c in t.containers} or set(CONTAINERS)
            unknown = sorted(set(spec.container_names) - have)
            if unknown:
                return [
                    f"container(s) {', '.join(unknown)} not found: the targets run "
                    + ", ".join(f"'{c}'" for c in sorted(have))
                ]
        return []

    async def apply(self, spec: FaultBase, entry: FaultEntry) -> None:
        """Kill, hold down or OOM-kill each target."""
        if entry.action == "pod-failure":
            self._hold(entry)
            return
        for target in entry.targets:
            current = await self._running(entry, target)
            if current is None:
                entry.evidence.append(f"{target.name}: not running, nothing to kill")
            elif current.pid != target.pid:
                entry.evidence.append(
                    f"{target.name}: pid {target.pid} already replaced by {current.pid}"
                )
            elif isinstance(spec, PodKill):
                entry.evidence.append(await self._kill(target, spec.grace_period_s))
            else:
                entry.evidence.append(await self._oom_kill(entry, target))

    async def check(self, spec: FaultBase, entry: FaultEntry) -> tuple[bool, list[str]]:
        """Killed targets are gone (whether or not they came back); held targets are down.

        A kill is in effect once the process it hit is gone: coming back is the system's own
        recovery, which the recovery check judges, so a target that never returns is a
        recovery failure, not a fault that never took effect.
        """
        state = self.env.replicas()
        evidence, ok = [], True
        for target in entry.targets:
            now = state.replica(target.name)
            if now is None:
                ok = False
                evidence.append(f"{target.name}: not in the supervisor's state")
            elif entry.action == "pod-failure":
                down = now.pid is None
                # Asked only after the hold (a fault on Temporal held up the asking): it was
                # down if it was replaced, which a held replica is only once its hold ends.
                was_down = not down and now.pid != target.pid and now.restarts > target.restarts
                ok = ok and (down or was_down)
                if down:
                    evidence.append(
                        f"{target.name}: down (phase {now.phase}, held until "
                        f"{iso(now.held_until) if now.held_until else '-'}), was pid {target.pid}"
                    )
                elif was_down:
                    evidence.append(
                        f"{target.name}: was held down: pid {target.pid} -> {now.pid}, restarts "
                        f"{target.restarts} -> {now.restarts}, last exit {now.last_exit_reason}"
                    )
                else:
                    evidence.append(f"{target.name}: still running as pid {now.pid}")
            else:
                killed = now.restarts > target.restarts or now.pid != target.pid
                oom = (now.cgroup.oom_kills if now.cgroup else 0) - target.oom_kills
                ok = ok and killed
                evidence.append(
                    f"{target.name}: pid {target.pid} -> {now.pid}, restarts {target.restarts}"
                    f" -> {now.restarts}, last exit {now.last_exit_code} {now.last_exit_reason}"
                    + (f", oom_kill +{oom}" if entry.action == "container-kill" else "")
                )
                if entry.action == "container-kill" and target.memory_cgroup:
                    ok = ok and now.last_exit_reason == "OOMKilled"
        return ok, evidence

    async def undo(self, entry: FaultEntry) -> tuple[bool, list[str]]:
        """Lift holds, stop helpers, and report each target back (or not yet)."""
        removed = _remove_holds(entry.hold_files, entry.fault_id)
        evidence = [f"hold file {hold} removed" for hold in removed]
        for pgid in entry.helper_pids:
            if procs.kill_group(pgid):
                evidence.append(f"OOM helper {pgid} stopped")

        def all_back() -> bool:
            try:
                state = self.env.replicas()
            except StandinUnavailable:
                return False
            return all((r := state.replica(t.name)) and r.pid and r.ready for t in entry.targets)

        await poll_until(all_back, BACK_WAIT_S, self.env.beat, "replicas back and ready")
        try:
            state = self.env.replicas()
        except StandinUnavailable as e:
            return True, [*evidence, f"cannot tell whether the replicas are back: {e}"]
        for target in entry.targets:
            now = state.replica(target.name)
            if now is None or not now.pid:
                evidence.append(f"{target.name}: not back yet after {BACK_WAIT_S:.0f}s")
            else:
                ready = "ready" if now.ready else f"running but not ready after {BACK_WAIT_S:.0f}s"
                evidence.append(f"{target.name}: back as pid {now.pid}, {ready}")
        # The fault (hold file, OOM helper) is gone; replicas that do not come back are the
        # system's failure to recover, which the recovery check reports, not the backend.
        return True, evidence

    async def _running(self, entry: FaultEntry, target: TargetSnapshot) -> ReplicaView | None:
        """The target's current state once it has a pid (waits a little for a restart)."""
        await poll_until(
            lambda: bool((r := self.env.replica(target.name)) and r.pid),
            RUNNING_WAIT_S,
            self.env.beat,
            f"{target.name} running",
        )
        now = self.env.replica(target.name)
        if now is None or not now.pid:
            return None
        if target.pid is None:  # it was down when selected: this incarnation is the target
            target.pid, target.restarts = now.pid, now.restarts
            self.env.save(entry)
        return now

    def _hold(self, entry: FaultEntry) -> None:
        # Each target's own supervisor reads the hold: the stand-in's or an infrastructure one's.
        default = self.env.sut_state_dir
        paths = [Path(t.state_dir or default) / "hold" / t.name for t in entry.targets]
        # Recorded before written: a crash in between leaves nothing the janitor cannot find.
        entry.hold_files = sorted(set(entry.hold_files) | {str(p) for p in paths})
        self.env.save(entry)
        for target, path in zip(entry.targets, paths, strict=True):
            write_atomic(path, json.dumps({"until": entry.expires_at, "fault_id": entry.fault_id}))
            entry.evidence.append(f"{target.name}: held down until {iso(entry.expires_at)}")

    async def _kill(self, target: TargetSnapshot, grace_s: int) -> str:
        pid = target.pid
        assert pid is not None
        if not procs.is_replica(pid, target.pid_start_ticks):
            return f"{target.name}: pid {pid} is not a replica process any more; left alone"
        if grace_s:
            procs.kill(pid, signal.SIGTERM)
            if await poll_until(lambda: not procs.alive(pid), grace_s, self.env.beat, "exit"):
                return f"{target.name}: pid {pid} stopped by SIGTERM within {grace_s}s"
        procs.kill(pid, signal.SIGKILL)
        return f"{target.name}: SIGKILL sent to pid {pid}"

    async def _oom_kill(self, entry: FaultEntry, target: TargetSnapshot) -> str:
        pid = target.pid
        assert pid is not None
        if not procs.is_replica(pid, target.pid_start_ticks):
            return f"{target.name}: pid {pid} is not a replica process any more; left alone"
        if not target.memory_cgroup:
            procs.kill(pid, signal.SIGKILL)
            return f"{target.name}: no memory cgroup, so SIGKILL to pid {pid} (not a real OOM)"
        cgroup = Path(target.memory_cgroup)
        limit = procs.memory_limit(cgroup)
        log_file = self.env.log_dir / f"{entry.fault_id}-{target.name}-oom.log"
        log_file.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "faultproxy.oom",
            "--victim",
            str(pid),
            "--limit-bytes",
            str(limit),
            "--timeout-s",
            str(OOM_TIMEOUT_S),
        ]
        helper = procs.spawn_detached(argv, [cgroup], log_file)
        entry.helper_pids.append(helper)
        self.env.save(entry)
        await poll_until(
            lambda: procs.exit_status(helper) is not None or not procs.alive(helper),
            OOM_TIMEOUT_S + 5,
            self.env.beat,
            "OOM helper",
        )
        result = _last_json_line(log_file)
        if procs.alive(pid):
            procs.kill_group(helper)
            procs.kill(pid, signal.SIGKILL)
            return (
                f"{target.name}: the OOM helper did not get pid {pid} killed ({result}); "
                "SIGKILL instead (not a real OOM)"
            )
        return (
            f"{target.name}: memory cgroup pushed past its limit of {limit} bytes at "
            f"{iso(time.time())}; the kernel OOM-killed pid {pid} ({result})"
        )


def _remove_holds(paths: list[str], fault_id: str) -> list[str]:
    """Delete this fault's hold files (not another fault's that replaced one); those removed."""
    removed = []
    for name in paths:
        try:
            owner = json.loads(Path(name).read_text()).get("fault_id", fault_id)
        except FileNotFoundError:
            continue
        except ValueError:
            owner = fault_id  # torn or foreign: the supervisor ignores it soon anyway
        if owner == fault_id:
            Path(name).unlink(missing_ok=True)
            removed.append(name)
    return removed


def _last_json_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.startswith("{")]
    except FileNotFoundError:
        return "no helper output"
    return lines[-1] if lines else "no helper output"
