"""``python -m standin up`` processes for the deployment tests, and a memory hog to OOM them.

Starts the supervisor on its own lane (task queue and topics), reads its state, stops it and
checks that it left no replica process and no cgroup behind. `start_memory_hog` is a test-side
stand-in for a memory stressor. `Forwarder` is a test-side TCP relay that a test can cut, to
break a replica's connection to Temporal. Nothing here talks to Temporal or Kafka itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.kafka import KafkaBroker
from devstack.temporal import TemporalDevServer
from standin.deployment.state import StateDir, SupervisorState
from tests.support.standin_events import Lane

PROJECT = Path(__file__).resolve().parents[2]
PLAIN_WORKER = PROJECT / "tests" / "support" / "standin_plain_worker.py"
TEST_SCALE = "0.1"


@dataclass
class Standin:
    """A running ``python -m standin up`` and how to read its state."""

    proc: subprocess.Popen[bytes]
    dir: StateDir
    lane: Lane
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
    state_dir: Path,
    temporal: str | TemporalDevServer,
    kafka: KafkaBroker,
    lane: Lane,
    *extra: str,
    replicas: int = 2,
) -> Standin:
    """Start ``python -m standin up`` on the lane (its topics exist already)."""
    address = temporal if isinstance(temporal, str) else temporal.address
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
        address,
        "--temporal-address",
        address if isinstance(temporal, str) else temporal.address,
        "--kafka-bootstraps",
        kafka.bootstrap_chaos,
        "--kafka-bootstrap",
        kafka.bootstrap_direct,
        "--task-queue",
        lane.task_queue,
        "--goal-topic",
        lane.topics.goal,
        "--step-topic",
        lane.topics.step,
        "--audit-topic",
        lane.topics.audit,
        "--no-create-topics",
        "--memory-limit-mb",
        "256",
        "--consume-delay-ms",
        "2",
        "--time-scale",
        TEST_SCALE,
        *extra,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT)
    return Standin(proc, StateDir(state_dir), lane, log)


def plain_worker_args(marker_dir: Path, *flags: str) -> list[str]:
    """``--worker-command`` for the plain (non-stand-in) test worker."""
    command = f"{{python}} {PLAIN_WORKER} --name {{replica}} --marker-dir {marker_dir}"
    return ["--worker-command", " ".join([command, *flags]), "--no-load", "--no-consumer"]


def stop_standin(standin: Standin) -> None:
    """SIGTERM it and check it left no replica and no cgroup behind."""
    state = standin.dir.read_state()
    standin.proc.send_signal(signal.SIGTERM)
    assert standin.proc.wait(timeout=30) == 0, standin.log.read_text()[-3000:]
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
    prologue = f'echo $$ > {cgroup}/cgroup.procs && exec "$@"'
    return subprocess.Popen(["/bin/sh", "-c", prologue, "sh", sys.executable, "-c", script])


class Forwarder:
    """Test-side TCP relay to ``upstream``; `cut` closes every connection and refuses new ones."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.open = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> Forwarder:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    def cut(self) -> None:
        self.open = False
        for w in list(self._writers):
            w.close()

    def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
