r"""One ByteBot worker replica: goalRunWorkflow's Temporal worker, its producer, its HTTP.

    TEMPORAL_ADDRESS=127.0.0.1:7233 KAFKA_BROKERS=127.0.0.1:9092 HTTP_PORT=3000 \
        python -m standin.replica

Configured like the real worker, from its environment: ``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE`` (bytebot), ``TEMPORAL_TASK_QUEUE`` (bytebot-goal-runs), ``KAFKA_BROKERS``
(comma-separated), ``HTTP_PORT`` (3000), ``METRICS_PORT`` (9464); the stand-in's own
``BYTEBOT_TIME_SCALE`` and ``BYTEBOT_FAULTY`` (`standin.runtime`) and, for tests,
``BYTEBOT_GOAL_TOPIC``/``BYTEBOT_STEP_TOPIC``/``BYTEBOT_AUDIT_TOPIC``.

The worker keeps the SDK's default identity, ``<pid>@<hostname>``, so pollers map to replicas
by pid. ``/health/ready`` is a flag set once the worker runs (it stays 200 if Temporal goes
away). On SIGTERM readiness drops, the worker keeps working for its fixed grace of 5 s
(scaled), then shuts down; exit 0. Exit 1 when Temporal cannot be reached at start or the
worker fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from datetime import timedelta

import structlog
from pydantic import Field
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from standin import runtime
from standin.activities import Dependencies, GoalActivities
from standin.contract import NAMESPACE, TASK_QUEUE, Camel
from standin.events import AUDIT_TOPIC, GOAL_TOPIC, STEP_TOPIC
from standin.goal_run import GoalRunWorkflow, workflow_runner
from standin.health import Health, serve
from standin.kafka_sink import KafkaEventSink, Topics
from standin.logs import configure_logging
from standin.models import FaultyMode

log = structlog.get_logger(__name__)

#: The real worker's fixed sleep after SIGTERM (scaled), and its caps.
SHUTDOWN_SLEEP_S = 5.0
HEALTH_RPC_INTERVAL_S = 0.5
HEALTH_RPC_TIMEOUT_S = 1.0


class ReplicaSettings(Camel):
    """Everything one replica reads from its environment."""

    temporal_address: str = "127.0.0.1:7233"
    namespace: str = NAMESPACE
    task_queue: str = TASK_QUEUE
    kafka_brokers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"])
    http_port: int = 3000
    metrics_port: int = 9464
    topics: tuple[str, str, str] = (GOAL_TOPIC, STEP_TOPIC, AUDIT_TOPIC)
    connect_timeout_s: float = Field(default=15.0, gt=0)
    orchestrator_url: str | None = None
    llm_proxy_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ReplicaSettings:
        """Read the real worker's variables (and the stand-in's topic overrides)."""
        e = os.environ if env is None else env
        return cls(
            temporal_address=e.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            namespace=e.get("TEMPORAL_NAMESPACE", NAMESPACE),
            task_queue=e.get("TEMPORAL_TASK_QUEUE", TASK_QUEUE),
            kafka_brokers=[b for b in e.get("KAFKA_BROKERS", "127.0.0.1:9092").split(",") if b],
            http_port=int(e.get("HTTP_PORT", "3000")),
            metrics_port=int(e.get("METRICS_PORT", "9464")),
            orchestrator_url=e.get("ORCHESTRATOR_URL") or None,
            llm_proxy_url=e.get("LLM_PROXY_URL") or None,
            topics=(
                e.get("BYTEBOT_GOAL_TOPIC", GOAL_TOPIC),
                e.get("BYTEBOT_STEP_TOPIC", STEP_TOPIC),
                e.get("BYTEBOT_AUDIT_TOPIC", AUDIT_TOPIC),
            ),
        )


def build_worker(client: Client, task_queue: str, activities: GoalActivities) -> Worker:
    """The worker with the real one's caps (activity rate scaled like time)."""
    rt = runtime.current()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[GoalRunWorkflow],
        workflow_runner=workflow_runner(),
        activities=activities.all(),
        max_concurrent_activities=50,
        max_concurrent_workflow_tasks=100,
        max_cached_workflows=500,
        max_activities_per_second=10 / rt.time_scale,
        sticky_queue_schedule_to_start_timeout=rt.seconds(10),
        graceful_shutdown_timeout=rt.seconds(10),
    )


