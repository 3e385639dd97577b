"""Starting and stopping one replica process: its command line, environment, cgroups and exit.

The command is started directly (``exec``, no shell), so the pid the supervisor publishes is
the worker's own, as the SDK's ``<pid>@<hostname>`` identity shows it. Before the exec, the
child writes its pid into the replica's cgroups (so it is charged from its first allocation)
and asks for SIGKILL when the supervisor dies (``PR_SET_PDEATHSIG``), so even a hard-killed
supervisor leaves no replicas behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ReplicaCommand:
    """What to run for one replica: argv and the environment added to the supervisor's."""

    argv: list[str]
    env: Mapping[str, str] = field(default_factory=dict)


def render(template: list[str], values: Mapping[str, str]) -> list[str]:
    """Fill ``{replica}``, ``{temporal}``, ``{kafka}``, ``{http_port}``, ... into each argument.

    Raises:
        ValueError: an argument names a placeholder that does not exist.
    """
    try:
        return [arg.format_map(values) for arg in template]
    except (KeyError, IndexError) as e:
        raise ValueError(f"unknown placeholder {e} in {template}; known: {sorted(values)}") from e


def _child_setup(cgroup_procs: list[Path]) -> Callable[[], None]:
    """Runs in the child between fork and exec (async-signal-safe enough: writes and a prctl)."""

    def setup() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        pid = str(os.getpid()).encode()
        for procs in cgroup_procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    return setup


async def spawn(
    command: ReplicaCommand, log_file: Path, cgroup_procs: list[Path], cwd: Path | None = None
) -> asyncio.subprocess.Process:
    """Start a replica inside its cgroups, its output appended to ``log_file``."""
    log = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return await asyncio.create_subprocess_exec(
            *command.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **command.env},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_child_setup(cgroup_procs),
        )
    finally:
        os.close(log)  # the child holds its own copy


async def terminate(proc: asyncio.subprocess.Process, grace_s: float) -> int:
    """SIGTERM, then SIGKILL after ``grace_s`` (the pod's grace); return the exit code."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    return exit_code(proc.returncode)


def exit_code(returncode: int | None) -> int:
    """A shell-style exit code: ``128 + signal`` for a process killed by a signal."""
    if returncode is None:
        raise ValueError("the process has not exited")
    return 128 - returncode if returncode < 0 else returncode


def exit_reason(code: int, oom_killed: bool) -> str:
    """A pod-style reason: OOMKilled, Killed (other SIGKILL), Completed or Error."""
    if code == 128 + signal.SIGKILL:
        return "OOMKilled" if oom_killed else "Killed"
    return "Completed" if code == 0 else "Error"


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22).

    With the pid it names one process for good: a recycled pid has a later start time.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[19])
