"""The orchestrator survives its own death: a chaos worker SIGKILLed in every phase of a fault.

Real parts only: a Temporal dev server of this module's own, Kafka, the stand-in's three
replicas behind the fault proxy with their load generator, `python worker.py` with the local
backend in its own process (killed with SIGKILL, then started again, as a crashed pod would
be), the real probes. One fault per family: network-delay and cpu-stress side by side on all
replicas, then pod-failure on one. An undisturbed run gives the verdicts; the run whose worker
dies in each phase of each fault must give the same ones and leave nothing behind (proxy
rules, hold files, stressors, unrecovered ledger entries, running canaries). A terminated
run's faults end through its children's recovery; when the children and the worker are gone
too, by their own expiry.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client

from models.report import ScenarioReport, Verdict
from models.scenario import Scenario, ScenarioInput
from tests.conftest import assert_eventually
from tests.support.kill_runs import (
    PHASES,
    EndedEarly,
    all_closed,
    kill_in_every_phase,
    wait_for_phase,
)
from tests.support.kill_stack import LocalChaosStack
from workflows.scenario import ChaosScenarioWorkflow

pytestmark = pytest.mark.timeout(900)
FAULTS = (
    {"action": "pod-failure", "duration": "15s"},
    # Mild on purpose: side by side on every replica of a busy 2-core machine, the seed's
    # 200 ms and 80 % made the stand-in's own 2 s Kafka emits time out in undisturbed runs.
    {"action": "network-delay", "duration": "15s", "latency": "50ms", "target": {"mode": "all"}},
    {
        "action": "cpu-stress",
        "duration": "15s",
        "cpu": {"workers": 1, "load_pct": 20},
        "target": {"mode": "all"},
    },
)
#: A terminated run's faults are recovered by its children (parent close policy
#: REQUEST_CANCEL) within this; their expiry (duration + EXPIRY_SLACK) bounds them anyway.
TERMINATE_BOUND_S = 30.0
#: After a fault's expiry, the proxy, the supervisor and stress-ng end it within this.
EXPIRY_MARGIN_S = 10.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChaosStack]:
    with LocalChaosStack(tmp_path_factory.mktemp("kill")) as stack:
        yield stack


def scenario(
    name: str, duration: str | None = None, *, side_by_side: bool = False
) -> ScenarioInput:
    """The three faults: network and stress side by side, then the pod fault on its own.

    The pod fault's restart would be an unexpected restart for the other two (their targets
    are all replicas), so only a run whose verdict is not judged has all three side by side.
    """
    faults = [{**f, "duration": duration or f["duration"]} for f in FAULTS]
    groups = [faults] if side_by_side else [faults[1:], faults[:1]]
    return ScenarioInput.model_validate(
        {
            "scenario": {
                "name": name,
                "continue_on_failure": True,
                "steps": [{"name": f"step-{i}", "faults": g} for i, g in enumerate(groups)],
                "verification": {"kafka": None, "settle": "30s", "probe_interval": "2s"},
            }
        }
    )


async def start(stack: LocalChaosStack, client: Client, run: ScenarioInput) -> Any:
    assert isinstance(run.scenario, Scenario)
    return await client.start_workflow(
        ChaosScenarioWorkflow.run,
        run,
        id=f"{run.scenario.name}-{uuid.uuid4().hex[:8]}",
        task_queue=stack.task_queue,
        execution_timeout=timedelta(minutes=12),
    )


def verdicts(report: ScenarioReport) -> dict[str, Any]:
    """Per fault: its verdict and each criterion's."""
    return {
        f.action: (f.verdict, {c.criterion: c.verdict for c in f.criteria}) for f in report.faults()
    }


async def no_open_canaries(stack: LocalChaosStack) -> None:
    open_canaries = await stack.open_canaries()
    assert open_canaries == [], open_canaries


