"""ChaosScenarioWorkflow against the real dev server: orchestration, ledger, cleanup, signals.

The fault backend and the probes are stand-ins (tests/support/standins.py) so these tests
isolate the orchestration guarantees; the real backends and probes have their own tests.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from models.report import ScenarioReport, Verdict
from models.run import RunStatus
from models.scenario import ScenarioInput
from tests.conftest import assert_eventually
from tests.support.scenario_runs import Harness, pod_kill, scenario
from tests.support.standins import MarkerBackend
from workflows.scenario import ChaosScenarioWorkflow


async def test_a_two_fault_run_passes_and_leaves_a_complete_ledger(harness: Harness) -> None:
    handle = await harness.start(
        ScenarioInput(
            scenario=scenario(
                pod_kill(),
                {"action": "network-delay", "duration": "2s"},
                pause="1s",
            )
        )
    )
    await assert_eventually(lambda: harness.backend.injected(), timeout_s=20)
    report: ScenarioReport = await handle.result()
    assert report.verdict is Verdict.PASS, report.reason
    assert [s.verdict for s in report.steps] == [Verdict.PASS] * 3
    assert [r.status.value for r in report.ledger] == ["recovered", "recovered"]
    assert all(r.injected_at and r.recovered_at for r in report.ledger)
    assert harness.backend.injected() == []
    assert report.score_pct == 100.0
    assert [f.time_to_recovery_s for f in report.faults()] == [0.1, 0.1]


async def test_a_failed_step_stops_the_run_and_recovers(client: Client, tmp_path: Path) -> None:
    h = Harness(client, MarkerBackend(tmp_path / "faults", reject_actions=("network-delay",)))
    async with h.worker():
        handle = await h.start(
            ScenarioInput(
                scenario=scenario(
                    pod_kill(),
                    {"action": "network-delay", "duration": "2s"},
                    pod_kill(name="again"),
                )
            )
        )
        report: ScenarioReport = await handle.result()
    assert report.verdict is Verdict.FAIL
    assert [s.verdict for s in report.steps] == [Verdict.PASS, Verdict.FAIL, Verdict.NOT_RUN]
    assert "stand-in backend rejects network-delay" in report.steps[1].faults[0].reason
    assert h.backend.injected() == []


async def test_a_cancelled_run_recovers_its_fault(harness: Harness) -> None:
    handle = await harness.start(ScenarioInput(scenario=scenario(pod_kill("30s"))))
    await assert_eventually(lambda: harness.backend.injected(), timeout_s=20)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    await assert_eventually(lambda: harness.backend.injected() == [], timeout_s=20)


async def test_a_terminated_run_still_recovers_through_its_child(harness: Harness) -> None:
    handle = await harness.start(ScenarioInput(scenario=scenario(pod_kill("30s"))))
    await assert_eventually(lambda: harness.backend.injected(), timeout_s=20)
    await handle.terminate("operator pulled the plug")
    # The child gets a cancel request (parent close policy) and recovers in its finally.
    await assert_eventually(lambda: harness.backend.injected() == [], timeout_s=20)
    assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED


async def test_abort_recovers_at_once_and_ends_aborted(harness: Harness) -> None:
    handle = await harness.start(ScenarioInput(scenario=scenario(pod_kill("60s"), pod_kill())))
    await assert_eventually(lambda: harness.backend.injected(), timeout_s=20)
    await handle.signal(ChaosScenarioWorkflow.abort, "error budget exhausted")
    report: ScenarioReport = await asyncio.wait_for(handle.result(), timeout=30)
    assert report.verdict is Verdict.ABORTED
    assert report.reason == "error budget exhausted"
    assert report.steps[1].verdict is Verdict.NOT_RUN
    assert harness.backend.injected() == []


async def test_pause_holds_before_the_next_step_until_resumed(harness: Harness) -> None:
    two_steps = scenario(pod_kill("2s"), pod_kill("1s", name="second"))
    handle = await harness.start(ScenarioInput(scenario=two_steps))
    await assert_eventually(lambda: harness.backend.injected(), timeout_s=20)
    await handle.signal(ChaosScenarioWorkflow.pause)  # lands during step 0
    await assert_eventually(lambda: _status_is(handle, phase="paused"), timeout_s=30)
    status: RunStatus = await handle.query(ChaosScenarioWorkflow.status)
    assert status.paused and status.step == 0
    assert [r.status.value for r in status.ledger] == ["recovered"]
    await handle.signal(ChaosScenarioWorkflow.resume)
    report: ScenarioReport = await handle.result()
    assert report.verdict is Verdict.PASS, report.reason


async def _status_is(handle: Any, phase: str) -> bool:
    status: RunStatus = await handle.query(ChaosScenarioWorkflow.status)
    return status.phase == phase


async def test_the_status_query_shows_the_running_fault_and_time_left(harness: Harness) -> None:
    handle = await harness.start(ScenarioInput(scenario=scenario(pod_kill("20s"))))
    await assert_eventually(lambda: harness.backend.injected(), timeout_s=20)

    async def injected_in_ledger() -> RunStatus:
        status: RunStatus = await handle.query(ChaosScenarioWorkflow.status)
        assert status.ledger and status.ledger[0].status.value == "injected"
        return status

    status = await assert_eventually(injected_in_ledger, timeout_s=10)
    assert status.running_faults == [status.ledger[0].fault_id]
    assert status.step == 0 and status.step_label == "pod-kill"
    assert status.time_left_s is not None and 5 < status.time_left_s <= 20 + 45
    assert status.ledger[0].targets[0].name == "replica-0"
    await handle.signal(ChaosScenarioWorkflow.abort, "done looking")
    await handle.result()


async def test_the_verdict_is_searchable(harness: Harness, client: Client) -> None:
    handle = await harness.start(ScenarioInput(scenario=scenario(pod_kill("1s"))))
    await handle.result()

    async def listed() -> bool:
        query = f"WorkflowId='{handle.id}' AND ChaosVerdict='pass' AND ChaosScenario='t'"
        return [w.id async for w in client.list_workflows(query)] == [handle.id]

    await assert_eventually(listed, timeout_s=15)


@pytest.mark.parametrize(
    ("bad_input", "message"),
    [
        ({"scenario": "no-such-scenario"}, "unknown scenario 'no-such-scenario'"),
        ({"scenario": {"name": "x", "steps": [{"fault": {"action": "pod-kill"}}]}}, "duration"),
        (
            {
                "scenario": {
                    "name": "x",
                    "steps": [{"fault": {"action": "pod-kill", "duration": "2h"}}],
                }
            },  # noqa: E501
            "at most",
        ),
        ({"scenario": "pod-failure", "dryrun": True}, "dryrun"),
        (
            {
                "scenario": {
                    "name": "x",
                    "steps": [
                        {
                            "fault": {
                                "action": "pod-kill",
                                "duration": "5s",
                                "target": {"namespace": "kube-system"},
                            }
                        }
                    ],
                }
            },
            "kube-system",
        ),
    ],
    ids=[
        "unknown-scenario",
        "missing-duration",
        "unbounded-duration",
        "unknown-field",
        "namespace-not-allowed",
    ],
)
async def test_invalid_input_fails_at_once_and_injects_nothing(
    harness: Harness, client: Client, bad_input: dict[str, Any], message: str
) -> None:
    handle = await client.start_workflow(
        "ChaosScenarioWorkflow",
        bad_input,
        id=f"t-{uuid.uuid4()}",
        task_queue=harness.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), timeout=15)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert message in str(cause.message)
    assert harness.backend.injected() == []
