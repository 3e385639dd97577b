"""A ``python -m standin up`` process for the supervisor's tests, and a memory hog to OOM it.

Starts the supervisor on its own task queue and topics, reads its state, stops it and checks
that it left no replica process and no cgroup behind. `start_memory_hog` is a test-side
stand-in for a memory stressor. Nothing here talks to Temporal or Kafka itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.kafka import KafkaBroker
from devstack.temporal import TemporalDevServer
from standin.state import StateDir, SupervisorState
from tests.support.standin_events import Topics, fresh_topics

PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class Standin:
    """A running ``python -m standin up`` and how to read its state."""

    proc: subprocess.Popen[bytes]
    dir: StateDir
    topics: Topics
    log: Path

    def state(self) -> SupervisorState:
        state = self.dir.read_state()
        assert state is not None, "no state.json yet"
        return state

    def all_ready(self) -> SupervisorState:
        state = self.state()
        assert all(r.ready for r in state.replicas), [(r.name, r.phase) for r in state.replicas]
        return state


def start_standin(
    state_dir: Path, temporal: TemporalDevServer, kafka: KafkaBroker, *extra: str, replicas: int = 2
) -> Standin:
    """Start ``python -m standin up`` on its own task queue and topics."""
    topics = fresh_topics()
    log = state_dir.with_suffix(".log")
    cmd = [
        sys.executable,
        "-m",
        "standin",
        "up",
        "--state-dir",
        str(state_dir),
        "--replicas",
        str(replicas),
        "--temporal-addresses",
        temporal.address,
        "--kafka-bootstraps",
        kafka.bootstrap_chaos,
        "--kafka-bootstrap",
        kafka.bootstrap_direct,
        "--task-queue",
        topics.task_queue,
        "--goal-topic",
        topics.goal,
        "--step-topic",
        topics.step,
        "--memory-limit-mb",
        "256",
        "--consume-delay-ms",
        "2",
        *extra,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT)
    return Standin(proc, StateDir(state_dir), topics, log)


def stop_standin(standin: Standin) -> None:
    """SIGTERM it and check it left no replica and no cgroup behind."""
    state = standin.dir.read_state()
    standin.proc.send_signal(signal.SIGTERM)
    assert standin.proc.wait(timeout=20) == 0, standin.log.read_text()[-3000:]
    for r in state.replicas if state else []:
        if r.pid is not None:
            with pytest.raises(ProcessLookupError):
                os.kill(r.pid, 0)
        if r.cgroup is not None:
            assert not Path(r.cgroup.memory or "/nonexistent").exists()


def cgroup_pids(cgroup: Path) -> list[int]:
    """The pids directly in a cgroup."""
    return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]


def start_memory_hog(cgroup: Path, victim: int, mib: int) -> subprocess.Popen[bytes]:
    """Make ``victim`` the OOM killer's choice, then fill ``cgroup`` with a ``mib`` MiB hog.

    The hog is a test-side stand-in for a memory stressor.
    """
    Path(f"/proc/{victim}/oom_score_adj").write_text("1000")
    script = f"import time; x = b'x' * ({mib} << 20); time.sleep(60)"
    return subprocess.Popen(
        [
            "/bin/sh",
            "-c",
            f'echo $$ > {cgroup}/cgroup.procs && exec "$@"',
            "sh",
            sys.executable,
            "-c",
            script,
        ]
    )
