"""Create-or-update of a Temporal Schedule, shared by the weekly run and the orphan sweeper.

Idempotent: a schedule that exists is brought up to date in place. A person's pause (and
the note they left with it) survives an update; everything else comes from the new schedule.
"""

from __future__ import annotations

from typing import Literal

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)


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
