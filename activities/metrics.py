"""The chaos worker's Prometheus metrics: the tool's own series plus the Temporal SDK's.

`/metrics` on CHAOS_METRICS_PORT (off by default) serves one registry: the tool's series,
recorded by worker interceptors, and the SDK runtime's series, which its own Prometheus
exporter serves on a private loopback port and this module re-exposes, so a scrape needs one
port. The tool's series:

- `chaos_faults_injected_total{action}`, `chaos_faults_active{action}`
- `chaos_inject_seconds{action}`, `chaos_recover_seconds{action}` (activity latency)
- `chaos_time_to_recovery_seconds{action}` (histogram), `chaos_fault_verdicts_total{action,verdict}`
- `chaos_criterion_verdicts_total{criterion,verdict}`

Verdicts are counted when a fault run completes, never on replay. "Active" counts the faults
this worker process injected and has not yet recovered. This module is passed through the
workflow sandbox (as all of `activities` is), so the workflow interceptor counts into the
same registry.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from models.ledger import FaultRequest
from models.report import FaultReport
from workflows import names

REGISTRY = CollectorRegistry()
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TTR_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)

INJECTED = Counter(
    "chaos_faults_injected", "Faults injected, by kind.", ["action"], registry=REGISTRY
)
ACTIVE = Gauge(
    "chaos_faults_active",
    "Faults this worker injected and has not yet recovered.",
    ["action"],
    registry=REGISTRY,
)
INJECT_SECONDS = Histogram(
    "chaos_inject_seconds",
    "inject_fault latency.",
    ["action"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RECOVER_SECONDS = Histogram(
    "chaos_recover_seconds",
    "recover_fault latency.",
    ["action"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TTR_SECONDS = Histogram(
    "chaos_time_to_recovery_seconds",
    "From the end of a fault until the system was back.",
    ["action"],
    buckets=TTR_BUCKETS,
    registry=REGISTRY,
)
FAULT_VERDICTS = Counter(
    "chaos_fault_verdicts", "Fault verdicts, by kind.", ["action", "verdict"], registry=REGISTRY
)
CRITERION_VERDICTS = Counter(
    "chaos_criterion_verdicts",
    "Criterion verdicts per fault.",
    ["criterion", "verdict"],
    registry=REGISTRY,
)
_active_ids: set[str] = set()


def record_fault_report(report: FaultReport) -> None:
    """Count one fault's verdicts and its time to recovery."""
    FAULT_VERDICTS.labels(report.action, report.verdict.value).inc()
    for criterion in report.criteria:
        CRITERION_VERDICTS.labels(criterion.criterion.value, criterion.verdict.value).inc()
    if report.time_to_recovery_s is not None:
        TTR_SECONDS.labels(report.action).observe(report.time_to_recovery_s)


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        kind = activity.info().activity_type
        request = input.args[0] if input.args else None
        if kind not in (names.INJECT_FAULT, names.RECOVER_FAULT) or not isinstance(
            request, FaultRequest
        ):
            return await super().execute_activity(input)
        action, started = request.fault.action, time.monotonic()
        result = await super().execute_activity(input)
        elapsed = time.monotonic() - started
        if kind == names.INJECT_FAULT:
            INJECT_SECONDS.labels(action).observe(elapsed)
            INJECTED.labels(action).inc()
            if request.fault_id not in _active_ids:
                _active_ids.add(request.fault_id)
                ACTIVE.labels(action).inc()
        else:
            RECOVER_SECONDS.labels(action).observe(elapsed)
            if request.fault_id in _active_ids:
                _active_ids.discard(request.fault_id)
                ACTIVE.labels(action).dec()
        return result


class _WorkflowMetrics(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        result = await super().execute_workflow(input)
        # A replay (cache eviction, a query on a closed run) must not count the verdict again.
        if isinstance(result, FaultReport) and not workflow.unsafe.is_replaying():
            record_fault_report(result)
        return result


class MetricsInterceptor(Interceptor):
    """Records the tool's series from the fault activities and the fault runs' results."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(super().intercept_activity(next))

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _WorkflowMetrics


class SdkMetrics:
    """Re-exposes the SDK runtime's Prometheus series (scraped from its loopback exporter)."""

    def __init__(self, address: str) -> None:
        self.url = f"http://{address}/metrics"

    def collect(self) -> Iterable[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return []  # the runtime is not up yet or is shutting down: skip its series once
        return list(text_string_to_metric_families(text))


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sdk_runtime() -> tuple[Runtime, str]:
    """A Temporal runtime whose metrics go to a Prometheus exporter on a loopback port."""
    address = f"127.0.0.1:{_free_loopback_port()}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    return runtime, address


def serve_metrics(port: int, sdk_address: str | None, host: str = "0.0.0.0") -> None:
    """Serve `/metrics` (the tool's series, and the SDK's when `sdk_address` is given)."""
    if sdk_address is not None:
        REGISTRY.register(SdkMetrics(sdk_address))
    start_http_server(port, addr=host, registry=REGISTRY)
