"""goalRunWorkflow's activities: do a step's work and write the goal's events to Kafka.

Every side effect of a goal run happens here; the workflow only orders these calls. Each
activity heartbeats from a background task for as long as it runs (a Kafka send may block for
seconds), so a replica that dies is noticed within the heartbeat timeout and the step retried
elsewhere. Re-emitting after a retry is expected: the event ids make duplicates recognisable.

The deliberate defects of `FaultyMode` that live in a worker are applied here, and only when
switched on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from standin.events import GoalEvent, make_event
from standin.models import (
    EMIT_GOAL_EVENT,
    RUN_STEP,
    FaultyMode,
    GoalEventInput,
    GoalEventType,
    StepInput,
    StepResult,
    step_output,
)

log = structlog.get_logger(__name__)

HEARTBEAT_INTERVAL_S = 1.0


class EventSink(Protocol):
    """Where events go (the replica's `KafkaEventSink`)."""

    async def send(self, event: GoalEvent) -> None:
        """Write one event durably, or raise."""


def _selected(key: str) -> bool:
    """A stable coin flip: True for about half the keys, the same answer on every retry."""
    return hashlib.sha256(key.encode()).digest()[0] % 2 == 0


@contextlib.asynccontextmanager
async def _heartbeating(interval_s: float = HEARTBEAT_INTERVAL_S) -> AsyncIterator[None]:
    """Heartbeat every ``interval_s`` while the body runs."""

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


class GoalActivities:
    """The activities of one replica, sharing its event sink."""

    def __init__(self, sink: EventSink, *, replica: str, faulty: Iterable[FaultyMode] = ()) -> None:
        self.sink = sink
        self.replica = replica
        self.faulty = frozenset(faulty)

    @activity.defn(name=EMIT_GOAL_EVENT)
    async def emit_goal_event(self, request: GoalEventInput) -> None:
        """Write GOAL_STARTED, GOAL_COMPLETED or GOAL_FAILED to the goal topic."""
        info = activity.info()
        bound = log.bind(
            workflow_id=info.workflow_id, activity=EMIT_GOAL_EVENT, attempt=info.attempt
        )
        if (
            FaultyMode.LOSE_EVENTS in self.faulty
            and request.event_type == GoalEventType.GOAL_COMPLETED
            and _selected(request.goal_run_id)
        ):
            bound.warning("faulty_event_dropped", event_type=request.event_type)
            return
        event = make_event(
            request.event_type,
            request.goal_run_id,
            goal=request.goal,
            attempt=info.attempt,
            producer=self.replica,
        )
        async with _heartbeating():
            await self.sink.send(event)
        bound.info("goal_event_emitted", event_type=request.event_type, reason=request.reason)

    @activity.defn(name=RUN_STEP)
    async def run_step(self, step: StepInput) -> StepResult:
        """Emit STEP_STARTED, work for ``step_seconds``, emit STEP_COMPLETED."""
        info = activity.info()
        bound = log.bind(
            workflow_id=info.workflow_id,
            activity=RUN_STEP,
            attempt=info.attempt,
            step=step.step_number,
        )
        fragile = FaultyMode.FAIL_UNDER_STRESS in self.faulty
        if fragile and info.attempt > 1:
            raise ApplicationError(
                f"step {step.step_number} was retried (attempt {info.attempt}); giving up",
                type="StepDegraded",
                non_retryable=True,
            )
        reorder = FaultyMode.REORDER_EVENTS in self.faulty and _selected(
            f"{step.goal_run_id}-{step.step_number}"
        )
        began = time.monotonic()
        async with _heartbeating():
            if not reorder:
                await self.sink.send(self._step_event(GoalEventType.STEP_STARTED, step))
            await asyncio.sleep(step.step_seconds)
            elapsed = time.monotonic() - began
            if fragile and elapsed > 3 * step.step_seconds + 1.0:
                raise ApplicationError(
                    f"step {step.step_number} took {elapsed:.1f}s; giving up",
                    type="StepDegraded",
                    non_retryable=True,
                )
            await self.sink.send(self._step_event(GoalEventType.STEP_COMPLETED, step))
            if reorder:
                await self.sink.send(self._step_event(GoalEventType.STEP_STARTED, step))
                bound.warning("faulty_events_reordered")
        output = step_output(step.goal, step.step_number)
        if FaultyMode.WRONG_RESULT in self.faulty and step.goal == "canary":
            output += "!"
        bound.info("step_completed", elapsed_s=round(time.monotonic() - began, 3))
        return StepResult(step_number=step.step_number, output=output)

    def _step_event(self, event_type: GoalEventType, step: StepInput) -> GoalEvent:
        return make_event(
            event_type,
            step.goal_run_id,
            step.step_number,
            goal=step.goal,
            attempt=activity.info().attempt,
            producer=self.replica,
        )
