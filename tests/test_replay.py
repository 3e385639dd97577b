"""Replay recorded histories of every release against today's workflow code.

`tests/histories/<release>/*.json` are histories of real runs (a scenario run and its fault
children, each file named by its workflow id), kept per release and never replaced: a run in
flight across an upgrade is a history of an older release replayed by newer code. A change
that reorders workflow commands fails here and must go behind `workflow.patched()` (README,
"Changing a workflow"). Record the current release's histories (a full scenario with Kafka
checks, an abort, a cancel) into a new directory with:
`.venv/bin/python -m tests.test_replay record [RELEASE]` (default: today's date, UTC).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, workflow_runner

HISTORIES = Path(__file__).parent / "histories"
RECORDED = sorted(HISTORIES.glob("*/*.json"))


def _id(path: Path) -> str:
    kind = "fault" if "." in path.stem else "scenario"
    return f"{path.parent.name}/{kind}:{path.stem[-12:]}"


@pytest.mark.parametrize("path", RECORDED, ids=_id)
async def test_recorded_histories_replay_on_current_code(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        data_converter=pydantic_data_converter,
    )
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    await replayer.replay_workflow(history)


def test_every_release_keeps_its_histories() -> None:
    releases = sorted({p.parent.name for p in RECORDED})
    assert len(releases) >= 2, releases
    for release in releases:
        kept = [p for p in RECORDED if p.parent.name == release]
        assert any("." not in p.stem for p in kept), f"{release}: no scenario history"
        assert any("." in p.stem for p in kept), f"{release}: no fault history"


async def _record(release: str) -> None:
    """Record a full scenario (two steps, parallel faults, a pause, Kafka checks), an abort and
    a cancel on the stand-in backend and probes (the commands are the workflows' own)."""
    from devstack.temporal import TemporalDevServer
    from models.scenario import Scenario, ScenarioInput
    from tests.conftest import assert_eventually
    from tests.support.scenario_runs import Harness, pod_kill, scenario
    from tests.support.standins import MarkerBackend
    from workflows.scenario import ChaosScenarioWorkflow

    out = HISTORIES / release
    if out.exists():
        raise SystemExit(f"{out} exists: a release's histories are kept, never replaced")
    with TemporalDevServer() as server:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        harness = Harness(client, MarkerBackend(Path(tempfile.mkdtemp())))
        ids = []
        async with harness.worker():
            full = Scenario.model_validate(
                {
                    "name": "recorded",
                    "steps": [
                        {"fault": pod_kill("3s")},
                        {"pause": "1s"},
                        {
                            "faults": [
                                pod_kill("2s", name="kill-together"),
                                {"action": "network-delay", "duration": "2s"},
                            ]
                        },
                    ],
                    # Kafka checks on (the default target): the positions and the event check.
                    "verification": {"settle": "10s", "probe_interval": "1s"},
                }
            )
            handle = await harness.start(ScenarioInput(scenario=full))
            await handle.result()
            ids.append(handle.id)
            for end in ("abort", "cancel"):
                handle = await harness.start(ScenarioInput(scenario=scenario(pod_kill("30s"))))
                await assert_eventually(harness.backend.injected, timeout_s=30)
                await asyncio.sleep(2)  # into the hold: a probe or two
                if end == "abort":
                    await handle.signal(ChaosScenarioWorkflow.abort, "recorded abort")
                else:
                    await handle.cancel()
                with contextlib.suppress(WorkflowFailureError):  # the cancelled run fails
                    await handle.result()
                await assert_eventually(lambda: not harness.backend.injected(), timeout_s=30)
                ids.append(handle.id)
        out.mkdir(parents=True)
        for scenario_id in ids:
            async for wf in client.list_workflows(f"WorkflowId STARTS_WITH '{scenario_id}'"):
                history = await client.get_workflow_handle(wf.id).fetch_history()
                # The file is named by the workflow id: replay needs the original one.
                (out / f"{wf.id}.json").write_text(history.to_json())
        print(f"recorded {len(list(out.glob('*.json')))} histories in {out}")


if __name__ == "__main__" and sys.argv[1:2] == ["record"]:
    asyncio.run(_record(sys.argv[2] if len(sys.argv) > 2 else f"{datetime.now(UTC):%Y-%m-%d}"))
