"""A whole local chaos setup of a test's own, with a chaos worker process it can SIGKILL.

`LocalChaosStack` starts a Temporal dev server of its own (fixed port, persistent database, so
it can be restarted under running work), Kafka, the stand-in behind the fault proxy with its
load generator (devstack.sut), and `python worker.py` with the local backend, as an operator
runs it (`ChaosWorkerProcess`). `leftovers` lists what a fault could leave behind: proxy rules,
hold files, live stress-ng helpers, unrecovered ledger entries, open canaries.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.faults.local.ledger import FaultEntry
from devstack.kafka import KafkaBroker
from devstack.ports import free_port
from devstack.sut import LocalSut, SutPorts
from devstack.temporal import BYTEBOT_NAMESPACE, TemporalDevServer
from faultproxy import procs
from faultproxy.control import read_rules, rules_dir
from standin.deployment.state import StateDir
from workflows import visibility

REPO = Path(__file__).resolve().parent.parent.parent
TOPICS = ("bytebot.goal.events", "bytebot.step.events", "bytebot.audit.log")
CANARY_PREFIX = "bytebot-chaos-canary"


class ChaosWorkerProcess:
    """A chaos worker (`python worker.py` by default) in its own process group.

    `start` returns once its log shows ``ready_mark``; `kill` is a SIGKILL.
    """

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        argv: list[str] | None = None,
        ready_mark: str = "worker_started",
    ) -> None:
        self.env = env
        self.log = log
        self.argv = argv or [sys.executable, str(REPO / "worker.py")]
        self.ready_mark = ready_mark
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout_s: float = 60) -> None:
        """Start a worker and return once it polls (its `worker_started` log line)."""
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        mark = f'"run": {self.starts}'
        with open(self.log, "ab") as out:
            out.write(f"--- start {mark}\n".encode())
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.log.read_text(errors="replace")
            if self.ready_mark in text.rsplit(f"--- start {mark}", 1)[-1]:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the chaos worker did not start: {text[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, running activities die with it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class LocalChaosStack:
    """Temporal (own, persistent), Kafka, the stand-in with load, and a chaos worker process."""

    def __init__(self, root: Path, task_queue: str = "bytebot-chaos") -> None:
        self.root = root
        self.task_queue = task_queue
        self.temporal = TemporalDevServer(
            port=free_port(), db_file=root / "temporal.db", log_file=root / "temporal.log"
        )
        self._stack = ExitStack()
        self.sut: LocalSut | None = None
        self.worker: ChaosWorkerProcess | None = None

    def __enter__(self) -> LocalChaosStack:
        try:
            self._stack.enter_context(self.temporal)
            ports = SutPorts.pick(3)
            broker = KafkaBroker(self.root / "kafka", chaos_advertised=ports.kafka_advertised)
            self._stack.enter_context(broker)
            asyncio.run(broker.create_topics(TOPICS))
            sut = LocalSut.for_broker(
                self.root / "local", broker, ports, self.temporal.address, consumer=False
            )
            self.sut = self._stack.enter_context(sut)
            env = {
                **os.environ,
                "TEMPORAL_ADDRESS": self.temporal.address,
                "CHAOS_TASK_QUEUE": self.task_queue,
                "CHAOS_BACKEND": "local",
                "CHAOS_KAFKA_BOOTSTRAP": broker.bootstrap_direct,
                "CHAOS_LOCAL_STATE_DIR": str(sut.root),
                "CHAOS_LOG_FORMAT": "json",
                "CHAOS_ALLOWED_NAMESPACES": "bytebot",
            }
            self.worker = ChaosWorkerProcess(env, self.root / "chaos-worker.log")
            self._stack.callback(self.worker.stop)
            self.worker.start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    async def client(self, namespace: str = "default") -> Client:
        return await Client.connect(
            self.temporal.address, namespace=namespace, data_converter=pydantic_data_converter
        )

    def leftovers(self) -> list[str]:
        """What faults left in the system: proxy rules, hold files, stressors, open entries."""
        assert self.sut is not None
        found = [f"proxy rule {p.name}" for p in rules_dir(self.sut.control_dir).glob("*.json")]
        found += [f"hold file {p.name}" for p in (self.sut.state_dir / "hold").glob("*")]
        for entry in self.ledger_entries():
            if entry.phase != "recovered":
                found.append(f"ledger entry {entry.fault_id} {entry.phase}")
            for pid in entry.helper_pids:
                if procs.group_members(pid):
                    found.append(f"stress-ng {pid} of {entry.fault_id}")
        return found

    def ledger_entries(self) -> list[FaultEntry]:
        """The local backend's entries (one per fault it saw)."""
        assert self.sut is not None
        files = (self.sut.root / "faults" / "faults").glob("*.json")
        return [FaultEntry.model_validate_json(p.read_text()) for p in files]

    def effects(self) -> list[str]:
        """Faults still in force, whatever files remain: live rules, holds, stressors."""
        assert self.sut is not None
        rules = read_rules(self.sut.control_dir)[0]
        found = [f"live proxy rule {r.fault_id}" for r in rules if r.live()]
        state = StateDir(self.sut.state_dir)
        holds = (self.sut.state_dir / "hold").glob("*")
        found += [f"hold on {p.name}" for p in holds if state.held_until(p.name) is not None]
        return found + [f for f in self.leftovers() if f.startswith("stress-ng")]

    async def open_canaries(self) -> list[str]:
        """Canary goal runs still running in the stand-in's namespace."""
        client = await self.client(BYTEBOT_NAMESPACE)
        query = f"WorkflowId STARTS_WITH '{CANARY_PREFIX}' AND ExecutionStatus = 'Running'"
        return [w.id async for w in client.list_workflows(query)]


async def phase_of(handle: WorkflowHandle[object, object]) -> str | None:
    """A fault workflow's ChaosPhase, read from the server (no worker needed)."""
    try:
        description = await handle.describe()
    except Exception:  # not started yet
        return None
    return description.typed_search_attributes.get(visibility.PHASE)
