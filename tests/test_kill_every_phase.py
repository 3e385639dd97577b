"""The orchestrator survives its own death: a chaos worker SIGKILLed in every phase of a fault.

Real parts only: a Temporal dev server of this module's own, Kafka, the stand-in's three
replicas behind the fault proxy with their load generator, `python worker.py` with the local
backend in its own process (killed with SIGKILL, then started again, as a crashed pod would
be), the real probes. One fault per family (pod-failure, network-delay, cpu-stress), one step
each. An undisturbed run gives the verdicts; the run whose worker dies in each phase of each
fault must give the same ones and leave nothing behind (proxy rules, hold files, stressors,
unrecovered ledger entries, running canaries).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.conftest import assert_eventually
from tests.support.kill_runs import PHASES, kill_in_every_phase
from tests.support.kill_stack import LocalChaosStack
from workflows.scenario import ChaosScenarioWorkflow

pytestmark = pytest.mark.timeout(900)
FAULTS = (
    {"action": "pod-failure", "duration": "15s"},
    {"action": "network-delay", "duration": "15s", "latency": "200ms"},
    {"action": "cpu-stress", "duration": "15s", "cpu": {"workers": 1, "load_pct": 80}},
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChaosStack]:
    with LocalChaosStack(tmp_path_factory.mktemp("kill")) as stack:
        yield stack


def scenario(name: str) -> ScenarioInput:
    return ScenarioInput.model_validate(
        {
            "scenario": {
                "name": name,
                "continue_on_failure": True,
                "steps": [{"name": f["action"], "fault": f} for f in FAULTS],
                "verification": {"kafka": None, "settle": "30s", "probe_interval": "2s"},
            }
        }
    )


def verdicts(report: ScenarioReport) -> dict[str, Any]:
    """Per fault: its verdict and each criterion's."""
    return {
        f.action: (f.verdict, {c.criterion: c.verdict for c in f.criteria}) for f in report.faults()
    }


async def test_a_worker_killed_in_every_phase_of_every_family_changes_no_verdict(
    stack: LocalChaosStack,
) -> None:
    client = await stack.client()
    assert stack.worker is not None

    async def start(name: str) -> Any:
        return await client.start_workflow(
            ChaosScenarioWorkflow.run,
            scenario(name),
            id=f"{name}-{uuid.uuid4().hex[:8]}",
            task_queue=stack.task_queue,
            execution_timeout=timedelta(minutes=12),
        )

    undisturbed: ScenarioReport = await (await start("undisturbed")).result()
    assert undisturbed.verdict is Verdict.PASS, undisturbed.reason

    handle = await start("killed")
    log = await kill_in_every_phase(client, handle, stack.worker)
    report: ScenarioReport = await handle.result()

    # Every phase of every fault saw its worker die.
    children = {k.child for k in log.kills}
    assert len(children) == len(FAULTS)
    for child in children:
        assert log.phases_of(child) == set(PHASES), (child, log.phases_of(child))
    assert verdicts(report) == verdicts(undisturbed), report.reason
    assert [r.status.value for r in report.ledger] == ["recovered"] * len(FAULTS)
    assert stack.leftovers() == []
    assert await assert_eventually(lambda: _none(stack), timeout_s=30)

    # Time from each kill until its fault was recovered (0: recovered before the kill).
    ledger = {f"{handle.id}.{r.fault_id}": r for r in report.ledger}
    rows = []
    for kill in log.kills:
        done = ledger[kill.child].recovered_at
        assert done is not None
        rows.append((ledger[kill.child].action, kill.phase, max(0.0, done.timestamp() - kill.at)))
    print("\nkill phase -> seconds until recovered")
    for row in rows:
        print(f"  {row[0]:>10} {row[1]:>17} {row[2]:6.1f}")
    print(f"  worker restarts: {[round(s, 1) for s in log.restart_s]}, at {time.ctime()}")


async def _none(stack: LocalChaosStack) -> bool:
    open_canaries = await stack.open_canaries()
    assert open_canaries == [], open_canaries
    return True
