"""Running ChaosScenarioWorkflow in tests: inline scenarios and a worker harness.

The harness's worker uses the stand-in marker backend and healthy probes
(tests/support/standins.py), so orchestration tests isolate the orchestration itself.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.faults.activities import FaultActivities
from activities.scenario import ScenarioActivities
from models.scenario import Scenario, ScenarioInput
from tests.support.standins import HealthyProbes, MarkerBackend
from worker import build_worker
from workflows.scenario import ChaosScenarioWorkflow


def scenario(*faults: dict[str, Any], pause: str | None = None, **extra: Any) -> Scenario:
    """An inline scenario of one step per fault (durations as given), fast verification."""
    steps: list[dict[str, Any]] = [{"fault": f} for f in faults]
    if pause:
        steps.insert(1, {"pause": pause})
    return Scenario.model_validate(
        {
            "name": "t",
            "steps": steps,
            "verification": {"settle": "10s", "probe_interval": "1s"},
            **extra,
        }
    )


def pod_kill(duration: str = "2s", **extra: Any) -> dict[str, Any]:
    return {"action": "pod-kill", "duration": duration, **extra}


class Harness:
    """A worker on a fresh task queue with the marker backend and healthy probes."""

    def __init__(self, client: Client, backend: MarkerBackend) -> None:
        self.client = client
        self.backend = backend
        self.task_queue = f"chaos-{uuid.uuid4()}"

    def worker(self) -> Worker:
        return build_worker(
            self.client,
            self.task_queue,
            [
                *ScenarioActivities("stand-in", ["bytebot"]).all(),
                *FaultActivities(self.backend).all(),
                *HealthyProbes().all(),
            ],
        )

    async def start(self, run_input: ScenarioInput) -> Any:
        return await self.client.start_workflow(
            ChaosScenarioWorkflow.run,
            run_input,
            id=f"t-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )
