"""Live pollers of the goal runs' task queue: is a worker there to take the next task?

A listed poller counts as live if it polled within `refresh`, and, while a canary's first
workflow task has waited longer than `grace`, only if it polled after that task was scheduled.
Reads only: it never starts or stops a worker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.verify.canaries import oldest_unpolled_task
from models.scenario import TemporalTarget


class Pollers:
    """Reads the pollers of a task queue.

    Args:
        grace: A canary's first workflow task waiting this long means no live poller.
        refresh: A listed poller that has not polled for this long is gone.
    """

    def __init__(self, *, grace: timedelta, refresh: timedelta) -> None:
        self.grace = grace
        self.refresh = refresh

    async def live(
        self, client: Client, target: TemporalTarget, canary_ids: list[str]
    ) -> tuple[int, datetime | None, list[str]]:
        """Live pollers of the goal runs' task queue, since when none polled, and notes."""
        identities, since, notes = await self.live_identities(client, target, canary_ids)
        return len(identities), since, notes

    async def live_identities(
        self, client: Client, target: TemporalTarget, canary_ids: list[str]
    ) -> tuple[list[str], datetime | None, list[str]]:
        """Like `live`, naming the live pollers (the report counts them per replica)."""
        now = datetime.now(UTC)
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=target.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            retry=True,
            timeout=timedelta(seconds=10),
        )
        polled = {p.identity: p.last_access_time.ToDatetime(UTC) for p in described.pollers}
        live = {who: at for who, at in polled.items() if now - at < self.refresh}
        notes = []
        waiting = await oldest_unpolled_task(client, canary_ids, self.grace, now)
        since = None
        if waiting is not None:
            canary_id, scheduled = waiting
            live = {who: at for who, at in live.items() if at > scheduled}
            waited = (now - scheduled).total_seconds()
            notes.append(f"canary {canary_id}'s first workflow task waited {waited:.1f}s")
            since = None if live else scheduled
        notes.append(f"{len(polled)} poller(s) listed, {len(live)} live: {sorted(live)}")
        return sorted(live), since, notes
