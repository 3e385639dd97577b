"""cpu-stress, memory-stress and combined-stress: stress-ng inside a replica's cgroups.

stress-ng (Debian's package; `scripts/install-system-packages.sh`) is started detached, in
the target replica's memory and cpu cgroups (v1), so its load shares the replica's CPU quota
and its memory counts against the replica's memory limit (an OOM kill is then possible, as
in a pod). It gets ``--timeout`` = the seconds left until the fault's expiry, so it ends by
itself even if the chaos worker is gone. Memory is held, not churned (``--vm-keep --vm-hang
0``), as Chaos Mesh's memory stressor does; CPU load uses ``--cpu-load``.

Evidence: the stressor's pids alive, the CPU use of the replica's cgroup over a short window
and the CPU the stressor asked for (ran plus waited runnable: on a busy machine the stressor
gets less than it asks, as it would on a busy node), and the rise of the cgroup's memory
usage since injection. In effect: the stressor asks for at least half the requested load,
and the cgroup holds at least 80% of the requested memory more than before. Recovery kills
the stressor's process group.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from activities.faults.local.common import LocalEnv, mib, poll_until
from activities.faults.local.ledger import FaultEntry, TargetSnapshot
from activities.faults.local.replicas import ReplicaView
from faultproxy import procs
from models.faults import (
    CombinedStress,
    CpuStress,
    CpuStressor,
    FaultBase,
    MemoryStress,
    MemoryStressor,
)

CPU_WINDOW_S = 0.5
#: Share of the requested load / memory that counts as "in effect".
CPU_SHARE, MEMORY_SHARE = 0.5, 0.8
KILL_WAIT_S = 3.0
MB = 1024 * 1024


def stressors(spec: FaultBase) -> tuple[CpuStressor | None, MemoryStressor | None]:
    """The CPU and memory stressors of a stress fault."""
    cpu = spec.cpu if isinstance(spec, CpuStress | CombinedStress) else None
    memory = spec.memory if isinstance(spec, MemoryStress | CombinedStress) else None
    return cpu, memory


def stress_argv(spec: FaultBase, timeout_s: int) -> list[str]:
    """The stress-ng command line for a stress fault."""
    cpu, memory = stressors(spec)
    argv = ["stress-ng", "--timeout", f"{timeout_s}s"]
    if cpu is not None:
        argv += ["--cpu", str(cpu.workers), "--cpu-load", str(cpu.load_pct)]
    if memory is not None:
        argv += [
            "--vm",
            str(memory.workers),
            "--vm-bytes",
            f"{memory.size_mb}M",
            "--vm-keep",
            "--vm-hang",
            "0",
        ]
    return argv


def cgroups_of(target: TargetSnapshot) -> list[Path]:
    """The target's cgroup directories (memory first)."""
    return [Path(c) for c in (target.memory_cgroup, target.cpu_cgroup) if c]