async def test_a_worker_killed_in_every_phase_of_every_family_changes_no_verdict(
    stack: LocalChaosStack,
) -> None:
    client = await stack.client()
    assert stack.worker is not None
    undisturbed: ScenarioReport = await (await start(stack, client, scenario("calm"))).result()
    assert undisturbed.verdict is Verdict.PASS, undisturbed.reason

    handle = await start(stack, client, scenario("killed"))
    log = await kill_in_every_phase(client, handle, stack.worker)
    report: ScenarioReport = await handle.result()

    children = {k.child for k in log.kills}
    assert len(children) == len(FAULTS)
    for child in children:  # every phase of every fault saw its worker die
        assert log.phases_of(child) == set(PHASES), (child, log.phases_of(child))
    assert verdicts(report) == verdicts(undisturbed), report.reason
    assert [r.status.value for r in report.ledger] == ["recovered"] * len(FAULTS)
    assert stack.leftovers() == []
    await assert_eventually(lambda: no_open_canaries(stack), timeout_s=30)

    # How long past its planned end each fault was recovered, and after each kill.
    ledger = {f"{handle.id}.{r.fault_id}": r for r in report.ledger}
    print(f"\n{len(log.kills)} kills in {len(log.restart_s)} worker deaths; restarts (s):")
    print("  ", [round(s, 1) for s in log.restart_s])
    for child, row in ledger.items():
        assert row.injected_at and row.recovered_at
        planned = row.injected_at + timedelta(seconds=15)
        late = (row.recovered_at - planned).total_seconds()
        print(f"  {row.action}: recovered {late:.1f}s after its planned end")
        for kill in (k for k in log.kills if k.child == child):
            after = max(0.0, row.recovered_at.timestamp() - kill.at)
            print(f"    killed in {kill.phase:>16}: recovered {after:5.1f}s later")


@pytest.mark.parametrize("phase", ["inject", "hold", "recover"])
async def test_a_run_terminated_in_a_phase_has_its_faults_recovered_within_the_bound(
    stack: LocalChaosStack, phase: str
) -> None:
    client = await stack.client()
    for attempt in range(3):  # a run whose system was not steady yet ends before `phase`
        name = f"terminated-{phase}-{attempt}"
        handle = await start(stack, client, scenario(name, "10s", side_by_side=True))
        try:
            landed, children = await wait_for_phase(client, handle, phase)
            break
        except EndedEarly:
            if attempt == 2:
                raise
            with contextlib.suppress(Exception):  # the run's own outcome is not this test's
                await handle.result()
    await handle.terminate(f"test: terminated in {phase}")
    terminated = time.monotonic()

    async def recovered() -> None:
        assert await all_closed(client, children)  # none can inject anything any more
        assert stack.leftovers() == []

    await assert_eventually(recovered, timeout_s=TERMINATE_BOUND_S + 30)
    took = time.monotonic() - terminated
    print(f"\nterminated in {landed}: everything recovered {took:.1f}s later")
    assert took <= TERMINATE_BOUND_S
    await assert_eventually(lambda: no_open_canaries(stack), timeout_s=60)


async def test_faults_whose_run_children_and_worker_died_end_by_their_expiry(
    stack: LocalChaosStack,
) -> None:
    client = await stack.client()
    assert stack.worker is not None
    handle = await start(stack, client, scenario("orphaned", "5s", side_by_side=True))
    _, children = await wait_for_phase(client, handle, "hold")
    stack.worker.kill()
    for child in children:
        await client.get_workflow_handle(child).terminate("test: orphaned")
    await handle.terminate("test: orphaned")
    assert stack.effects()  # still in force: nobody will recover them
    expiry = max(e.expires_at for e in stack.ledger_entries())
    await assert_eventually(lambda: stack.effects() == [], timeout_s=expiry - time.time() + 60)
    ended = time.time()
    print(f"\nexpired faults ended {ended - expiry:+.1f}s from their expiry")
    assert ended <= expiry + EXPIRY_MARGIN_S
    stack.worker.start()  # its janitor closes the ledger entries whose expiry passed
    assert stack.leftovers() == []
    await assert_eventually(lambda: no_open_canaries(stack), timeout_s=60)
