"""Honest failure attribution, one expiry per fault, heartbeating inject and recover.

Through the real workflows on the dev server, with the stand-in marker backend and healthy
probes of tests/support/standins.py (named so: they replace the real backend and probes,
which have their own tests); one probe or backend call is made to fail on purpose.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.faults.activities import FaultActivities
from activities.faults.backend import FaultRejected
from activities.scenario import ScenarioActivities
from models.ledger import FaultRequest, Recovery
from models.observations import HoldProbe, HoldProbeInput
from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.support.scenario_runs import pod_kill, scenario
from tests.support.standins import HealthyProbes, MarkerBackend
from worker import build_worker
from workflows import names, policies
from workflows.scenario import ChaosScenarioWorkflow

pytestmark = pytest.mark.timeout(120)


class BrokenHoldProbes(HealthyProbes):
    """Healthy probes whose hold probe fails for good (its dependency is gone)."""

    @activity.defn(name=names.PROBE_HOLD)
    async def probe_hold(self, probe: HoldProbeInput) -> HoldProbe:
        raise ApplicationError(
            "visibility store unreachable", type="ProbeBroken", non_retryable=True
        )


class WorkerLostHoldProbes(HealthyProbes):
    """Healthy probes whose first hold probe is lost with its worker.

    Its first attempts fail fast (a dependency blip, retried); the last one stops
    heartbeating, as one on a SIGKILLed worker does, until Temporal times it out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[int] = []

    @activity.defn(name=names.PROBE_HOLD)
    async def probe_hold(self, probe: HoldProbeInput) -> HoldProbe:
        attempt = activity.info().attempt
        self.attempts.append(attempt)
        if len(self.attempts) < policies.PROBE_RETRY.maximum_attempts:
            raise ApplicationError("visibility store blipped", type="ProbeBlip")
        if len(self.attempts) == policies.PROBE_RETRY.maximum_attempts:
            await asyncio.sleep(policies.PROBE_HEARTBEAT.total_seconds() + 3)
        return await super().probe_hold(probe)


class StuckBackend(MarkerBackend):
    """A marker backend whose recovery is refused (the backend lost its permissions)."""

    async def recover(self, request: FaultRequest) -> Recovery:
        raise FaultRejected("delete forbidden by RBAC")


class ExpiryBackend(MarkerBackend):
    """A marker backend that remembers each expiry it was told."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.told: list[tuple[str, datetime]] = []

    async def inject(self, request: FaultRequest):  # type: ignore[no-untyped-def]
        self.told.append(("inject", request.expires_at))
        return await super().inject(request)

    async def recover(self, request: FaultRequest) -> Recovery:
        self.told.append(("recover", request.expires_at))
        return await super().recover(request)


def _one(duration: str) -> ScenarioInput:
    return ScenarioInput(scenario=scenario(pod_kill(duration)))


async def _run(client: Client, backend: MarkerBackend, probes: HealthyProbes, run: ScenarioInput):  # type: ignore[no-untyped-def]
    task_queue = f"chaos-{uuid.uuid4()}"
    activities = [
        *ScenarioActivities("stand-in", ["bytebot"]).all(),
        *FaultActivities(backend).all(),
        *probes.all(),
    ]
    async with build_worker(client, task_queue, activities):
        handle = await client.start_workflow(
            ChaosScenarioWorkflow.run, run, id=f"t-{uuid.uuid4()}", task_queue=task_queue
        )
        report: ScenarioReport = await asyncio.wait_for(handle.result(), timeout=60)
        return report


async def test_a_probe_failing_during_the_hold_is_not_called_an_injection_failure(
    client: Client, tmp_path: Path
) -> None:
    backend = MarkerBackend(tmp_path / "faults")
    report = await _run(client, backend, BrokenHoldProbes(), _one("3s"))
    (fault,) = report.faults()
    assert fault.verdict is Verdict.FAIL
    assert fault.reason.startswith("a hold probe failed: ProbeBroken: visibility store"), (
        fault.reason
    )
    assert "injection failed" not in fault.reason
    assert fault.record and fault.record.status.value == "recovered"
    assert backend.injected() == []


async def test_a_probe_lost_with_its_worker_is_run_again_not_called_the_systems_failure(
    client: Client, tmp_path: Path
) -> None:
    probes = WorkerLostHoldProbes()
    report = await _run(client, MarkerBackend(tmp_path / "faults"), probes, _one("3s"))
    (fault,) = report.faults()
    assert fault.verdict is Verdict.PASS, fault.reason
    # Its attempts ran out on the lost worker; the probe was then run again, from attempt 1.
    last = policies.PROBE_RETRY.maximum_attempts
    assert probes.attempts[: last + 1] == [*range(1, last + 1), 1], probes.attempts


async def test_a_rejected_injection_is_named_as_such(client: Client, tmp_path: Path) -> None:
    backend = MarkerBackend(tmp_path / "faults", reject_actions=("pod-kill",))
    report = await _run(client, backend, HealthyProbes(), _one("2s"))
    (fault,) = report.faults()
    assert fault.reason.startswith("injection failed: FaultRejected: stand-in backend rejects")


async def test_a_childs_failure_reaches_the_report_with_its_root_cause(
    client: Client, tmp_path: Path
) -> None:
    backend = StuckBackend(tmp_path / "faults")
    report = await _run(client, backend, HealthyProbes(), _one("2s"))
    (fault,) = report.faults()
    assert fault.verdict is Verdict.FAIL
    assert fault.reason.startswith("the fault's run failed: RecoveryFailed: recovery of "), (
        fault.reason
    )
    assert "delete forbidden by RBAC" in fault.reason
    assert "Child Workflow execution failed" not in fault.reason
    assert fault.record and fault.record.status.value == "recovery-failed"


async def test_the_ledger_and_the_backend_agree_on_the_one_expiry(
    client: Client, tmp_path: Path
) -> None:
    backend = ExpiryBackend(tmp_path / "faults")
    report = await _run(client, backend, HealthyProbes(), _one("2s"))
    (row,) = report.ledger
    assert {at for _, at in backend.told} == {row.expires_at}, (backend.told, row.expires_at)
    assert row.injected_at and row.expires_at and row.expires_at > row.injected_at


async def test_inject_heartbeats_and_a_cancel_lets_the_injection_finish_first(
    tmp_path: Path,
) -> None:
    backend = MarkerBackend(tmp_path / "faults", inject_delay_s=3)
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    request = FaultRequest(
        fault_id="chaos-hb-00-pod-kill",
        scenario_id="t",
        step=0,
        fault=scenario(pod_kill("5s")).steps[0].faults[0],
        expires_at=datetime.now(UTC).replace(year=2100),
    )
    activities = FaultActivities(backend)
    task = asyncio.create_task(env.run(activities.inject_fault, request))
    await asyncio.sleep(1.5)
    assert beats and beats[0] == ("injecting",)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The half-begun injection was finished before the cancellation was reported, so the
    # recovery that follows finds (and removes) the whole fault.
    assert backend.injected() == [request.fault_id]
    assert json.loads(backend.marker(request).read_text())["expires_at"].startswith("2100")
