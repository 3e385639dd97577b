"""The chaos worker: settings -> Temporal client -> fault backend -> Worker.

`python worker.py` (or `bytebot-chaos-worker`) runs ChaosScenarioWorkflow and its activities on
task queue `bytebot-chaos`, with the fault backend chosen by CHAOS_BACKEND / --backend.
It shuts down gracefully on SIGTERM: running activities get time to finish or be retried
elsewhere, and every fault they left is bounded by its own expiry.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.faults.activities import FaultActivities
from activities.faults.backend import FaultBackend
from activities.scenario import ScenarioActivities
from health import HealthServer
from settings import Settings
from workflows.fault import FaultWorkflow
from workflows.scenario import ChaosScenarioWorkflow
from workflows.sweeper import ChaosOrphanSweeperWorkflow
from workflows.visibility import ALL as SEARCH_ATTRIBUTES

log = structlog.get_logger("worker")

WORKFLOWS: list[type] = [ChaosScenarioWorkflow, FaultWorkflow, ChaosOrphanSweeperWorkflow]
#: Our own pure modules pass through the sandbox: reloading pydantic models per run is slow.
PASSTHROUGH = (
    "models",
    "activities",
    "workflows",
    "pydantic",
    "pydantic_core",
    "structlog",
    "prometheus_client",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner with this project's modules passed through."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def configure_logging(fmt: str = "console") -> None:
    """structlog, once: JSON in a cluster, console locally."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ]
    )


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client for the chaos runs' own Temporal namespace, with the pydantic converter."""
    tls: TLSConfig | bool = False
    if settings.tls_enabled:

        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path else None

        tls = TLSConfig(
            client_cert=read(settings.temporal_tls_cert),
            client_private_key=read(settings.temporal_tls_key),
            server_root_ca_cert=read(settings.temporal_tls_ca),
        )
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client) -> None:
    """Register ChaosScenario/ChaosVerdict/ChaosPhase/ChaosFault if the server lacks them."""
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in SEARCH_ATTRIBUTES
                },
            )
        )
    except RPCError as err:
        # AlreadyExists is the common case; a cloud namespace may forbid the operator API.
        log.info("search_attributes_not_added", reason=err.message)


def build_backend(settings: Settings) -> FaultBackend:
    """The fault backend the settings name."""
    if settings.backend == "chaos-mesh":
        from activities.faults.chaos_mesh.backend import ChaosMeshBackend

        return ChaosMeshBackend.from_settings(settings)
    from activities.faults.local.backend import LocalBackend

    # One root for the local system: the stand-in's state (sut/), the fault proxy's control
    # dir (proxy/), the backend's own ledger (faults/), laid out as devstack.sut does, and the
    # supervised Temporal frontend and Kafka broker (targets/<name>/, devstack.targets).
    root = settings.local_state_dir.resolve()
    return LocalBackend(
        state_dir=root / "faults",
        sut_state_dir=root / "sut",
        proxy_control_dir=root / "proxy",
        targets_dir=root / "targets",
    )


def verification_activities(client: Client, settings: Settings, backend: FaultBackend) -> list[Any]:
    """The probes of the system under test (Temporal and Kafka)."""
    from activities.kafka.probe import KafkaProbeActivities
    from activities.verify.clients import TemporalClients, TemporalDefaults
    from activities.verify.probe import TemporalProbeActivities
    from models.scenario import TlsFiles

    tls = None
    if settings.temporal_tls_cert or settings.temporal_tls_ca:

        def text(path: Path | None) -> str | None:
            return str(path) if path else None

        tls = TlsFiles(
            client_cert=text(settings.temporal_tls_cert),
            client_key=text(settings.temporal_tls_key),
            server_ca=text(settings.temporal_tls_ca),
        )
    defaults = TemporalDefaults(
        address=settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=settings.temporal_api_key,
    )
    clients = TemporalClients(defaults, own=client)
    return [
        *TemporalProbeActivities(clients, backend).all(),
        *KafkaProbeActivities(settings.kafka_bootstrap).all(),
    ]


