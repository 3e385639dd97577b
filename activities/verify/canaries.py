"""Canary goal runs: started with a known input, judged against a known result.

Owns starting canaries in the target namespace (ids derived from the fault id, so a retried
activity finds its own canary instead of starting a second one), reading their outcome, and
telling from a canary's first workflow task whether any worker still polls the task queue.
It never decides a verdict and never touches goal runs that are not its own canaries.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import PendingWorkflowTaskState
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.verify.census import FIRST_TASK_EVENTS, STATUS_WORDS, failure_text
from activities.verify.results import result_failure
from models.contract import GoalRunContract
from models.scenario import CanarySpec, TemporalTarget

#: How long the frontend has to accept a canary start before it counts as failed.
START_RPC_TIMEOUT = timedelta(seconds=5)


def canary_prefix(spec: CanarySpec, fault_id: str) -> str:
    """What every canary id of one fault starts with (a visibility STARTS_WITH finds them)."""
    return f"{spec.id_prefix}-{fault_id}-"


def canary_id(spec: CanarySpec, fault_id: str, suffix: str) -> str:
    """A canary's workflow id: derived, so a retried activity finds its own canary."""
    return canary_prefix(spec, fault_id) + suffix


def canary_input(spec: CanarySpec, canary_id: str) -> dict[str, Any]:
    """The canary's input: the scenario's whole input with its id field set to the canary's."""
    return {**spec.input, spec.id_field: canary_id}


def matches(expected: Any, actual: Any) -> bool:
    """True when `actual` has every field of `expected` with the same value (recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(value, actual[key]) for key, value in expected.items()
        )
    return bool(expected == actual)


def mismatch(expected: dict[str, Any], actual: Any) -> str:
    """Which expected fields the result lacks or gets wrong, in words."""
    if not isinstance(actual, dict):
        return f"result is not an object: {actual!r:.200}"
    wrong = [
        f"{key}={actual.get(key, '<missing>')!r} (expected {value!r})"
        for key, value in expected.items()
        if not (key in actual and matches(value, actual[key]))
    ]
    return "wrong result: " + ", ".join(wrong)


@dataclass(frozen=True)
class StartAttempt:
    """One canary start: whether the frontend accepted it, how fast, and why not."""

    canary_id: str
    ok: bool
    latency_s: float
    error: str | None = None


async def start_canary(
    client: Client, target: TemporalTarget, spec: CanarySpec, canary_id: str
) -> StartAttempt:
    """Start a canary; a canary that already exists (a retried activity) counts as started."""
    began = time.monotonic()
    try:
        await client.start_workflow(
            target.workflow_type,
            canary_input(spec, canary_id),
            id=canary_id,
            task_queue=target.task_queue,
            execution_timeout=spec.timeout,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=START_RPC_TIMEOUT,
            static_summary="chaos canary",
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran to its end already: started by an earlier attempt of this activity
    except RPCError as err:
        return StartAttempt(canary_id, False, time.monotonic() - began, f"{err.status.name}: {err}")
    return StartAttempt(canary_id, True, time.monotonic() - began)


@dataclass(frozen=True)
class CanaryOutcome:
    """Where a canary is: running, completed as expected, or not (with the reason)."""

    canary_id: str
    status: str
    ok: bool
    reason: str = ""
    closed_at: datetime | None = None
    history_length: int = 0

    @property
    def running(self) -> bool:
        """True while the canary has not closed."""
        return self.status == "running"


async def canary_outcome(
    client: Client, canary_id: str, spec: CanarySpec, contract: GoalRunContract
) -> CanaryOutcome:
    """Read a canary's state and, once closed, check its result against the expected one."""
    expected = spec.expected_result
    handle = client.get_workflow_handle(canary_id)
    try:
        desc = await handle.describe()
    except RPCError as err:
        return CanaryOutcome(canary_id, "missing", False, f"cannot be read: {err}")
    status = desc.status
    if status in (None, WorkflowExecutionStatus.RUNNING):
        return CanaryOutcome(canary_id, "running", False, history_length=desc.history_length)
    if status is not WorkflowExecutionStatus.COMPLETED:
        word = STATUS_WORDS.get(status, str(status))
        try:
            await handle.result(follow_runs=False)
            reason = word
        except WorkflowFailureError as err:
            reason = failure_text(err.cause)
        return CanaryOutcome(canary_id, word, False, reason, desc.close_time)
    result = await handle.result(follow_runs=False)
    failed = result_failure(contract, result)
    if failed is not None and not matches(expected, result):
        return CanaryOutcome(canary_id, "result-failed", False, failed, desc.close_time)
    if matches(expected, result):
        return CanaryOutcome(canary_id, "completed", True, "", desc.close_time)
    return CanaryOutcome(
        canary_id, "wrong-result", False, mismatch(expected, result), desc.close_time
    )


async def oldest_unpolled_task(
    client: Client, canary_ids: list[str], grace: timedelta, now: datetime | None = None
) -> tuple[str, datetime] | None:
    """The canary whose first workflow task has waited longest, if it waited past `grace`.

    A first workflow task goes to the task queue's normal (not sticky) queue, so one that
    waits means no worker took work from that queue for that long: the precise sign that the
    queue has no live poller, where DescribeTaskQueue still lists a gone poller for minutes.
    """
    now = now or datetime.now(UTC)
    descs = await asyncio.gather(
        *(client.get_workflow_handle(cid).describe() for cid in canary_ids),
        return_exceptions=True,
    )
    waiting: list[tuple[datetime, str]] = []
    for cid, desc in zip(canary_ids, descs, strict=True):
        if isinstance(desc, BaseException) or desc.status is not WorkflowExecutionStatus.RUNNING:
            continue
        task = desc.raw_description.pending_workflow_task
        first = desc.history_length <= FIRST_TASK_EVENTS
        if first and task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED:
            scheduled = task.scheduled_time.ToDatetime(UTC)
            if now - scheduled >= grace:
                waiting.append((scheduled, cid))
    if not waiting:
        return None
    scheduled, cid = min(waiting)
    return cid, scheduled
