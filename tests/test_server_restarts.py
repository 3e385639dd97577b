"""The Temporal server fails too: restarted in the middle of a hold and of a verification.

Real parts only, as in tests/test_kill_every_phase.py: a Temporal dev server of this module's
own on a fixed port with a persistent database (so it comes back with every run where it
was), Kafka, the stand-in with its load, `python worker.py` with the local backend and the
real probes. While the server is down the chaos worker, the stand-in's replicas and its load
generator all lose it, and reconnect by themselves when it is back. (The Kafka broker's
restart during the ordering check: tests/test_kafka_checks.py.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.conftest import assert_eventually
from tests.support.kill_runs import children_of
from tests.support.kill_stack import LocalChaosStack, phase_of
from workflows.scenario import ChaosScenarioWorkflow

pytestmark = pytest.mark.timeout(600)
DOWN_S = 3  # how long the server stays down


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChaosStack]:
    with LocalChaosStack(tmp_path_factory.mktemp("restarts")) as stack:
        yield stack


@pytest.mark.parametrize("phase", ["hold", "verify"])
async def test_a_server_restarted_mid_phase_lets_the_run_resume_and_pass(
    stack: LocalChaosStack, phase: str
) -> None:
    client = await stack.client()
    run = ScenarioInput.model_validate(
        {
            "scenario": {
                "name": f"restart-in-{phase}",
                "steps": [
                    {
                        "fault": {
                            "action": "network-delay",
                            "duration": "12s",
                            "latency": "200ms",
                            "target": {"mode": "all"},
                        }
                    }
                ],
                "verification": {"kafka": None, "settle": "40s", "probe_interval": "2s"},
            }
        }
    )
    handle = await client.start_workflow(
        ChaosScenarioWorkflow.run,
        run,
        id=f"restart-{phase}-{uuid.uuid4().hex[:8]}",
        task_queue=stack.task_queue,
        execution_timeout=timedelta(minutes=8),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        children = await children_of(client, handle)
        if children and await phase_of(client.get_workflow_handle(children[0])) == phase:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the fault never reached {phase}")

    stopped = time.monotonic()
    await asyncio.to_thread(stack.temporal.stop)
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(stack.temporal.start)
    print(f"\nserver down {time.monotonic() - stopped:.1f}s in {phase}")

    client = await stack.client()  # the old connection may have been dropped with the server
    report = await client.get_workflow_handle(handle.id, result_type=ScenarioReport).result()
    assert report.verdict is Verdict.PASS, report.reason
    assert [r.status.value for r in report.ledger] == ["recovered"]
    assert stack.leftovers() == []

    async def no_open_canaries() -> None:
        assert await stack.open_canaries() == []

    await assert_eventually(no_open_canaries, timeout_s=60)
