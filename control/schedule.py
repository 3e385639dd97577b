"""The weekly Temporal Schedule that runs `full-resilience` (it replaces the seed's Chaos Mesh
Schedule and Workflow): overlap skip, a short catch-up window, optional pause on failure."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from control.schedules import upsert_schedule
from models.base import Frozen
from models.scenario import ScenarioInput
from workflows import names

WEEKLY_SCHEDULE_ID = names.WEEKLY_SCHEDULE_ID
#: Mondays 03:00 UTC: a quiet hour, early in the week so people are there to read the verdict.
WEEKLY_CRON = "0 3 * * 1"


class ScheduleOptions(Frozen):
    """What `starter.py schedule apply` sets."""

    schedule_id: str = WEEKLY_SCHEDULE_ID
    cron: str = WEEKLY_CRON
    run_input: ScenarioInput = Field(
        default_factory=lambda: ScenarioInput(scenario="full-resilience")
    )
    task_queue: str = "bytebot-chaos"
    pause_on_failure: bool = Field(
        False, description="Pause the schedule after a failed run until a person unpauses it."
    )
    catchup_window: timedelta = Field(
        timedelta(minutes=10),
        description="After an outage, missed runs older than this are skipped.",
    )


def build_schedule(options: ScheduleOptions) -> Schedule:
    """The Schedule object for these options."""
    name = (
        options.run_input.scenario
        if isinstance(options.run_input.scenario, str)
        else options.run_input.scenario.name
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            names.SCENARIO_WORKFLOW,
            options.run_input,
            id=f"{options.schedule_id}-run",
            task_queue=options.task_queue,
            static_summary=f"scheduled chaos run: {name}",
        ),
        spec=ScheduleSpec(cron_expressions=[options.cron]),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,  # never two chaos runs at once
            catchup_window=options.catchup_window,
            pause_on_failure=options.pause_on_failure,
        ),
        state=ScheduleState(
            note=f"ByteBot weekly resilience test: runs chaos scenario '{name}' "
            f"({options.cron}); managed by `starter.py schedule apply`.",
        ),
    )


async def apply_schedule(client: Client, options: ScheduleOptions) -> str:
    """Create the schedule, or update it in place if it exists; 'created' or 'updated'."""
    return await upsert_schedule(client, options.schedule_id, build_schedule(options))


async def describe_schedule(client: Client, schedule_id: str) -> ScheduleDescription | None:
    """The schedule's description, or None when it does not exist."""
    try:
        return await client.get_schedule_handle(schedule_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