class StressFaults:
    """The StressChaos actions, with stress-ng in the replicas' cgroups."""

    actions: tuple[str, ...] = ("cpu-stress", "memory-stress", "combined-stress")

    def __init__(self, env: LocalEnv) -> None:
        self.env = env

    def problems(self, spec: FaultBase, targets: list[ReplicaView]) -> list[str]:
        """stress-ng must be installed."""
        if shutil.which("stress-ng") is None:
            return ["stress-ng is not installed: run scripts/install-system-packages.sh"]
        return []

    async def apply(self, spec: FaultBase, entry: FaultEntry) -> None:
        """Start one stress-ng per target, inside its cgroups (helper i serves target i)."""
        timeout_s = max(1, math.ceil(entry.expires_at - time.time()))
        argv = stress_argv(spec, timeout_s)
        for i, target in enumerate(entry.targets):
            if i < len(entry.helper_pids) and procs.group_members(entry.helper_pids[i]):
                entry.evidence.append(f"{target.name}: stress-ng {entry.helper_pids[i]} adopted")
                continue
            cgroups = cgroups_of(target)
            log_file = self.env.log_dir / f"{entry.fault_id}-{target.name}-stress.log"
            pid = procs.spawn_detached(argv, cgroups, log_file)
            entry.helper_pids[i : i + 1] = [pid]
            self.env.save(entry)
            where = f"{target.name}'s cgroups" if cgroups else f"no cgroup of {target.name}"
            entry.evidence.append(f"stress-ng pid {pid} in {where}: {' '.join(argv[1:])}")

    async def check(self, spec: FaultBase, entry: FaultEntry) -> tuple[bool, list[str]]:
        """The stressors live, the cgroups' CPU use and memory rose."""
        cpu, memory = stressors(spec)
        ok, evidence = True, []
        for target, pid in zip(entry.targets, entry.helper_pids, strict=False):
            members = procs.group_members(pid)
            if not members:
                ok = False
                evidence.append(f"{target.name}: stress-ng {pid} is not running")
                continue
            line = f"{target.name}: stress-ng {pid} runs {len(members)} processes"
            if cpu is not None:
                used, demand = await self._cpu_cores(target, members)
                wanted = cpu.workers * cpu.load_pct / 100
                ok = ok and demand >= CPU_SHARE * wanted
                line += (
                    f"; CPU use of the cgroup {used:.2f} cores, stressor demand {demand:.2f} "
                    f"cores (asked {wanted:.2f})"
                )
            if memory is not None and target.memory_cgroup:
                now = procs.memory_usage(Path(target.memory_cgroup))
                # Chaos Mesh's size is the total the stressor holds, shared by its workers (as
                # stress-ng shares --vm-bytes among --vm workers), not a size per worker.
                rise, wanted_b = now - target.memory_bytes, memory.size_mb * MB
                ok = ok and rise >= MEMORY_SHARE * wanted_b
                line += (
                    f"; cgroup memory {mib(target.memory_bytes)} -> {mib(now)} "
                    f"(+{mib(rise)}, asked {mib(wanted_b)})"
                )
            evidence.append(line)
        return ok, evidence

    async def undo(self, entry: FaultEntry) -> tuple[bool, list[str]]:
        """Kill each stressor's process group and wait until it is gone."""
        evidence, all_gone = [], True
        for pid in entry.helper_pids:
            killed = procs.kill_group(pid)
            gone = await poll_until(
                _group_gone(pid), KILL_WAIT_S, self.env.beat, f"stress-ng {pid} gone"
            )
            all_gone = all_gone and gone
            state = "gone" if gone else "still exiting"
            evidence.append(
                f"stress-ng {pid}: killed {len(killed)} processes, {state}"
                if killed
                else f"stress-ng {pid}: had already ended"
            )
        for target in entry.targets:
            if target.memory_cgroup:
                now = procs.memory_usage(Path(target.memory_cgroup))
                evidence.append(f"{target.name}: cgroup memory now {mib(now)}")
        return all_gone, evidence

    async def _cpu_cores(self, target: TargetSnapshot, members: list[int]) -> tuple[float, float]:
        """Over a short window, in cores: CPU used by the target's cpu cgroup (or by the
        stressor without one), and CPU the stressor asked for (ran + waited for a core)."""
        cpu_cgroup = Path(target.cpu_cgroup) if target.cpu_cgroup else None
        pids = procs.cgroup_pids(cpu_cgroup) if cpu_cgroup else members
        used0, asked0 = procs.cpu_seconds(pids), procs.sched_seconds(members)
        started = time.monotonic()
        await asyncio.sleep(CPU_WINDOW_S)
        elapsed = time.monotonic() - started
        # A process that exited meanwhile drops out of the sums; never report negative use.
        used = max(procs.cpu_seconds(pids) - used0, 0.0) / elapsed
        asked = max(procs.sched_seconds(members) - asked0, 0.0) / elapsed
        return used, asked


def _group_gone(pgid: int) -> Callable[[], bool]:
    return lambda: not procs.group_members(pgid)
