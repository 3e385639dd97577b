r"""One ByteBot worker replica: a Temporal worker for goalRunWorkflow plus its Kafka producer.

    python -m standin.replica --name replica-0 --temporal-address 127.0.0.1:7233 \
        --kafka-bootstrap 127.0.0.1:9092 --ready-file /tmp/replica-0.ready

Flags fall back to the environment (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``KAFKA_BOOTSTRAP``, ``STANDIN_TASK_QUEUE``). The ready file is written once the worker polls
and removed when it stops; SIGTERM or SIGINT shut the worker down, letting activities in
flight finish for ``--graceful-shutdown-s`` before they are cancelled (and retried elsewhere).
Exit code 0 after a requested shutdown, 1 when Temporal cannot be reached or the worker fails.

A replica knows nothing of whoever supervises or tests it: it reads its flags, serves, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import structlog
from pydantic import Field
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from standin.activities import GoalActivities
from standin.events import GOAL_TOPIC, STEP_TOPIC
from standin.goal_run import GoalRunWorkflow
from standin.kafka_sink import KafkaEventSink
from standin.logs import configure_logging
from standin.models import DEFAULT_TASK_QUEUE, FaultyMode, Frozen

log = structlog.get_logger(__name__)


class ReplicaSettings(Frozen):
    """Everything one replica needs to run."""

    name: str = Field(description="The replica's name, e.g. replica-0; part of its identity.")
    temporal_address: str
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    kafka_bootstrap: str
    goal_topic: str = GOAL_TOPIC
    step_topic: str = STEP_TOPIC
    ready_file: Path | None = Field(
        default=None, description="Touched once polling; removed on stop."
    )
    faulty: frozenset[FaultyMode] = frozenset()
    graceful_shutdown_s: float = Field(default=2.0, ge=0)
    connect_timeout_s: float = Field(default=15.0, gt=0)
    send_timeout_s: float = Field(default=10.0, gt=0)


async def run_replica(settings: ReplicaSettings, stop: asyncio.Event) -> int:
    """Serve until ``stop`` is set or the worker fails; return the process exit code."""
    _remove(settings.ready_file)
    sink = KafkaEventSink(
        settings.kafka_bootstrap,
        client_id=f"bytebot-{settings.name}",
        goal_topic=settings.goal_topic,
        step_topic=settings.step_topic,
        send_timeout_s=settings.send_timeout_s,
    )
    # Kafka being down must not keep the worker from polling: sends fail and are retried.
    sink_start = asyncio.create_task(sink.start())
    try:
        async with asyncio.timeout(settings.connect_timeout_s):
            client = await Client.connect(
                settings.temporal_address,
                namespace=settings.namespace,
                data_converter=pydantic_data_converter,
            )
    except Exception as e:  # unreachable, refused, timed out: the supervisor restarts us
        log.error("temporal_unreachable", address=settings.temporal_address, error=repr(e))
        sink_start.cancel()
        await sink.stop()
        return 1
    activities = GoalActivities(sink, replica=settings.name, faulty=settings.faulty)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[GoalRunWorkflow],
        activities=[activities.emit_goal_event, activities.run_step],
        identity=f"{settings.name}/{os.getpid()}",
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_s),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=5),
    )
    run = asyncio.create_task(worker.run())
    exit_code = 0
    try:
        while not worker.is_running and not run.done():  # no event for "polling" exists
            await asyncio.wait({run}, timeout=0.02)
        if worker.is_running:
            _touch(settings.ready_file)
            log.info(
                "replica_ready",
                task_queue=settings.task_queue,
                temporal=settings.temporal_address,
                kafka=settings.kafka_bootstrap,
                faulty=sorted(settings.faulty),
            )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    finally:
        _remove(settings.ready_file)
        await worker.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await sink_start
        await sink.stop()
    if run.done() and not run.cancelled() and run.exception() is not None:
        log.error("worker_failed", error=repr(run.exception()))
        exit_code = 1
    log.info("replica_stopped", exit_code=exit_code)
    return exit_code


def _touch(path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n")


def _remove(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def parse_args(argv: list[str] | None = None) -> ReplicaSettings:
    """Read flags (with environment fallbacks) into settings."""
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python -m standin.replica",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--name", default=env("REPLICA_NAME", "replica-0"))
    p.add_argument("--temporal-address", default=env("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    p.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    p.add_argument("--task-queue", default=env("STANDIN_TASK_QUEUE", DEFAULT_TASK_QUEUE))
    p.add_argument("--kafka-bootstrap", default=env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--goal-topic", default=GOAL_TOPIC)
    p.add_argument("--step-topic", default=STEP_TOPIC)
    p.add_argument("--ready-file", type=Path)
    p.add_argument(
        "--faulty",
        action="append",
        default=[],
        type=FaultyMode,
        choices=list(FaultyMode),
        metavar="MODE",
        help=f"switch on a deliberate defect: {', '.join(FaultyMode)}",
    )
    p.add_argument("--graceful-shutdown-s", type=float, default=2.0)
    p.add_argument("--log-format", choices=["console", "json"], default="console")
    args = p.parse_args(argv)
    configure_logging(args.log_format, replica=args.name)
    return ReplicaSettings(
        name=args.name,
        temporal_address=args.temporal_address,
        namespace=args.namespace,
        task_queue=args.task_queue,
        kafka_bootstrap=args.kafka_bootstrap,
        goal_topic=args.goal_topic,
        step_topic=args.step_topic,
        ready_file=args.ready_file,
        faulty=frozenset(args.faulty),
        graceful_shutdown_s=args.graceful_shutdown_s,
    )


async def _main(settings: ReplicaSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await run_replica(settings, stop)


def main(argv: list[str] | None = None) -> int:
    """The ``python -m standin.replica`` entry point."""
    return asyncio.run(_main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
