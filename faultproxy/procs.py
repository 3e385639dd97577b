"""Processes and cgroup v1 files, as the local backend needs them: read, signal, spawn.

Owns every read of ``/proc`` and of a replica's cgroup files, every signal the backend sends,
and the detached helper processes it starts (stress-ng, the OOM helper). Helpers run in their
own session (process group = their pid), so they outlive the chaos worker and end by their own
timeout; they are put into cgroups by a shell prologue *before* they exec, so everything they
allocate is charged to the replica (cgroup v1 does not move charges with a process).

It never signals a process it cannot identify: a replica is its pid *and* that process's start
time (as the supervisor published them), so a recycled pid is left alone, whatever command the
replica runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Writes $$ (kept by exec) into each cgroup.procs in $CHAOS_CGROUPS, then execs the helper.
_PROLOGUE = 'for f in $CHAOS_CGROUPS; do echo $$ > "$f" || exit 125; done; exec "$@"'
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_EXITED: dict[int, int] = {}


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int | None) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    if not pid:
        return False
    reap()
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    """The process's command line, space-separated ('' if gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def is_replica(pid: int | None, ticks: int | None) -> bool:
    """Whether ``pid`` is alive and still the process the supervisor started (same start time).

    Without a published start time only liveness can be checked.
    """
    if not alive(pid):
        return False
    return ticks is None or start_ticks(pid or 0) == ticks


def kill(pid: int, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig``; False if the process was already gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def kill_group(pgid: int) -> list[int]:
    """SIGKILL a helper's whole process group; the members that were alive."""
    members = group_members(pgid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    reap()
    return members


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def sched_seconds(pids: list[int]) -> float:
    """Time these processes' main threads ran plus waited runnable for a CPU, in seconds.

    Over a window this is the CPU they *asked* for, which, unlike CPU time, does not shrink
    when other work on the machine competes for the cores (``/proc/<pid>/schedstat``).
    """
    total = 0
    for pid in pids:
        try:
            run_ns, wait_ns, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        total += int(run_ns) + int(wait_ns)
    return total / 1e9


def cgroup_pids(cgroup: Path) -> list[int]:
    """Processes in a cgroup (v1 ``cgroup.procs``)."""
    try:
        return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    except (FileNotFoundError, ValueError):
        return []


def memory_usage(cgroup: Path) -> int:
    """``memory.usage_in_bytes`` of a v1 memory cgroup (0 if unreadable)."""
    try:
        return int((cgroup / "memory.usage_in_bytes").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def memory_limit(cgroup: Path) -> int:
    """``memory.limit_in_bytes`` of a v1 memory cgroup (0 if unreadable)."""
    try:
        return int((cgroup / "memory.limit_in_bytes").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def oom_kills(cgroup: Path) -> int:
    """The ``oom_kill`` count of a v1 memory cgroup (0 if the kernel has none)."""
    try:
        text = (cgroup / "memory.oom_control").read_text()
    except FileNotFoundError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def oom_score_adj(pid: int) -> int | None:
    """A process's ``oom_score_adj`` (None if gone)."""
    try:
        return int(Path(f"/proc/{pid}/oom_score_adj").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def set_oom_score_adj(pid: int, value: int) -> bool:
    """Set ``oom_score_adj`` (-1000 never chosen .. 1000 chosen first); False if gone."""
    try:
        Path(f"/proc/{pid}/oom_score_adj").write_text(f"{value}\n")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return True


def spawn_detached(argv: list[str], cgroups: list[Path], log_file: Path) -> int:
    """Start ``argv`` in its own session inside ``cgroups``; its pid (also its pgid).

    The child is not waited for here: `reap` collects it if this process is still around when
    it ends, and otherwise init does.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    procs = " ".join(str(c / "cgroup.procs") for c in cgroups)
    with open(log_file, "ab") as log:
        child = subprocess.Popen(
            ["/bin/sh", "-c", _PROLOGUE, "sh", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CHAOS_CGROUPS": procs},
            start_new_session=True,
        )
    _CHILDREN[child.pid] = child
    return child.pid


def exit_status(pid: int) -> int | None:
    """The exit status of a helper this process started, once it ended (else None)."""
    reap()
    return _EXITED.get(pid)


def reap() -> None:
    """Collect helpers of ours that ended, so they do not linger as zombies."""
    for pid, child in list(_CHILDREN.items()):
        if (code := child.poll()) is not None:
            _EXITED[pid] = code
            del _CHILDREN[pid]
