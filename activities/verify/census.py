"""Reading the system under test's goal runs: visibility listings, descriptions, histories.

Owns every read of goal runs in the target namespace: the census of runs in flight (with
their history lengths), which of them are still open, how each closed one ended (the failure
taken from its history), whether an open one is still progressing, and the activity failures,
timeouts and retries in their histories. Every listing is paginated and bounded, and every
fan-out runs under a semaphore. It never starts, signals or ends a workflow, and never
decides a verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution as WorkflowExecutionRef
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError

from models.observations import GoalRunMark
from models.scenario import TemporalTarget, Verification

T = TypeVar("T")
X = TypeVar("X")
#: Workflow ids per `WorkflowId IN (...)` visibility query.
ID_CHUNK = 100
#: A run whose history is this short has not had its first workflow task picked up yet.
FIRST_TASK_EVENTS = 2
#: An activity past this many attempts, still failing, is retrying rather than progressing.
RETRYING_ATTEMPTS = 4
#: Events read at most from one history for the activity counts.
MAX_EVENTS = 5000
STATUS_WORDS = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "canceled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued-as-new",
    WorkflowExecutionStatus.TIMED_OUT: "timed-out",
}


def beat(*details: Any) -> None:
    """Heartbeat when running as an activity (also how cancellation is heard)."""
    if activity.in_activity():
        activity.heartbeat(*details)


def failure_text(error: BaseException | None) -> str:
    """A failure's message chain, outermost first: `goal failed: step 3: disk full`."""
    parts: list[str] = []
    while error is not None and len(parts) < 5:
        message = error.message if isinstance(error, FailureError) else str(error)
        if message and message not in parts:
            parts.append(message)
        error = error.__cause__
    return ": ".join(parts) or "no failure message"


def literal(value: str) -> str:
    """A string as a visibility-query literal: `'a'`, with quotes and backslashes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(ids: Iterable[str]) -> str:
    """Ids as a visibility-query list: `'a','b'`."""
    return ",".join(literal(i) for i in ids)


def goal_runs_query(workflow_type: str, task_queue: str, status: str) -> str:
    """The goal runs of one type on one task queue in a status (`='Running'`, `IN (...)`)."""
    return (
        f"WorkflowType={literal(workflow_type)} AND TaskQueue={literal(task_queue)} "
        f"AND ExecutionStatus{status}"
    )


async def bounded(
    limit: int, call: Callable[[X], Awaitable[T]], items: Iterable[X]
) -> list[T | BaseException]:
    """`call` each item concurrently, at most `limit` at a time; errors are returned, not raised."""
    gate = asyncio.Semaphore(limit)

    async def one(item: X) -> T | BaseException:
        async with gate:
            try:
                return await call(item)
            except Exception as err:  # noqa: BLE001 - reported per item to the caller
                return err

    return list(await asyncio.gather(*(one(item) for item in items)))


async def census(
    client: Client, workflow_type: str, task_queue: str, limit: int, concurrency: int
) -> tuple[list[GoalRunMark], bool]:
    """The goal runs in flight (at most `limit`) with their history lengths; True if more ran.

    Visibility does not keep a running execution's history length, so each is described.
    """
    query = goal_runs_query(workflow_type, task_queue, "='Running'")
    listed = [e async for e in client.list_workflows(query, limit=limit + 1, page_size=1000)]
    truncated = len(listed) > limit
    listed = listed[:limit]

    async def describe(e: WorkflowExecution) -> WorkflowExecutionDescription:
        return await client.get_workflow_handle(e.id, run_id=e.run_id).describe()

    descs = await bounded(concurrency, describe, listed)
    marks = [
        GoalRunMark(
            workflow_id=e.id,
            run_id=e.run_id,
            history_length=d.history_length if isinstance(d, WorkflowExecutionDescription) else 0,
        )
        for e, d in zip(listed, descs, strict=True)
    ]
    return marks, truncated


async def executions(client: Client, ids: list[str]) -> dict[tuple[str, str], WorkflowExecution]:
    """Every run of these workflow ids as visibility lists it, keyed by (workflow id, run id)."""
    found: dict[tuple[str, str], WorkflowExecution] = {}
    for start in range(0, len(ids), ID_CHUNK):
        query = f"WorkflowId IN ({quoted(ids[start : start + ID_CHUNK])})"
        async for e in client.list_workflows(query, page_size=1000):
            if e.status is not None:
                found[(e.id, e.run_id)] = e
    return found


def attribute(execution: WorkflowExecution | WorkflowExecutionDescription, name: str | None) -> Any:
    """A search attribute's value by name (None when unset or unnamed)."""
    if name is None:
        return None
    for pair in execution.typed_search_attributes:
        if pair.key.name == name:
            return pair.value
    return None


