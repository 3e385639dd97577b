"""In-process goalRunWorkflow workers for the stand-in's tests, on their own lanes.

`WorkerFactory` starts a real Temporal worker with the stand-in's workflow and activities (or a
test's replacement for one activity, registered under the same name) and a real Kafka sink,
with the process runtime (`standin.runtime`) set to the test's scale and defects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from devstack.kafka import KafkaBroker
from standin import runtime
from standin.activities import EventSink, GoalActivities
from standin.goal_run import GoalRunWorkflow, workflow_runner
from standin.kafka_sink import KafkaEventSink
from standin.models import FaultyMode
from tests.support.standin_events import Lane

TEST_SCALE = 0.05


class WorkerFactory:
    """Starts workers; `close` stops them all and restores the default runtime."""

    def __init__(self, client: Client, broker: KafkaBroker) -> None:
        self.client = client
        self.broker = broker
        self._started: list[tuple[Worker, asyncio.Task[None], KafkaEventSink]] = []

    def sink(self, lane: Lane) -> KafkaEventSink:
        """A real sink on the lane's topics."""
        return KafkaEventSink(self.broker.bootstrap_direct, topics=lane.topics, send_timeout_s=5)

    async def start(
        self,
        lane: Lane,
        *faulty: FaultyMode,
        wrap_sink: Callable[[KafkaEventSink], EventSink] | None = None,
        replace: Callable[[GoalActivities], list[Any]] | None = None,
    ) -> GoalActivities:
        """A worker on ``lane``; ``replace`` may swap activities (same names)."""
        rt = runtime.Runtime(time_scale=TEST_SCALE, faulty=frozenset(faulty))
        runtime.configure(rt)
        kafka = self.sink(lane)
        sink: EventSink = wrap_sink(kafka) if wrap_sink else kafka
        acts = GoalActivities(sink, rt, lane.topics)
        worker = Worker(
            self.client,
            task_queue=lane.task_queue,
            workflows=[GoalRunWorkflow],
            workflow_runner=workflow_runner(),
            activities=replace(acts) if replace else acts.all(),
        )
        task = asyncio.create_task(worker.run())
        self._started.append((worker, task, kafka))
        return acts

    async def close(self) -> None:
        """Stop every worker and sink."""
        for worker, task, kafka in self._started:
            await worker.shutdown()
            await asyncio.gather(task, return_exceptions=True)
            await kafka.stop()
        runtime.configure(runtime.Runtime())
