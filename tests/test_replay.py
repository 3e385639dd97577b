"""Replay recorded histories against today's workflow code (the versioning safety net).

`tests/histories/*.json` are histories of real runs (a scenario run and its fault children).
A change that reorders workflow commands fails here and must go behind `workflow.patched()`.
Regenerate after an intended, patched change with:
`.venv/bin/python -m tests.test_replay record`.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, workflow_runner

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize(
    "path", sorted(HISTORIES.glob("*.json")), ids=lambda p: "fault" if "." in p.stem else "scenario"
)
async def test_recorded_histories_replay_on_current_code(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        data_converter=pydantic_data_converter,
    )
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    await replayer.replay_workflow(history)


def test_there_are_histories_to_replay() -> None:
    assert len(list(HISTORIES.glob("*.json"))) >= 2


async def _record() -> None:
    from devstack.temporal import TemporalDevServer
    from models.scenario import ScenarioInput
    from tests.support.scenario_runs import Harness, pod_kill, scenario
    from tests.support.standins import MarkerBackend

    with TemporalDevServer() as server:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        harness = Harness(client, MarkerBackend(Path(tempfile.mkdtemp())))
        async with harness.worker():
            run = ScenarioInput(scenario=scenario(pod_kill("2s"), pause="1s"))
            handle = await harness.start(run)
            await handle.result()
        HISTORIES.mkdir(exist_ok=True)
        for path in HISTORIES.glob("*.json"):
            path.unlink()
        async for wf in client.list_workflows(f"WorkflowId STARTS_WITH '{handle.id}'"):
            history = await client.get_workflow_handle(wf.id).fetch_history()
            # The file is named by the workflow id: replay needs the original one.
            (HISTORIES / f"{wf.id}.json").write_text(history.to_json())


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    asyncio.run(_record())
