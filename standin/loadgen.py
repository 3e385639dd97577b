"""ByteBot's API, as far as goal runs go: starts goalRunWorkflows at a steady rate and plays
the user around them (approves, rejects, pauses, resumes, cancels).

It talks to Temporal directly (never through a replica's fault proxy) and keeps at most
``max_in_flight`` goal runs open. Ids are ``goal-<token>-<n>``; every run is a well-formed
`GoalRunInput` whose description asks the stand-in planner (`standin.planner`) for a lifecycle
at the configured shares: a high-risk step approved (or rejected) after ``approve_after_s``, a
flaky step, a replan, a skipped step, a pause of ``pause_for_s``, a cancel. None of them makes a
healthy run fail. It counts outcomes into ``stats_file`` as it goes; a COMPLETED result whose
``stepsCompleted`` differs from the run's final ``ByteBotStepCount`` counts as wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections import Counter
from pathlib import Path

import structlog
from pydantic import Field
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from standin.contract import (
    APPROVE_STEP,
    CANCEL_GOAL,
    GET_PROGRESS,
    GOAL_RUN_WORKFLOW,
    NAMESPACE,
    PAUSE_GOAL,
    REJECT_STEP,
    RESUME_GOAL,
    TASK_QUEUE,
    Camel,
    GoalRunInput,
    GoalRunResult,
    Progress,
)
from standin.deployment.state import write_atomic

log = structlog.get_logger(__name__)
STEP_COUNT = SearchAttributeKey.for_int("ByteBotStepCount")


class LoadSettings(Camel):
    """How much load, of what shape, against which Temporal (times already scaled)."""

    temporal_address: str
    namespace: str = NAMESPACE
    task_queue: str = TASK_QUEUE
    tenant_id: str = "tenant-load"
    rate: float = Field(default=2.0, gt=0, description="Goal runs started per second.")
    max_in_flight: int = Field(default=20, ge=1)
    steps: int = Field(default=3, ge=1, le=10)
    step_ms: int = Field(default=3000, ge=0, description="Unscaled work per step.")
    high_risk_share: float = Field(default=0.1, ge=0, le=1)
    reject_share: float = Field(default=0.2, ge=0, le=1, description="Of the approvals.")
    flaky_share: float = Field(default=0.1, ge=0, le=1)
    replan_share: float = Field(default=0.05, ge=0, le=1)
    skip_share: float = Field(default=0.05, ge=0, le=1)
    pause_share: float = Field(default=0.05, ge=0, le=1)
    cancel_share: float = Field(default=0.02, ge=0, le=1)
    approve_after_s: float = Field(default=2.0, ge=0)
    pause_for_s: float = Field(default=2.0, ge=0)
    id_prefix: str = Field(default_factory=lambda: f"goal-{secrets.token_hex(3)}")
    stats_file: Path | None = None


class LoadStats(Camel):
    """What the generator has seen so far."""

    id_prefix: str
    started: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    wrong_results: int = 0
    start_errors: int = 0
    follow_errors: int = 0
    in_flight: int = 0


class LoadGenerator:
    """Starts goal runs until stopped and follows each to its end."""

    def __init__(self, settings: LoadSettings) -> None:
        self.settings = settings
        self._counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def stats(self) -> LoadStats:
        """A snapshot of the counts."""
        return LoadStats(
            id_prefix=self.settings.id_prefix, in_flight=len(self._tasks), **self._counts
        )

    async def run(self, stop: asyncio.Event, client: Client | None = None) -> None:
        """Start goal runs at the configured rate until ``stop`` is set."""
        s = self.settings
        client = client or await Client.connect(
            s.temporal_address, namespace=s.namespace, data_converter=pydantic_data_converter
        )
        log.info("load_started", rate=s.rate, max_in_flight=s.max_in_flight, prefix=s.id_prefix)
        next_at, n = time.monotonic(), 0
        try:
            while not stop.is_set():
                if len(self._tasks) < s.max_in_flight:
                    n += 1
                    task = asyncio.create_task(self._one(client, n))
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
                next_at += 1.0 / s.rate
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._write_stats()
            log.info("load_stopped", **self.stats.model_dump())

    def goal_for(self, n: int) -> tuple[GoalRunInput, set[str]]:
        """The n-th goal run's input and the user actions planned for it (deterministic)."""
        s = self.settings
        rng = random.Random(f"{s.id_prefix}-{n}")
        tags = {
            t
            for t, share in (
                ("high-risk", s.high_risk_share),
                ("flaky", s.flaky_share),
                ("replan", s.replan_share),
                ("skip", s.skip_share),
            )
            if rng.random() < share
        }
        actions = {
            a
            for a, share in (
                ("pause", s.pause_share),
                ("cancel", s.cancel_share),
                ("reject", s.reject_share),
            )
            if rng.random() < share
        }
        words = " ".join(f"[{t}]" for t in sorted(tags))
        goal = GoalRunInput(
            goal_run_id=f"{s.id_prefix}-{n:06d}",
            tenant_id=s.tenant_id,
            user_id="load-generator",
            goal_description=f"load {n} [steps={s.steps}] [step-ms={s.step_ms}] {words}".strip(),
        )
        return goal, actions | ({"approve"} if "high-risk" in tags else set())

    async def _one(self, client: Client, n: int) -> None:
        goal, actions = self.goal_for(n)
        try:
            handle = await client.start_workflow(
                GOAL_RUN_WORKFLOW,
                goal,
                id=goal.goal_run_id,
                task_queue=self.settings.task_queue,
                result_type=GoalRunResult,
            )
        except Exception as e:  # Temporal unreachable or overloaded: count it, keep going
            self._counts["start_errors"] += 1
            log.warning("goal_run_not_started", goal_run_id=goal.goal_run_id, error=repr(e))
            return
        self._counts["started"] += 1
        user = asyncio.create_task(self._play_user(handle, actions))
        try:
            result = await handle.result()
        except Exception as e:  # a goal run never fails its execution; this one did
            self._counts["follow_errors"] += 1
            log.warning("goal_run_execution_failed", goal_run_id=goal.goal_run_id, error=repr(e))
            return
        finally:
            user.cancel()
        await self._count(handle, goal, result)

    async def _count(
        self,
        handle: WorkflowHandle[object, GoalRunResult],
        goal: GoalRunInput,
        result: GoalRunResult,
    ) -> None:
        status = result.status.value
        key = {"COMPLETED": "completed", "FAILED": "failed", "CANCELLED": "cancelled"}
        self._counts[key.get(status, "timed_out")] += 1
        if status == "COMPLETED":
            steps = (await handle.describe()).typed_search_attributes.get(STEP_COUNT)
            if result.steps_completed != steps or result.goal_run_id != goal.goal_run_id:
                self._counts["wrong_results"] += 1
                log.warning(
                    "goal_run_wrong_result",
                    goal_run_id=goal.goal_run_id,
                    steps_completed=result.steps_completed,
                    step_count=steps,
                )
        elif status == "FAILED":
            log.warning("goal_run_failed", goal_run_id=goal.goal_run_id, error=result.error_details)

    async def _play_user(
        self, handle: WorkflowHandle[object, GoalRunResult], actions: set[str]
    ) -> None:
        """Approve/reject, pause/resume, cancel as planned; errors only end the play."""
        s = self.settings
        with contextlib.suppress(Exception):
            if "pause" in actions:
                await asyncio.sleep(s.approve_after_s / 4)
                await handle.signal(PAUSE_GOAL)
                await asyncio.sleep(s.pause_for_s)
                await handle.signal(RESUME_GOAL)
            if "cancel" in actions:
                await asyncio.sleep(s.approve_after_s / 2)
                await handle.signal(CANCEL_GOAL)
                return
            if "approve" in actions:
                await _until_awaiting_approval(handle)
                await asyncio.sleep(s.approve_after_s)
                await handle.signal(REJECT_STEP if "reject" in actions else APPROVE_STEP)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._counts["follow_errors"] += 1
            log.warning("goal_run_follow_failed", error=repr(task.exception()))
        self._write_stats()

    def _write_stats(self) -> None:
        if self.settings.stats_file is not None:
            write_atomic(self.settings.stats_file, json.dumps(self.stats.model_dump(by_alias=True)))


async def _until_awaiting_approval(handle: WorkflowHandle[object, GoalRunResult]) -> None:
    """Poll `getProgress` until the run waits for an approval."""
    while True:
        progress = await handle.query(GET_PROGRESS, result_type=Progress)
        if progress.is_awaiting_approval:
            return
        await asyncio.sleep(0.2)
