"""ByteBot's API, as far as goal runs go: starts goalRunWorkflows at a steady rate.

It talks to Temporal directly (never through a replica's fault proxy) and keeps at most
``max_in_flight`` goal runs open, starting one every ``1/rate`` seconds while below that.
Ids are ``goal-<token>-<n>`` (``token`` is random per generator, ``n`` counts up), so a checker
can tell its runs apart. Every ``canary_every``-th run has goal ``"canary"``.
It counts outcomes and writes them to ``stats_file`` (if given) as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from pathlib import Path

import structlog
from pydantic import Field
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter

from standin.models import (
    DEFAULT_TASK_QUEUE,
    GOAL_RUN_WORKFLOW,
    Frozen,
    GoalRunInput,
    GoalRunResult,
    expected_output,
)
from standin.state import write_atomic

log = structlog.get_logger(__name__)


class LoadSettings(Frozen):
    """How much load, of what shape, against which Temporal."""

    temporal_address: str
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    rate: float = Field(default=2.0, gt=0, description="Goal runs started per second.")
    max_in_flight: int = Field(default=20, ge=1)
    steps: int = Field(default=3, ge=1, le=50)
    step_seconds: float = Field(default=0.5, ge=0)
    canary_every: int = Field(default=10, ge=0, description="Every n-th run is a canary; 0: none.")
    id_prefix: str = Field(default_factory=lambda: f"goal-{secrets.token_hex(3)}")
    stats_file: Path | None = None


class LoadStats(Frozen):
    """What the generator has done so far."""

    id_prefix: str
    started: int = 0
    completed: int = 0
    failed: int = 0
    wrong_results: int = 0
    start_errors: int = 0
    in_flight: int = 0


class LoadGenerator:
    """Starts goal runs until stopped and follows each to its end."""

    def __init__(self, settings: LoadSettings) -> None:
        self.settings = settings
        self._counts = {
            "started": 0,
            "completed": 0,
            "failed": 0,
            "wrong_results": 0,
            "start_errors": 0,
        }
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def stats(self) -> LoadStats:
        """A snapshot of the counts."""
        return LoadStats(
            id_prefix=self.settings.id_prefix, in_flight=len(self._tasks), **self._counts
        )

    async def run(self, stop: asyncio.Event, client: Client | None = None) -> None:
        """Start goal runs at the configured rate until ``stop`` is set.

        Runs still open at the end are left to Temporal; the generator only stops following them.
        """
        s = self.settings
        client = client or await Client.connect(
            s.temporal_address, namespace=s.namespace, data_converter=pydantic_data_converter
        )
        log.info("load_started", rate=s.rate, max_in_flight=s.max_in_flight, prefix=s.id_prefix)
        interval = 1.0 / s.rate
        next_at = time.monotonic()
        n = 0
        try:
            while not stop.is_set():
                if len(self._tasks) < s.max_in_flight:
                    n += 1
                    task = asyncio.create_task(self._one(client, n))
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
                next_at += interval
                delay = max(0.0, next_at - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._write_stats()
            log.info("load_stopped", **self.stats.model_dump())

    async def _one(self, client: Client, n: int) -> None:
        s = self.settings
        goal = "canary" if s.canary_every and n % s.canary_every == 0 else "demo"
        goal_run = GoalRunInput(
            goal_run_id=f"{s.id_prefix}-{n:06d}",
            goal=goal,
            steps=s.steps,
            step_seconds=s.step_seconds,
        )
        try:
            handle = await client.start_workflow(
                GOAL_RUN_WORKFLOW,
                goal_run,
                id=goal_run.goal_run_id,
                task_queue=s.task_queue,
                result_type=GoalRunResult,
            )
        except Exception as e:  # Temporal unreachable or overloaded: count it, keep going
            self._counts["start_errors"] += 1
            log.warning("goal_run_not_started", goal_run_id=goal_run.goal_run_id, error=repr(e))
            return
        self._counts["started"] += 1
        try:
            result = await handle.result()
        except WorkflowFailureError as e:
            self._counts["failed"] += 1
            log.warning("goal_run_failed", goal_run_id=goal_run.goal_run_id, error=str(e.cause))
            return
        self._counts["completed"] += 1
        if result.output != expected_output(goal, s.steps):
            self._counts["wrong_results"] += 1
            log.warning("goal_run_wrong_result", goal_run_id=goal_run.goal_run_id)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("goal_run_follow_failed", error=repr(task.exception()))
        self._write_stats()

    def _write_stats(self) -> None:
        if self.settings.stats_file is not None:
            write_atomic(self.settings.stats_file, json.dumps(self.stats.model_dump()))