async def closed_between(
    client: Client,
    workflow_type: str,
    task_queue: str,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[WorkflowExecution]:
    """Goal runs that completed between two moments (at most `limit`), for latency."""
    query = (
        goal_runs_query(workflow_type, task_queue, "='Completed'")
        + f" AND CloseTime >= {literal(since.astimezone(UTC).isoformat())}"
        + f" AND CloseTime <= {literal(until.astimezone(UTC).isoformat())}"
    )
    return [e async for e in client.list_workflows(query, limit=limit, page_size=1000)]


async def started_between(
    client: Client,
    workflow_type: str,
    task_queue: str,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[WorkflowExecution]:
    """Goal runs started between two moments, whatever their status (at most `limit`)."""
    query = (
        f"WorkflowType={literal(workflow_type)} AND TaskQueue={literal(task_queue)}"
        + f" AND StartTime >= {literal(since.astimezone(UTC).isoformat())}"
        + f" AND StartTime <= {literal(until.astimezone(UTC).isoformat())}"
    )
    return [e async for e in client.list_workflows(query, limit=limit, page_size=1000)]


#: Failed-run states, as visibility spells them.
FAILED_STATES = "('Failed','TimedOut','Terminated')"


async def failed_since(
    client: Client, target: TemporalTarget, since: datetime, verification: Verification
) -> list[tuple[str, str]]:
    """Goal runs that ended badly since `since`: failed executions, and completed executions
    whose phase says FAILED (ByteBot completes a failed goal run), with a word for each."""
    after = f" AND CloseTime >= {literal(since.astimezone(UTC).isoformat())}"
    limit = verification.max_goal_runs
    query = goal_runs_query(target.workflow_type, target.task_queue, f" IN {FAILED_STATES}")
    found = [
        (e.id, STATUS_WORDS.get(e.status, "?") if e.status else "?")
        async for e in client.list_workflows(query + after, limit=limit)
    ]
    phase = target.contract.phase_attribute
    if phase:
        query = goal_runs_query(target.workflow_type, target.task_queue, "='Completed'")
        query += f" AND {phase}='FAILED'" + after
        prefix = verification.canary.id_prefix
        # A namespace that does not know the attribute refuses the query: the result check
        # after the fault still judges every result.
        with contextlib.suppress(RPCError):
            found += [
                (e.id, f"completed with {phase}=FAILED")
                async for e in client.list_workflows(query, limit=limit)
                if not e.id.startswith(prefix)
            ]
    return found


def run_seconds(execution: WorkflowExecution) -> float | None:
    """How long a closed run took from start to close."""
    if execution.close_time is None:
        return None
    return max(0.0, (execution.close_time - execution.start_time).total_seconds())


async def close_reason(client: Client, workflow_id: str, run_id: str | None) -> str:
    """Why a closed run did not complete, from the close event of its history."""
    try:
        await client.get_workflow_handle(workflow_id, run_id=run_id).result(follow_runs=False)
    except WorkflowFailureError as err:
        return failure_text(err.cause)
    except Exception as err:  # noqa: BLE001 - the reason is reported, not raised
        return failure_text(err)
    return "completed"


@dataclass(frozen=True)
class Progress:
    """Whether an open run moved on since its mark."""

    progressing: bool
    history_length: int
    detail: str
    idle: bool = False


async def timer_until(client: Client, workflow_id: str, run_id: str | None) -> datetime | None:
    """When the run's pending timer fires, if the last event of its history started one."""
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecutionRef(workflow_id=workflow_id, run_id=run_id or ""),
            maximum_page_size=1,
        ),
        retry=True,
    )
    for event in response.history.events[:1]:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            timeout = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            return event.event_time.ToDatetime(UTC) + timeout
    return None


