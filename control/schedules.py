"""Create-or-update of a Temporal Schedule, and the orphan sweeper's schedule.

`upsert_schedule` is shared by the weekly run and the sweeper, whose schedule the worker
creates at start (`ensure_sweeper_schedule`).
Idempotent: a schedule that exists is brought up to date in place. A person's pause (and
the note they left with it) survives an update; everything else comes from the new schedule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from models.sweep import SweepInput
from workflows import names

log = structlog.get_logger(__name__)
SWEEP_EVERY = timedelta(minutes=5)


async def upsert_schedule(
    client: Client, schedule_id: str, schedule: Schedule
) -> Literal["created", "updated"]:
    """Create the schedule, or update the existing one; which of the two happened."""
    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
        state = current.description.schedule.state
        if state.paused:
            schedule.state.paused, schedule.state.note = True, state.note
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(replace)
    return "updated"


def sweeper_schedule(task_queue: str, every: timedelta, sweep: SweepInput) -> Schedule:
    """The schedule: the sweeper workflow every `every`, never two at once."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            names.SWEEPER_WORKFLOW,
            sweep,
            id=names.SWEEPER_SCHEDULE_ID,
            task_queue=task_queue,
            execution_timeout=max(every, timedelta(minutes=5)),
            static_summary="delete chaos objects whose run is gone or whose expiry passed",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_sweeper_schedule(
    client: Client,
    task_queue: str,
    *,
    every: timedelta = SWEEP_EVERY,
    sweep: SweepInput | None = None,
) -> ScheduleHandle:
    """Create the schedule `bytebot-chaos-orphan-sweeper`, or bring an existing one up to date.

    Called by the worker at start (and by the CLI); safe to call any number of times.
    """
    schedule = sweeper_schedule(task_queue, every, sweep or SweepInput())
    outcome = await upsert_schedule(client, names.SWEEPER_SCHEDULE_ID, schedule)
    log.info(f"sweeper_schedule_{outcome}", every=str(every), task_queue=task_queue)
    handle = client.get_schedule_handle(names.SWEEPER_SCHEDULE_ID)
    return handle
