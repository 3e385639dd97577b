"""Temporal and Kafka reconciled: what ended or started in Temporal but never reached Kafka.

The Kafka check lists the goal runs of the fault's window that have no terminal event, and
those whose first event was not GOAL_STARTED. Kafka alone cannot tell a lost event from a run
that is still waiting (an approval can take a day) or one that began before the window, so
each is looked up here: a closed run without its terminal event, or a run started inside the
window without its GOAL_STARTED, is lost data. Its history says why: the emit activity gave up
after its attempts (ByteBot swallows a terminal emit's failure by design), it completed
without the record being written (a defect of the producer), or it never ran. Reads only.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError

from activities.heartbeats import beating
from activities.verify.census import bounded
from models.observations import LostEvent, ReconcileCheck, ReconcileInput

#: Events read at most from one history while looking for an emit.
MAX_EVENTS = 5000
#: The terminal goal event by the result's status, for runs ended in Temporal.
TERMINAL_BY_STATUS = {
    "COMPLETED": "GOAL_COMPLETED",
    "FAILED": "GOAL_FAILED",
    "CANCELLED": "GOAL_CANCELLED",
    "TIMEOUT": "GOAL_FAILED",
}


def _mentions(payloads: Any, event_type: str) -> bool:
    """Whether an activity's input names this event type (any payload, any shape)."""
    needle = event_type.encode()
    return any(needle in p.data for p in payloads if isinstance(p, Payload))


async def emit_fate(
    client: Client, workflow_id: str, run_id: str, emit_types: list[str], event_type: str
) -> tuple[str, bool]:
    """What the history says of the emit of `event_type`: (cause in words, swallowed)."""
    scheduled: dict[int, str] = {}  # scheduled event id -> activity type
    outcome: dict[int, tuple[str, int]] = {}  # scheduled event id -> (how it ended, attempt)
    attempts: dict[int, int] = {}
    read = 0
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(page_size=1000):
        read += 1
        if read > MAX_EVENTS:
            break
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name in emit_types and _mentions(
                attrs.input.payloads, event_type
            ):
                scheduled[event.event_id] = attrs.activity_type.name
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            attempts[started.scheduled_event_id] = started.attempt
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes.scheduled_event_id
            outcome[done] = ("completed", attempts.get(done, 1))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failed = event.activity_task_failed_event_attributes
            outcome[failed.scheduled_event_id] = (
                f"failed: {failed.failure.message[:120]}",
                attempts.get(failed.scheduled_event_id, 1),
            )
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            timed = event.activity_task_timed_out_event_attributes.scheduled_event_id
            outcome[timed] = ("timed out", attempts.get(timed, 1))
    if not scheduled:
        return f"the workflow never emitted {event_type}", False
    last = max(scheduled)
    name = scheduled[last]
    how, attempt = outcome.get(last, ("still running", attempts.get(last, 1)))
    if how == "completed":
        return f"{name} completed (attempt {attempt}) but no record was written", False
    if how == "still running":
        return f"{name} is still running (attempt {attempt})", False
    # The run went on to its end although its emit gave up: the failure was swallowed.
    return f"{name} {how} after {attempt} attempt(s) and the workflow went on without it", True


class Reconciler:
    """Looks up Kafka's incomplete goal runs in Temporal.

    Args:
        concurrency: Concurrent describe/history calls at most.
    """

    def __init__(self, *, concurrency: int) -> None:
        self.concurrency = concurrency

    async def run(self, client: Client, inp: ReconcileInput) -> ReconcileCheck:
        """Which of the candidates lost an event, and why."""
        kafka = inp.context.verification.kafka
        emit_types = kafka.emit_activity_types if kafka else []
        contract = inp.context.verification.temporal.contract

        async def no_terminal(goal_run_id: str) -> LostEvent | bool:
            desc = await self._describe(client, goal_run_id)
            if desc is None or desc.status is WorkflowExecutionStatus.RUNNING:
                return True  # still open: its terminal event is not due yet
            end = inp.window_end_at
            if end is not None and desc.close_time is not None and desc.close_time >= end:
                return True  # closed after the window's end was read: its event may follow
            event = "GOAL_FAILED"
            if desc.status is WorkflowExecutionStatus.COMPLETED:
                result = await client.get_workflow_handle(goal_run_id, run_id=desc.run_id).result(
                    follow_runs=False
                )
                status = result.get(contract.status_field) if isinstance(result, dict) else None
                event = TERMINAL_BY_STATUS.get(str(status), "GOAL_COMPLETED")
            cause, swallowed = await emit_fate(client, goal_run_id, desc.run_id, emit_types, event)
            return LostEvent(goal_run_id=goal_run_id, event=event, cause=cause, swallowed=swallowed)

        async def no_start(goal_run_id: str) -> LostEvent | bool:
            desc = await self._describe(client, goal_run_id)
            if desc is None or desc.start_time < inp.window_start:
                return False  # began before the window: its GOAL_STARTED precedes it
            cause, _ = await emit_fate(client, goal_run_id, desc.run_id, emit_types, "GOAL_STARTED")
            started = desc.start_time.astimezone(UTC).strftime("%H:%M:%S")
            return LostEvent(
                goal_run_id=goal_run_id, event="GOAL_STARTED", cause=f"started {started}; {cause}"
            )

        ends_of = beating(no_terminal, "no terminal", len(inp.no_terminal))
        ends = await bounded(self.concurrency, ends_of, inp.no_terminal)
        starts = await bounded(
            self.concurrency, beating(no_start, "no start", len(inp.no_start)), inp.no_start
        )
        lost = [x for x in [*ends, *starts] if isinstance(x, LostEvent)]
        errors = [x for x in [*ends, *starts] if isinstance(x, BaseException)]
        still_open = sum(1 for x in ends if x is True)
        evidence = [
            f"{len(inp.no_terminal)} goal run(s) without a terminal event in Kafka: "
            f"{still_open} still open in Temporal, "
            f"{sum(isinstance(x, LostEvent) for x in ends)} closed without it",
            f"{len(inp.no_start)} goal run(s) without GOAL_STARTED in the window: "
            f"{sum(isinstance(x, LostEvent) for x in starts)} started inside it",
        ]
        if errors:
            evidence.append(f"{len(errors)} lookup(s) failed: {errors[0]}")
        return ReconcileCheck(
            checked=len(inp.no_terminal) + len(inp.no_start),
            still_open=still_open,
            lost=lost[:100],
            lost_total=len(lost),
            evidence=evidence,
        )

    @staticmethod
    async def _describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
        try:
            return await client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return None  # not a goal run of this namespace (e.g. another system's key)
