"""The Chaos Mesh backend's chaos worker SIGKILLed in every phase, on the REAL controller.

Real: the Temporal dev server, the workflows, the Chaos Mesh backend in a worker process of
its own (tests/support/chaos_mesh_worker_proc.py), kube-apiserver, kube-controller-manager and
chaos-controller-manager with its webhooks. Stand-ins, named as such: chaos-daemon, the DNS
server and the kubelet (tests/support/chaos_mesh_stack.py), and `HealthyProbes` for the
verification activities (no ByteBot runs in that cluster), each taking a second. One fault of
each family side by side (PodChaos pod-failure, NetworkChaos delay, StressChaos CPU): the run
whose worker dies in every phase of every fault gives the undisturbed run's verdicts and
leaves no Chaos Mesh object behind; a run terminated in a phase has its objects deleted by its
children within a bound (the sweeper and the objects' own duration are tested in
tests/test_chaos_mesh_runs.py).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from activities.faults.chaos_mesh.client import KubeClient
from devstack.temporal import TemporalDevServer
from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.conftest import assert_eventually
from tests.support.chaos_mesh import objects, scenario_in
from tests.support.chaos_mesh_stack import RealChaosMesh
from tests.support.kill_runs import PHASES, all_closed, kill_in_every_phase, wait_for_phase
from tests.support.kill_stack import REPO, ChaosWorkerProcess
from workflows.scenario import ChaosScenarioWorkflow

pytestmark = pytest.mark.timeout(600)
FAULTS = [
    {"action": "pod-failure", "duration": "15s"},
    {"action": "network-delay", "duration": "15s", "latency": "200ms"},
    {"action": "cpu-stress", "duration": "15s", "cpu": {"workers": 1, "load_pct": 50}},
]
#: A terminated run's Chaos Mesh objects are deleted by its children within this.
TERMINATE_BOUND_S = 30.0


TASK_QUEUE = f"cm-kill-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worker(
    temporal_server: TemporalDevServer, chaos_mesh: RealChaosMesh, real_ns: str, tmp_path: Path
) -> Iterator[ChaosWorkerProcess]:
    argv = [sys.executable, "-m", "tests.support.chaos_mesh_worker_proc"]
    argv += [temporal_server.address, TASK_QUEUE, str(chaos_mesh.kube.kubeconfig_path), real_ns]
    proc = ChaosWorkerProcess(
        {**os.environ, "PYTHONPATH": str(REPO)}, tmp_path / "worker.log", argv, "ready"
    )
    proc.start()
    yield proc
    proc.stop()


async def start(client: Client, ns: str, duration: str = "") -> Any:
    faults = [{**f, "duration": duration or f["duration"]} for f in FAULTS]
    return await client.start_workflow(
        ChaosScenarioWorkflow.run,
        ScenarioInput(scenario=scenario_in(ns, {"faults": faults})),
        id=f"cm-{uuid.uuid4().hex[:8]}",
        task_queue=TASK_QUEUE,
        execution_timeout=timedelta(minutes=8),
    )


def verdicts(report: ScenarioReport) -> dict[str, Any]:
    return {
        f.action: (f.verdict, {c.criterion: c.verdict for c in f.criteria}) for f in report.faults()
    }


async def test_a_chaos_mesh_worker_killed_in_every_phase_changes_no_verdict_and_leaves_nothing(
    client: Client, worker: ChaosWorkerProcess, real_kc: KubeClient, real_ns: str
) -> None:
    undisturbed: ScenarioReport = await (await start(client, real_ns)).result()
    assert undisturbed.verdict is Verdict.PASS, undisturbed.reason

    handle = await start(client, real_ns)
    log = await kill_in_every_phase(client, handle, worker)
    report: ScenarioReport = await handle.result()

    children = {k.child for k in log.kills}
    assert len(children) == len(FAULTS)
    for child in children:
        assert log.phases_of(child) == set(PHASES), (child, log.phases_of(child))
    assert verdicts(report) == verdicts(undisturbed), report.reason
    assert [r.status.value for r in report.ledger] == ["recovered"] * len(FAULTS)
    assert await objects(real_kc, real_ns) == []

    ledger = {f"{handle.id}.{r.fault_id}": r for r in report.ledger}
    print(f"\n{len(log.kills)} kills in {len(log.restart_s)} worker deaths (chaos-mesh)")
    for child, row in ledger.items():
        assert row.injected_at and row.recovered_at
        late = (row.recovered_at - row.injected_at).total_seconds() - 15
        print(f"  {row.action}: recovered {late:.1f}s after its planned end")
        for kill in (k for k in log.kills if k.child == child):
            after = max(0.0, row.recovered_at.timestamp() - kill.at)
            print(f"    killed in {kill.phase:>16}: recovered {after:5.1f}s later")


@pytest.mark.parametrize("phase", ["inject", "hold", "recover"])
async def test_a_chaos_mesh_run_terminated_in_a_phase_deletes_its_objects_within_the_bound(
    client: Client, worker: ChaosWorkerProcess, real_kc: KubeClient, real_ns: str, phase: str
) -> None:
    handle = await start(client, real_ns, "10s")
    landed, children = await wait_for_phase(client, handle, phase)
    await handle.terminate(f"test: terminated in {phase}")
    terminated = time.monotonic()

    async def gone() -> None:
        assert await all_closed(client, children)
        assert await objects(real_kc, real_ns) == []

    await assert_eventually(gone, timeout_s=TERMINATE_BOUND_S + 30)
    took = time.monotonic() - terminated
    print(f"\nchaos-mesh terminated in {landed}: objects deleted {took:.1f}s later")
    assert took <= TERMINATE_BOUND_S