async def run_replica(settings: ReplicaSettings, stop: asyncio.Event) -> int:
    """Serve until ``stop`` is set or the worker fails; return the process exit code."""
    rt = runtime.current()
    health = Health()
    servers = [
        await serve(health, "0.0.0.0", settings.http_port),
        await serve(health, "0.0.0.0", settings.metrics_port),
    ]
    goal, step, audit = settings.topics
    sink = KafkaEventSink(
        ",".join(settings.kafka_brokers),
        topics=Topics(goal=goal, step=step, audit=audit),
        send_timeout_s=rt.outage(10).total_seconds(),
    )
    # Kafka being down must not keep the worker from polling: sends fail and are retried.
    sink_start = asyncio.create_task(sink.start())
    try:
        try:
            async with asyncio.timeout(settings.connect_timeout_s):
                client = await Client.connect(
                    settings.temporal_address,
                    namespace=settings.namespace,
                    data_converter=pydantic_data_converter,
                )
        except Exception as e:  # unreachable, refused, timed out: the supervisor restarts us
            log.error("temporal_unreachable", address=settings.temporal_address, error=repr(e))
            return 1
        dependencies = Dependencies(settings.orchestrator_url, settings.llm_proxy_url)
        activities = GoalActivities(sink, rt, sink.topics, dependencies)
        worker = build_worker(client, settings.task_queue, activities)
        return await _serve(worker, client, health, stop, rt)
    finally:
        sink_start.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sink_start
        await sink.stop()
        for server in servers:
            server.close()


async def _serve(
    worker: Worker, client: Client, health: Health, stop: asyncio.Event, rt: runtime.Runtime
) -> int:
    run = asyncio.create_task(worker.run())
    while not worker.is_running and not run.done():  # no event for "polling" exists
        await asyncio.wait({run}, timeout=0.02)
    health.started = health.ready = health.polling = worker.is_running
    log.info("replica_ready", pid=os.getpid(), faulty=sorted(rt.faulty))
    watch = None
    if FaultyMode.STOP_POLLING in rt.faulty:
        watch = asyncio.create_task(_zombie_after_first_break(worker, client, health))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if watch is not None and watch.done() and not stop.is_set():
        await stopping  # a zombie: no worker, still serving /health/ready 200
    if stop.is_set():
        health.ready = False
        log.info("shutdown_requested", sleep_s=rt.seconds(SHUTDOWN_SLEEP_S).total_seconds())
        await asyncio.sleep(rt.seconds(SHUTDOWN_SLEEP_S).total_seconds())
    for task in (watch, stopping):
        if task is not None:
            task.cancel()
    if not run.done():
        await worker.shutdown()
    await asyncio.wait({run})
    failed = not run.cancelled() and run.exception() is not None
    if failed:
        log.error("worker_failed", error=repr(run.exception()))
    log.info("replica_stopped", exit_code=int(failed))
    return int(failed)


async def _zombie_after_first_break(worker: Worker, client: Client, health: Health) -> None:
    """The stop-polling defect: the first failed health RPC stops the worker for good."""
    while True:
        await asyncio.sleep(HEALTH_RPC_INTERVAL_S)
        try:
            await client.service_client.check_health(
                timeout=timedelta(seconds=HEALTH_RPC_TIMEOUT_S)
            )
        except Exception as e:  # any failure counts as a broken connection
            log.warning("faulty_stop_polling", error=repr(e))
            health.polling = False
            await worker.shutdown()  # /health/ready stays 200: a zombie
            return


async def _main() -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await run_replica(ReplicaSettings.from_env(), stop)


def main() -> int:
    """The ``python -m standin.replica`` entry point."""
    configure_logging(os.environ.get("LOG_FORMAT", "console"))  # type: ignore[arg-type]
    runtime.configure(runtime.from_env())
    return asyncio.run(_main())


if __name__ == "__main__":
    sys.exit(main())
