"""The chaos worker's /metrics: the Temporal SDK's runtime series and the tool's own.

A worker with the metrics interceptor and the SDK's Prometheus exporter runs a real scenario
on the dev server (stand-in marker backend, healthy probes); then /metrics is scraped over
HTTP as Prometheus would.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.faults.activities import FaultActivities
from activities.metrics import MetricsInterceptor, sdk_runtime, serve_metrics
from activities.scenario import ScenarioActivities
from devstack.temporal import TemporalDevServer
from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.support.scenario_runs import pod_kill, scenario
from tests.support.standins import HealthyProbes, MarkerBackend
from worker import build_worker
from workflows.scenario import ChaosScenarioWorkflow


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_show_the_sdk_series_and_faults_verdicts_and_recovery(
    temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    runtime, sdk_address = sdk_runtime()
    port = _port()
    serve_metrics(port, sdk_address, host="127.0.0.1")
    client = await Client.connect(
        temporal_server.address, data_converter=pydantic_data_converter, runtime=runtime
    )
    task_queue = f"chaos-{uuid.uuid4()}"
    worker = build_worker(
        client,
        task_queue,
        [
            *ScenarioActivities("stand-in", ["bytebot"]).all(),
            *FaultActivities(MarkerBackend(tmp_path)).all(),
            *HealthyProbes().all(),
        ],
        interceptors=[MetricsInterceptor()],
    )
    async with worker:
        report: ScenarioReport = await client.execute_workflow(
            ChaosScenarioWorkflow.run,
            ScenarioInput(scenario=scenario(pod_kill("1s"), pod_kill("1s", name="b"))),
            id=f"t-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert report.verdict is Verdict.PASS, report.reason
        samples = await asyncio.to_thread(_scrape, port)
    pod_kill_label = (("action", "pod-kill"),)
    assert samples[("chaos_faults_injected_total", pod_kill_label)] == 2
    assert samples[("chaos_faults_active", pod_kill_label)] == 0
    assert samples[("chaos_inject_seconds_count", pod_kill_label)] == 2
    assert samples[("chaos_recover_seconds_count", pod_kill_label)] >= 2
    assert samples[("chaos_time_to_recovery_seconds_count", pod_kill_label)] == 2
    verdict = (("criterion", "no-data-loss"), ("verdict", "pass"))
    assert samples[("chaos_criterion_verdicts_total", verdict)] == 2
    # The SDK's own runtime series, from its Prometheus exporter, on the same endpoint.
    sdk = {name for name, _ in samples if name.startswith("temporal_")}
    assert any("workflow_completed" in name for name in sdk), sorted(sdk)[:20]
    assert any("activity_execution_latency" in name for name in sdk), sorted(sdk)[:20]
