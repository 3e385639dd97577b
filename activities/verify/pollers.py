"""Live pollers of the goal runs' task queue: is a worker there to take the next task?

A listed poller counts as live if it polled within `refresh`, and, while a canary's first
workflow task has waited longer than `grace`, only if it polled after that task was scheduled.
Reads only: it never starts or stops a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.verify.canaries import oldest_unpolled_task
from models.ledger import ReplicaSet, TargetRef
from models.scenario import TemporalTarget

_QUEUE_TYPES = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


@dataclass(frozen=True)
class PollerView:
    """The task queue's live pollers by identity, with when each last polled."""

    live: dict[str, datetime] = field(default_factory=dict)
    since: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many live pollers (worker identities) there are."""
        return len(self.live)

    def polled_after(self, replica: TargetRef, moment: datetime) -> bool:
        """Whether a poller of this replica polled after `moment`."""
        return any(at > moment for who, at in self.live.items() if owns(replica, who))


def owns(replica: TargetRef, identity: str) -> bool:
    """Whether a worker identity is this replica's.

    The SDKs' default identity is `<pid>@<hostname>`: in a cluster the hostname is the pod's
    name, locally the pid is the replica's (its uid here).
    """
    pid, _, host = identity.partition("@")
    return bool(host and host == replica.name) or bool(replica.uid and pid == replica.uid)


def not_polling(
    replicas: ReplicaSet,
    view: PollerView,
    hit: dict[str, datetime] | None = None,
    before: ReplicaSet | None = None,
) -> list[str]:
    """Ready replicas with no live poller of their own.

    `hit` gives, for each replica the fault hit, the moment by which it must have polled
    again. A replica replaced since `before` (a new process or pod) proves itself by any live
    poll of its new identity; the same process must poll after that moment: a connection held
    by a partition delivers its old polls when it heals, so only a poll after that counts. An
    idle worker renews its long poll about once a minute, so the others need only be live.
    """
    uids = {r.name: r.uid for r in before.replicas} if before else {}
    quiet = []
    for replica in replicas.replicas:
        if not replica.ready:
            continue
        mine = [at for who, at in view.live.items() if owns(replica, who)]
        due = (hit or {}).get(replica.name)
        replaced = uids.get(replica.name, replica.uid) != replica.uid
        if not mine or (due is not None and not replaced and max(mine) <= due):
            quiet.append(replica.name)
    return quiet


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
    ) -> PollerView:
        """Live pollers of the goal runs' task queue (workflow and activity), and notes."""
        now = datetime.now(UTC)
        polled: dict[str, datetime] = {}
        for queue_type in _QUEUE_TYPES:
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=target.task_queue),
                    task_queue_type=queue_type,
                ),
                retry=True,
                timeout=timedelta(seconds=10),
            )
            for p in described.pollers:
                at = p.last_access_time.ToDatetime(UTC)
                polled[p.identity] = max(at, polled.get(p.identity, at))
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
        return PollerView(live=live, since=since, notes=notes)
