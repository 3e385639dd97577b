"""Whole runs through the Chaos Mesh backend against a real kube-apiserver, and the sweeper.

Stand-ins, named as such: `FakeChaosController` plays the Chaos Mesh controller (it sets the
objects' conditions and clears their finalizers) and `HealthyProbes` the verification activities.
The full scenario runs on the real controller (tests/test_chaos_mesh_real_runs.py); the stand-in
stays here for what the real one cannot be made to do on demand: hold a finalizer while its
targets are gone (the sweeper's stuck report), and a quick cancel/terminate/sweep cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio.client import Client, ScheduleOverlapPolicy, WorkflowFailureError
from temporalio.service import RPCError

from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import (
    KubeClient,
)
from control.schedules import ensure_sweeper_schedule
from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.conftest import assert_eventually
from tests.support.chaos_mesh import (
    Runs,
    confirm_now,
    names_are,
    request,
    scenario_in,
)
from tests.support.fake_chaos_controller import FakeChaosController
from workflows.scenario import ChaosScenarioWorkflow
from workflows.sweeper import ChaosOrphanSweeperWorkflow

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parent.parent


# -- the rendered objects are valid Chaos Mesh objects ------------------------------------


@pytest.fixture
async def runs(
    client: Client,
    kc: KubeClient,
    backend: ChaosMeshBackend,
    ns: str,
    controller: FakeChaosController,
) -> AsyncIterator[Runs]:
    r = Runs(client, kc, backend, ns)
    async with r.worker:
        yield r


async def test_a_rejected_fault_fails_the_run_and_its_sibling_is_recovered(
    runs: Runs, ns: str
) -> None:
    handle = await runs.start(
        scenario_in(
            ns,
            {
                "faults": [
                    {"action": "network-delay", "duration": "3s"},
                    {"action": "pod-kill", "duration": "3s", "target": {"mode": "all"}},
                ]
            },
        )
    )
    report: ScenarioReport = await handle.result()
    assert report.verdict is Verdict.FAIL
    delay, kill = report.faults()
    assert delay.verdict is Verdict.PASS and delay.record
    assert delay.record.status.value == "recovered" and delay.record.injected_at
    assert kill.verdict is Verdict.FAIL and "more than the cap" in kill.reason
    assert await runs.injected() == []


async def test_a_cancelled_run_deletes_its_chaos_object(runs: Runs, ns: str) -> None:
    handle = await runs.start(
        scenario_in(ns, {"fault": {"action": "network-partition", "duration": "60s"}})
    )
    await assert_eventually(runs.injected, timeout_s=20)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    await assert_eventually(lambda: names_are(runs.kc, ns, []), timeout_s=20)


PARTITION = {"fault": {"action": "network-partition", "duration": "60s"}}


async def test_a_terminated_run_still_deletes_its_chaos_object_through_its_child(
    runs: Runs, ns: str
) -> None:
    handle = await runs.start(scenario_in(ns, PARTITION))
    await assert_eventually(runs.injected, timeout_s=20)
    await handle.terminate("operator pulled the plug")
    # The child gets a cancel request (parent close policy) and recovers in its `finally`.
    await assert_eventually(lambda: names_are(runs.kc, ns, []), timeout_s=20)


async def test_the_scheduled_sweeper_deletes_what_a_terminated_child_left_behind(
    runs: Runs, client: Client, ns: str
) -> None:
    handle = await runs.start(scenario_in(ns, PARTITION))
    names = await assert_eventually(runs.injected, timeout_s=20)
    # Terminate the fault's own child too: nobody is left to recover it...
    await client.get_workflow_handle(f"{handle.id}.{names[0]}").terminate("lost")
    with contextlib.suppress(RPCError):  # the run may have ended on its child's failure
        await handle.terminate("lost")
    await asyncio.sleep(1)
    assert await runs.injected() == names
    # ...so the sweeper, on its schedule, finds the object's run closed and deletes it.
    schedule = await ensure_sweeper_schedule(client, runs.task_queue)
    try:
        await schedule.trigger()
        await assert_eventually(lambda: names_are(runs.kc, ns, []), timeout_s=30)
        described = await schedule.describe()
        started: Any = described.info.recent_actions[-1].action
        report = await client.get_workflow_handle_for(
            ChaosOrphanSweeperWorkflow.run, started.workflow_id
        ).result()
        assert [o.object.name for o in report.deleted] == names
        assert report.deleted[0].reason.startswith(f"its run {handle.id} is ")
    finally:
        await schedule.delete()


async def test_the_sweeper_keeps_running_runs_deletes_expired_and_reports_stuck_finalizers(
    runs: Runs,
    backend: ChaosMeshBackend,
    controller: FakeChaosController,
    admin: client.ApiClient,
    ns: str,
) -> None:
    idle = await runs.client.start_workflow(  # running: no worker polls this queue
        ChaosScenarioWorkflow.run,
        ScenarioInput(scenario="pod-failure"),
        id=f"idle-{uuid.uuid4()}",
        task_queue=f"nobody-{uuid.uuid4()}",
    )
    alive = request(ns, {"action": "pod-failure", "duration": "30s"}, run_id=idle.id)
    expired = request(
        ns,
        {"action": "cpu-stress", "duration": "30s"},
        run_id=idle.id,
        step=1,
        expires_in=timedelta(seconds=-1),
    )
    stuck = request(ns, {"action": "pod-kill", "duration": "30s"}, run_id="gone", step=2)
    for req in (alive, expired, stuck):
        await backend.inject(req)
    await assert_eventually(lambda: confirm_now(backend, stuck), timeout_s=10)
    controller.hold_finalizers = True
    await runs.kc.delete("podchaos", ns, stuck.fault_id)
    client.CoreV1Api(admin).delete_collection_namespaced_pod(ns)  # its targets are gone

    report = await runs.sweep(stuck_after="0s")
    assert [o.object.name for o in report.deleted] == [expired.fault_id]
    assert report.deleted[0].reason.startswith("expired at")
    assert report.kept == [f"PodChaos {ns}/{alive.fault_id}: run {idle.id} is running"]
    assert [s.object.name for s in report.stuck] == [stuck.fault_id]
    assert "finalizers ['chaos-mesh/records']" in report.stuck[0].reason
    assert "target pods gone" in report.stuck[0].reason and "kubectl" in report.stuck[0].reason
    # Reported, not forced: the finalizer is still there until the controller lets go.
    held = await runs.kc.get("podchaos", ns, stuck.fault_id)
    assert held and held["metadata"]["finalizers"] == ["chaos-mesh/records"]
    controller.hold_finalizers = False
    await idle.terminate("done")
    assert [o.object.name for o in (await runs.sweep()).deleted] == [alive.fault_id]
    await assert_eventually(lambda: names_are(runs.kc, ns, []), timeout_s=10)


async def test_the_sweeper_schedule_is_created_once_and_kept_up_to_date(client: Client) -> None:
    queue = f"sweeper-{uuid.uuid4()}"
    handle = await ensure_sweeper_schedule(client, queue)
    try:
        await handle.pause(note="operator")
        again = await ensure_sweeper_schedule(client, queue, every=timedelta(minutes=10))
        assert again.id == handle.id == "bytebot-chaos-orphan-sweeper"
        described = await again.describe()
        assert described.schedule.spec.intervals[0].every == timedelta(minutes=10)
        assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
        assert described.schedule.state.paused  # an operator's pause survives the update
    finally:
        await handle.delete()
