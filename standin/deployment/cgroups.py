"""cgroup v1 directories for replicas: create, limit, join, read OOM kills, remove.

Only this module touches ``/sys/fs/cgroup``. Controllers are found through ``/proc/self/mounts``
(v1 hierarchies of type ``cgroup``); one missing, or not writable, is reported as unavailable
rather than raised, so the supervisor can run without limits.

Replica cgroups nest under the supervisor's own cgroup of each hierarchy
(``<mount><own>/bytebot-standin/<instance>/<replica>``): whatever limits and accounting the
supervisor is under still cover its replicas, and two supervisors never share a directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

MEMORY = "memory"
CPU = "cpu"
BASE_NAME = "bytebot-standin"
CFS_PERIOD_US = 100_000


def mount_point(controller: str, mounts: Path = Path("/proc/self/mounts")) -> Path | None:
    """Where the v1 hierarchy holding ``controller`` is mounted, or None."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "cgroup" and controller in fields[3].split(","):
            return Path(fields[1])
    return None


def own_cgroup(controller: str, pid: int | str = "self") -> str:
    """This process's cgroup path (e.g. ``/`` or ``/a/b``) in the hierarchy of ``controller``."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return "/"


def root_dir(controller: str) -> Path | None:
    """``<mount><own cgroup>/bytebot-standin`` if that hierarchy is usable, else None."""
    mount = mount_point(controller)
    if mount is None or not os.access(mount, os.W_OK):
        return None
    return mount / own_cgroup(controller).lstrip("/") / BASE_NAME


def base_dir(controller: str, instance: str) -> Path | None:
    """``<mount><own cgroup>/bytebot-standin/<instance>`` if that hierarchy is usable, else None."""
    root = root_dir(controller)
    return root / instance if root else None


def create(path: Path) -> Path:
    """Create a cgroup (and its parents); fine if it exists."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def add_pid(path: Path, pid: int) -> None:
    """Move a process (all its threads) into the cgroup."""
    (path / "cgroup.procs").write_text(f"{pid}\n")


def pids(path: Path) -> list[int]:
    """The processes in this cgroup (not its children)."""
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def set_memory_limit(path: Path, limit_bytes: int) -> None:
    """Set ``memory.limit_in_bytes`` (and the memory+swap limit where it exists)."""
    (path / "memory.limit_in_bytes").write_text(f"{limit_bytes}\n")
    memsw = path / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        with contextlib.suppress(OSError):
            memsw.write_text(f"{limit_bytes}\n")


def set_cpu_limit(path: Path, cores: float) -> None:
    """Cap CPU time at ``cores`` CPUs with a CFS quota."""
    (path / "cpu.cfs_period_us").write_text(f"{CFS_PERIOD_US}\n")
    (path / "cpu.cfs_quota_us").write_text(f"{int(cores * CFS_PERIOD_US)}\n")


def oom_kill_count(path: Path) -> int:
    """How many processes the OOM killer has killed in this cgroup (``oom_kill``).

    Kernels without that line report ``memory.failcnt`` instead (limit hits, a weaker signal).
    """
    try:
        text = (path / "memory.oom_control").read_text()
    except FileNotFoundError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    try:
        return int((path / "memory.failcnt").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def remove(path: Path, timeout_s: float = 5.0) -> bool:
    """Kill what is left inside the cgroup, then remove it; True when it is gone.

    A cgroup cannot be removed while it holds a process: whatever is still in it at teardown
    (a replica's leftovers, a stressor moved in) is killed, as a pod's deletion would.
    """
    deadline = time.monotonic() + timeout_s
    while path.exists():
        for pid in pids(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            path.rmdir()
        except FileNotFoundError:
            break
        except OSError as e:  # EBUSY while the killed processes finish exiting
            if time.monotonic() > deadline:
                log.warning("cgroup_not_removed", path=str(path), error=str(e))
                return False
            time.sleep(0.05)
    return True


def remove_empty_parents(path: Path, stop_at: str = BASE_NAME) -> None:
    """Remove ``path`` and its parents up to and including ``stop_at`` while they are empty."""
    for directory in (path, *path.parents):
        try:
            directory.rmdir()
        except OSError:
            return  # not empty (another instance), or not there
        if directory.name == stop_at:
            return


def remove_stale_instances(controller: str) -> list[Path]:
    """Remove empty instance cgroups left by supervisors that died without cleaning up.

    Only instances named by a pid (the default) whose process is gone, and only when no process
    is left in them; returns what was removed.
    """
    root = root_dir(controller)
    removed: list[Path] = []
    if root is None or not root.is_dir():
        return removed
    for instance in root.iterdir():
        if not instance.is_dir() or not instance.name.isdigit():
            continue
        if Path(f"/proc/{instance.name}").exists():
            continue  # its supervisor (or a process reusing the pid) lives: leave it alone
        replicas = [d for d in instance.iterdir() if d.is_dir()]
        if any(pids(d) for d in replicas):
            continue
        for d in replicas:
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            instance.rmdir()
            removed.append(instance)
    return removed


@dataclass(frozen=True)
class ReplicaCgroups:
    """One replica's cgroups: memory (limit, OOM kills) and cpu, each optional."""

    memory: Path | None
    cpu: Path | None

    @classmethod
    def create(
        cls,
        instance: str,
        replica: str,
        *,
        memory_limit_bytes: int | None,
        cpu_limit_cores: float | None,
        controllers: tuple[str, ...] = (MEMORY, CPU),
    ) -> ReplicaCgroups:
        """Create the replica's cgroups where the controllers are usable; set the limits."""
        dirs: dict[str, Path | None] = {MEMORY: None, CPU: None}
        for controller in controllers:
            for stale in remove_stale_instances(controller):
                log.info("stale_cgroup_removed", path=str(stale))
            base = base_dir(controller, instance)
            try:
                dirs[controller] = create(base / replica) if base else None
            except OSError as e:
                log.warning("cgroup_unavailable", controller=controller, error=str(e))
                dirs[controller] = None
        memory, cpu = dirs[MEMORY], dirs[CPU]
        if memory is not None and memory_limit_bytes:
            set_memory_limit(memory, memory_limit_bytes)
        if cpu is not None and cpu_limit_cores:
            set_cpu_limit(cpu, cpu_limit_cores)
        return cls(memory=memory, cpu=cpu)

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a new replica process writes its pid to."""
        return [d / "cgroup.procs" for d in (self.memory, self.cpu) if d is not None]

    def oom_kills(self) -> int:
        """OOM kills so far in the memory cgroup (0 without one)."""
        return oom_kill_count(self.memory) if self.memory else 0

    def remove(self) -> None:
        """Kill leftovers, remove both cgroups and their empty parents."""
        for d in (self.memory, self.cpu):
            if d is not None and remove(d):
                remove_empty_parents(d.parent)
