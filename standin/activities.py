"""goalRunWorkflow's activities: plan, execute a step, and write events to Kafka.

Every side effect of a goal run happens here; the workflow only orders these calls. Emits
build a fresh event (new uuid4, stamped now) at every attempt, as ByteBot's do, so an emit
retried after it wrote writes the event twice under two ids.

The worker-side defects of `FaultyMode` are applied here, and only when switched on. With
`ORCHESTRATOR_URL` / `LLM_PROXY_URL` set, planning calls the LLM proxy (a failure is retried by
Temporal) and each step calls the orchestrator (a failure fails the step), as the real worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from standin.dependencies import LLM_PATH, ORCHESTRATOR_PATH, DependencyError, post_json
from standin.events import Event, audit_of, make_event
from standin.kafka_sink import Topics
from standin.models import (
    EMIT_GOAL_EVENT,
    EMIT_STEP_EVENT,
    EXECUTE_STEP,
    PLAN_GOAL,
    FaultyMode,
    GoalEventInput,
    Plan,
    PlanInput,
    StepEventInput,
    StepInput,
    StepOutcome,
    selected,
)
from standin.planner import make_plan
from standin.runtime import Runtime

log = structlog.get_logger(__name__)

#: Real seconds (scaled at run time) the planner "thinks" and a held STEP_STARTED waits.
LLM_THINK_S = 2.0
REORDER_HOLD_S = 20.0
#: Real seconds (scaled) a call to the orchestrator or the LLM proxy may take.
CALL_TIMEOUT_S = 30.0


class EventSink(Protocol):
    """Where events go (the replica's `KafkaEventSink`)."""

    async def send(self, topic: str, event: Event) -> None:
        """Write one event durably, or raise."""


@contextlib.asynccontextmanager
async def _heartbeating(interval_s: float) -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class Dependencies:
    """Where the worker's other dependencies are (unset: the stand-in calls none)."""

    orchestrator_url: str | None = None
    llm_proxy_url: str | None = None


class GoalActivities:
    """The activities of one replica, sharing its event sink."""

    def __init__(
        self,
        sink: EventSink,
        runtime: Runtime,
        topics: Topics | None = None,
        dependencies: Dependencies | None = None,
    ) -> None:
        self.sink = sink
        self.runtime = runtime
        self.topics = topics or Topics()
        self.dependencies = dependencies or Dependencies()
        self._held: dict[str, list[Event]] = {}
        self._releases: set[asyncio.Task[None]] = set()

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for a `Worker`."""
        return [self.plan_goal, self.execute_step, self.emit_goal_event, self.emit_step_event]

    def _call_s(self) -> float:
        """A dependency call's timeout: 30 s of the real worker's, scaled."""
        return self.runtime.seconds(CALL_TIMEOUT_S).total_seconds()

    def _faulty(self, mode: FaultyMode) -> bool:
        return mode in self.runtime.faulty

    @activity.defn(name=PLAN_GOAL)
    async def plan_goal(self, request: PlanInput) -> Plan:
        """Ask the stand-in LLM for a plan (it thinks for a while first)."""
        await asyncio.sleep(self.runtime.seconds(LLM_THINK_S).total_seconds())
        if self.dependencies.llm_proxy_url:
            body: dict[str, Any] = {
                "model": "planner",
                "messages": [{"role": "user", "content": request.goal_description}],
                "metadata": {"goalRunId": request.goal_run_id, "tenantId": request.tenant_id},
            }
            try:
                await post_json(self.dependencies.llm_proxy_url, LLM_PATH, body, self._call_s())
            except DependencyError as e:  # retried by Temporal (5 attempts), as the real one
                raise ApplicationError(f"LLM proxy: {e}", type="LlmUnavailable") from e
        return make_plan(
            request.goal_description,
            max_steps=request.max_steps,
            max_retries=request.max_retries,
            version=request.version,
        )

    @activity.defn(name=EXECUTE_STEP)
    async def execute_step(self, request: StepInput) -> StepOutcome:
        """Do a step's work, heartbeating; report the (planned) orchestrator failures."""
        info = activity.info()
        step = request.step
        fragile = self._faulty(FaultyMode.FAIL_UNDER_STRESS)
        if fragile and info.attempt > 1:
            raise ApplicationError(
                f"step {step.step_number} was retried (attempt {info.attempt}); giving up",
                type="StepDegraded",
                non_retryable=True,
            )
        work_s = step.work_ms / 1000 * self.runtime.time_scale
        began = time.monotonic()
        async with _heartbeating(self.runtime.seconds(10).total_seconds()):
            await asyncio.sleep(work_s)
        elapsed = time.monotonic() - began
        if fragile and elapsed > 3 * work_s + self.runtime.seconds(10).total_seconds():
            raise ApplicationError(
                f"step {step.step_number} took {elapsed:.2f}s, planned {work_s:.2f}s; giving up",
                type="StepDegraded",
                non_retryable=True,
            )
        if request.step_attempt <= step.failures:
            return StepOutcome(success=False, error="orchestrator answered 503 (planned failure)")
        if self.dependencies.orchestrator_url:
            body = {
                "goalRunId": request.goal_run_id,
                "tenantId": request.tenant_id,
                "stepNumber": step.step_number,
                "attempt": request.step_attempt,
            }
            try:
                url = self.dependencies.orchestrator_url
                await post_json(url, ORCHESTRATOR_PATH, body, self._call_s())
            except DependencyError as e:  # a failed call fails the step: replans, maybe FAILED
                return StepOutcome(success=False, error=f"orchestrator: {e}")
        return StepOutcome(success=True, output=f"done: {step.description}")

    @activity.defn(name=EMIT_GOAL_EVENT)
    async def emit_goal_event(self, request: GoalEventInput) -> None:
        """Write a goal event and its audit record."""
        info = activity.info()
        bound = log.bind(
            workflow_id=info.workflow_id, activity=EMIT_GOAL_EVENT, attempt=info.attempt
        )
        if (
            self._faulty(FaultyMode.LOSE_EVENTS)
            and request.event_type == "GOAL_COMPLETED"
            and selected(request.goal_run_id)
        ):
            bound.warning("faulty_event_dropped", event_type=request.event_type)
            return
        event = make_event(
            request.event_type, request.goal_run_id, request.tenant_id, request.payload
        )
        await self.sink.send(self.topics.goal, event)
        await self.sink.send(self.topics.audit, audit_of(event))
        bound.info("goal_event_emitted", event_type=request.event_type, event_id=event.event_id)

    @activity.defn(name=EMIT_STEP_EVENT)
    async def emit_step_event(self, request: StepEventInput) -> None:
        """Write a step event."""
        event = make_event(
            request.event_type,
            request.goal_run_id,
            request.tenant_id,
            request.payload,
            step_number=request.step_number,
        )
        if self._faulty(FaultyMode.REORDER_EVENTS) and selected(event.key):
            await self._reorder(event)
            return
        await self.sink.send(self.topics.step, event)

    async def _reorder(self, event: Event) -> None:
        """Hold STEP_STARTED back until STEP_COMPLETED is written (or a while has passed)."""
        if event.event_type == "STEP_STARTED":
            self._held.setdefault(event.key, []).append(event)
            task = asyncio.create_task(self._release_later(event))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)
            log.warning("faulty_step_started_held", key=event.key)
            return
        await self.sink.send(self.topics.step, event)
        if event.event_type == "STEP_COMPLETED":
            for held in self._held.pop(event.key, []):
                await self.sink.send(self.topics.step, held)

    async def _release_later(self, event: Event) -> None:
        await asyncio.sleep(self.runtime.seconds(REORDER_HOLD_S).total_seconds())
        held = self._held.get(event.key, [])
        if event in held:
            held.remove(event)
            with contextlib.suppress(Exception):  # a defect: losing it too is in character
                await self.sink.send(self.topics.step, event)
