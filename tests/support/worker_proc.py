"""A chaos worker in its own process with the stand-in marker backend and healthy probes.

Used by the test that kills a worker mid-step: `python -m tests.support.worker_proc ADDRESS
TASK_QUEUE MARKER_DIR`. It prints "ready" once polling.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.faults.activities import FaultActivities
from activities.scenario import ScenarioActivities
from tests.support.standins import HealthyProbes, MarkerBackend
from worker import build_worker


async def serve(client: Client, task_queue: str, activities: Sequence[object]) -> None:
    """Run a chaos worker with these activities until killed; print "ready" once polling."""
    async with build_worker(client, task_queue, list(activities)):
        print("ready", flush=True)
        await asyncio.Event().wait()


async def main(address: str, task_queue: str, marker_dir: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    await serve(
        client,
        task_queue,
        [
            *ScenarioActivities("stand-in", ["bytebot"]).all(),
            *FaultActivities(MarkerBackend(Path(marker_dir))).all(),
            *HealthyProbes().all(),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