async def progress(client: Client, mark: GoalRunMark, since: datetime) -> Progress:
    """An open run progresses if its history grew past `mark`, or an activity of it ran,
    since `since` (when the mark was taken). An activity failing attempt after attempt is
    no progress, however often it starts again."""
    desc = await client.get_workflow_handle(mark.workflow_id, run_id=mark.run_id).describe()
    grew = desc.history_length - mark.history_length
    if grew > 0:
        return Progress(True, desc.history_length, f"history grew by {grew} events")
    retrying = None
    for pending in desc.raw_description.pending_activities:
        failing = pending.attempt >= RETRYING_ATTEMPTS and pending.HasField("last_failure")
        if failing:
            retrying = (
                f"activity {pending.activity_type.name} retrying (attempt {pending.attempt}):"
                f" {pending.last_failure.message[:120]}"
            )
            continue
        for stamp in (pending.last_heartbeat_time, pending.last_started_time):
            if stamp.seconds and stamp.ToDatetime(UTC) > since:
                return Progress(True, desc.history_length, "an activity is running")
        if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
            # Started and not failing: it ends, fails or times out and is retried by Temporal
            # (one whose worker died, e.g. a planning call with no heartbeat, waits out its
            # start-to-close timeout). The run is waiting on it, not lost.
            started = pending.last_started_time.ToDatetime(UTC).strftime("%H:%M:%S")
            return Progress(
                True,
                desc.history_length,
                f"activity {pending.activity_type.name} started at {started} still runs",
            )
    quiet = (datetime.now(UTC) - since).total_seconds()
    fires = None if retrying else await timer_until(client, mark.workflow_id, desc.run_id)
    if fires is not None and fires > datetime.now(UTC):
        # A run waiting out its own timer (a step retry's backoff, a long sleep) is idle.
        return Progress(False, desc.history_length, f"waiting on a timer until {fires}", True)
    if retrying:
        detail = f"{retrying}; no new event for {quiet:.0f}s"
    elif desc.history_length <= FIRST_TASK_EVENTS:
        detail = f"no worker picked up its first workflow task in {quiet:.0f}s"
    else:
        detail = f"no new event for {quiet:.0f}s (history length {desc.history_length})"
    return Progress(False, desc.history_length, detail)


@dataclass
class ActivityCounts:
    """Activity failures, timeouts and retries seen in histories since a moment."""

    failures: int = 0
    timeouts: int = 0
    retries: int = 0

    def add_attempt(self, attempt: int, last_failure: Failure | None) -> None:
        """Count an activity's earlier attempts and the cause of the last retry."""
        if attempt <= 1:
            return
        self.retries += attempt - 1
        if last_failure is not None and last_failure.HasField("timeout_failure_info"):
            self.timeouts += 1
        elif last_failure is not None and last_failure.ByteSize():
            self.failures += 1


async def count_activities(
    client: Client, workflow_id: str, run_id: str | None, since: datetime
) -> ActivityCounts:
    """Count activity failures, timeouts and retries in one history (bounded) since `since`.

    Temporal writes no event per retry: a retried attempt shows in the `attempt` and
    `last_failure` of the ActivityTaskStarted event written when the activity ends, and of a
    pending activity while it runs. Only the cause of each activity's last retry is known.
    """
    counts = ActivityCounts()
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    read = 0
    async for event in handle.fetch_history_events(page_size=1000):
        read += 1
        if read > MAX_EVENTS:
            break
        if event.event_time.ToDatetime(UTC) < since:
            continue
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            counts.failures += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            counts.timeouts += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            failure = attrs.last_failure if attrs.HasField("last_failure") else None
            counts.add_attempt(attrs.attempt, failure)
    desc = await handle.describe()
    for pending in desc.raw_description.pending_activities:
        failure = pending.last_failure if pending.HasField("last_failure") else None
        counts.add_attempt(pending.attempt, failure)
    return counts