def build_worker(
    client: Client, task_queue: str, activities: Sequence[Any], **options: Any
) -> Worker:
    """A Worker for the chaos workflows with the given activities."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=list(activities),
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=20),
        # Heartbeats reach the server at least every 2 s (the SDK's default throttle is 80 % of
        # the heartbeat timeout: 8 s of a 10 s one left too little margin on a busy machine).
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        **options,
    )


def backend_activities(client: Client, settings: Settings, backend: FaultBackend) -> list[Any]:
    """Activities only some backends have (Chaos Mesh: the orphan sweeper)."""
    if settings.backend != "chaos-mesh":
        return []
    from activities.faults.chaos_mesh.backend import ChaosMeshBackend
    from activities.faults.chaos_mesh.sweeper import SweeperActivities

    assert isinstance(backend, ChaosMeshBackend)
    return [
        *SweeperActivities(backend.kube, client, settings.allowed_namespaces).all(),
    ]


async def run_worker(settings: Settings) -> None:
    """Connect, register, sweep leftovers, then poll until SIGTERM/SIGINT."""
    health = HealthServer(settings.health_port) if settings.health_port else None
    if health:
        await health.start()
    runtime, interceptors = None, []
    if settings.metrics_port:
        from activities.metrics import MetricsInterceptor, sdk_runtime, serve_metrics

        runtime, sdk_address = sdk_runtime()
        serve_metrics(settings.metrics_port, sdk_address)
        interceptors.append(MetricsInterceptor())
        log.info("metrics_served", port=settings.metrics_port, path="/metrics")
    client = await connect(settings, runtime)
    await ensure_search_attributes(client)
    backend = build_backend(settings)
    swept = await backend.sweep()  # the janitor: faults whose expiry passed while no one ran
    if swept:
        log.warning("expired_faults_swept", fault_ids=swept)
    if settings.backend == "chaos-mesh":
        from control.schedules import ensure_sweeper_schedule

        await ensure_sweeper_schedule(client, settings.task_queue)
    activities = [
        *ScenarioActivities(settings.backend, settings.allowed_namespaces).all(),
        *FaultActivities(backend).all(),
        *backend_activities(client, settings, backend),
        *verification_activities(client, settings, backend),
    ]
    worker = build_worker(client, settings.task_queue, activities, interceptors=interceptors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker_started",
        task_queue=settings.task_queue,
        backend=settings.backend,
        address=settings.temporal_address,
        namespace=settings.temporal_namespace,
    )
    async with worker:
        if health:
            health.ready = True
        await stop.wait()
        if health:
            health.ready = False  # drain: no new work is routed while activities finish
        log.info("worker_stopping")
    if health:
        await health.stop()
    log.info("worker_stopped")


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    """Flags override the environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--address", dest="temporal_address", help="Temporal host:port")
    parser.add_argument("--namespace", dest="temporal_namespace", help="Temporal namespace")
    parser.add_argument("--task-queue", dest="task_queue")
    parser.add_argument("--backend", choices=["local", "chaos-mesh"])
    parser.add_argument("--api-key", dest="temporal_api_key")
    parser.add_argument("--tls-cert", dest="temporal_tls_cert")
    parser.add_argument("--tls-key", dest="temporal_tls_key")
    parser.add_argument("--tls-ca", dest="temporal_tls_ca")
    parser.add_argument("--kafka-bootstrap", dest="kafka_bootstrap")
    parser.add_argument("--local-state-dir", dest="local_state_dir")
    parser.add_argument("--log-format", dest="log_format", choices=["console", "json"])
    parser.add_argument("--metrics-port", dest="metrics_port", type=int, help="serve /metrics")
    args = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    return Settings(**args)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python worker.py`: exits without interpreter finalization (see starter)."""
    settings = parse_args(argv)
    configure_logging(settings.log_format)
    asyncio.run(run_worker(settings))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
