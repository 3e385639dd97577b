"""The main job: a full chaos scenario against the local stand-in of ByteBot, for real.

Starts the Temporal dev server with its Web UI and a Kafka broker, both as fault targets under
the local Deployment supervisor (`devstack.targets`: the frontend pod of namespace ``temporal``
and the broker pod of ``kafka``), the stand-in (wired through the fault proxy) and the chaos
worker with the local backend; runs the scenario; prints the
verdict per fault and per criterion, each fault's time to recovery, the report's path and the
run's Web UI address; then stops everything it started, also when interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from control.progress import RunProgress
from control.reports import print_table, write_report
from control.runs import build_input, follow_run, start_run, ui_link
from devstack.kafka import KafkaBroker
from devstack.kafka_install import install
from devstack.ports import free_port
from devstack.processes import stop_process_group
from devstack.sut import LocalSut, SutPorts
from devstack.targets import TARGETS_DIR
from devstack.temporal import TemporalDevServer
from models.report import ScenarioReport, Verdict

REPO = Path(__file__).resolve().parent.parent
TASK_QUEUE = "bytebot-chaos"
TOPICS = ("bytebot.goal.events", "bytebot.step.events", "bytebot.audit.log")


class MainJobOptions(BaseModel):
    """What `starter.py demo` (the README's first command) runs."""

    scenario: str = "full-resilience"
    duration_cap: str | None = None
    settle_cap: str | None = None
    faulty: list[str] = Field(default_factory=list, description="Stand-in faulty modes.")
    worker_command: str | None = Field(
        default=None,
        description="The replicas' command (default: the stand-in worker); placeholders "
        "{replica} {temporal} {kafka} {http_port} {metrics_port}, and the real worker's env.",
    )
    ready_url: str | None = Field(default=None, description="HTTP readiness probe URL template.")
    ready_exec: str | None = Field(default=None, description="Exec readiness probe command.")
    replicas: int = 3
    work_dir: Path = Path("runs/main-job")
    keep_running: bool = False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"[main-job] {message}", flush=True)


def _port(preferred: int) -> int:
    """The preferred port when it is free (so the UI link is the usual one), else any."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


@contextmanager
def chaos_worker(temporal: str, kafka: str, sut_root: Path, log: Path) -> Iterator[None]:
    """`python worker.py` with the local backend, as an operator would start it."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal,
        "CHAOS_TASK_QUEUE": TASK_QUEUE,
        "CHAOS_BACKEND": "local",
        "CHAOS_KAFKA_BOOTSTRAP": kafka,
        "CHAOS_LOCAL_STATE_DIR": str(sut_root),
        "CHAOS_LOG_FORMAT": "json",
        # ByteBot's own suite also targets the Temporal frontend and the Kafka brokers.
        "CHAOS_ALLOWED_NAMESPACES": "bytebot,temporal,kafka",
    }
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "worker.py")],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        stop_process_group(proc, timeout_s=30)


async def _run_scenario(
    address: str, options: MainJobOptions, ui_url: str, started: list[str]
) -> ScenarioReport:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    run_input = build_input(
        options.scenario, duration_cap=options.duration_cap, settle_cap=options.settle_cap
    )
    handle = await start_run(client, run_input, TASK_QUEUE)
    started.append(handle.id)
    _say(f"run started: {handle.id}")
    _say(f"  Web UI: {ui_link(ui_url, 'default', handle.id)}")
    with RunProgress(client, handle.id) as progress:
        return await follow_run(handle, on_poll=progress.poll)


async def _cancel_run(address: str, workflow_id: str) -> None:
    """Cancel the run and wait (bounded) until its faults are recovered by the worker."""
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    handle = client.get_workflow_handle(workflow_id)
    await handle.cancel()
    with contextlib.suppress(Exception):  # it ends cancelled: that is the expected outcome
        await asyncio.wait_for(handle.result(), timeout=120)


def run_main_job(options: MainJobOptions) -> int:
    """Start everything, run the scenario, report, stop everything; the exit code."""
    # Bad input fails here, before anything starts.
    build_input(options.scenario, duration_cap=options.duration_cap, settle_cap=options.settle_cap)
    root = (options.work_dir / time.strftime("%Y%m%d-%H%M%S")).resolve()
    root.mkdir(parents=True)
    # SIGTERM and SIGINT end the job, so the ExitStack below stops what it started.
    for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background job ignores it
        signal.signal(signum, _interrupt)
    started: list[str] = []
    with ExitStack() as stack:
        try:
            _say(f"work dir: {root}")
            _say("installing Kafka (cached after the first time)")
            install()
            targets = root / "local" / TARGETS_DIR  # where the local backend finds them
            temporal = TemporalDevServer(
                port=_port(7233),
                ui_port=_port(8233),
                ui=True,
                db_file=root / "temporal.db",
                log_file=root / "temporal.log",
                # The frontend "pod" of namespace temporal: ByteBot's suite kills and stresses it.
                supervise_dir=targets / "temporal-frontend",
            )
            stack.enter_context(temporal)
            _say(f"Temporal dev server {temporal.address}, Web UI {temporal.ui_url}")
            ports = SutPorts.pick(options.replicas)
            broker = KafkaBroker(
                root / "kafka",
                chaos_advertised=ports.kafka_advertised,
                supervise_dir=targets / "kafka",  # the broker "pod" of namespace kafka
            )
            stack.enter_context(broker)
            asyncio.run(broker.create_topics(TOPICS))
            _say(f"Kafka {broker.bootstrap_direct} (replicas reach it through the fault proxy)")
            extra = [arg for mode in options.faulty for arg in ("--faulty", mode)]
            sut = LocalSut.for_broker(
                root / "local",
                broker,
                ports,
                temporal.address,
                extra_args=extra,
                worker_command=options.worker_command,
                ready_url=options.ready_url,
                ready_exec=options.ready_exec,
            )
            stack.enter_context(sut)
            faulty = f" in faulty mode {options.faulty}" if options.faulty else ""
            worker = options.worker_command or "the ByteBot stand-in"
            _say(f"{worker}: {options.replicas} replicas ready in namespace bytebot{faulty}")
            stack.enter_context(
                chaos_worker(
                    temporal.address, broker.bootstrap_direct, sut.root, root / "chaos-worker.log"
                )
            )
            _say(f"chaos worker on task queue {TASK_QUEUE} (local backend)")
            report = asyncio.run(_run_scenario(temporal.address, options, temporal.ui_url, started))
            print(print_table(report), flush=True)
            link = ui_link(temporal.ui_url, "default", report.workflow_id)
            # The archive is shared by the job's runs, so the report shows their trend.
            files = write_report(
                report, root / "reports", archive=options.work_dir / "archive", ui_link=link
            )
            _say(f"report: {files.html}")
            _say(f"junit: {files.junit}")
            _say(f"Web UI: {link}")
            if options.keep_running:
                _say("services keep running; ^C to stop them")
                signal.pause()
            return 0 if report.verdict is Verdict.PASS else 1
        except KeyboardInterrupt:
            if started:
                # Stop the run first, while its worker is still up to recover the faults.
                _say(f"interrupted: cancelling {started[0]} so its faults are recovered")
                with contextlib.suppress(Exception, KeyboardInterrupt):
                    asyncio.run(_cancel_run(temporal.address, started[0]))
            _say("interrupted: stopping what was started")
            return 130
        finally:
            _say("stopping services")
