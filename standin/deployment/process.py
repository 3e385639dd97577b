"""Starting and stopping one replica process: its command line, cgroups, log file and exit.

A replica is started through a tiny shell prologue that writes its own pid into the replica's
cgroups and then ``exec``s Python, so the replica is charged to its cgroups from its first
allocation and its pid is the one the supervisor sees. Where ``setpriv`` exists, the replica
also gets SIGKILL if the supervisor dies, so even a hard-killed supervisor leaves no replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

# Writes $$ (the shell's pid, which exec keeps) into each cgroup.procs named in $STANDIN_CGROUPS.
_PROLOGUE = 'for f in $STANDIN_CGROUPS; do echo $$ > "$f" || exit 125; done; exec "$@"'
EXIT_CGROUP_JOIN_FAILED = 125
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ReplicaCommand:
    """What to run for one replica."""

    name: str
    temporal_address: str
    kafka_bootstrap: str
    namespace: str
    task_queue: str
    goal_topic: str
    step_topic: str
    ready_file: Path
    faulty: tuple[str, ...] = ()
    graceful_shutdown_s: float = 2.0
    log_format: str = "console"
    python: str = sys.executable

    def argv(self) -> list[str]:
        """``python -m standin.replica ...`` for this replica."""
        argv = [
            self.python, "-m", "standin.replica", "--name", self.name,
            "--temporal-address", self.temporal_address, "--namespace", self.namespace,
            "--task-queue", self.task_queue, "--kafka-bootstrap", self.kafka_bootstrap,
            "--goal-topic", self.goal_topic, "--step-topic", self.step_topic,
            "--ready-file", str(self.ready_file),
            "--graceful-shutdown-s", str(self.graceful_shutdown_s),
            "--log-format", self.log_format,
        ]  # fmt: skip
        for mode in self.faulty:
            argv += ["--faulty", mode]
        return argv


async def spawn(
    command: ReplicaCommand, log_file: Path, cgroup_procs: list[Path], cwd: Path | None = None
) -> asyncio.subprocess.Process:
    """Start a replica inside its cgroups, its output appended to ``log_file``."""
    argv = command.argv()
    setpriv = shutil.which("setpriv")
    if setpriv:
        argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    # The replica imports `standin` from the same tree as the supervisor, installed or not.
    path = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "STANDIN_CGROUPS": " ".join(str(p) for p in cgroup_procs),
    }
    log = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", _PROLOGUE, "sh", *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(log)  # the child holds its own copy


async def terminate(proc: asyncio.subprocess.Process, timeout_s: float) -> int:
    """SIGTERM, then SIGKILL after ``timeout_s``; return the exit code (see `exit_code`)."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout_s)
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
