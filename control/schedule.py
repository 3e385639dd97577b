"""The weekly Temporal Schedule: ByteBot's Chaos Mesh Schedule `weekly-resilience-test`, ported.

By default it runs the built-in `weekly-resilience-test` with that scenario's own `schedule`
settings: cron `0 2 * * 0` in UTC, and `Forbid` as overlap SKIP (never two chaos runs at once);
a short catch-up window (the scenario's `starting_deadline` when set); optional pause on failure.
Any other scenario can be scheduled the same way; flags override its settings."""

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
from models.scenario import Scenario, ScenarioInput
from models.schedule import ConcurrencyPolicy
from workflows import names

WEEKLY_SCHEDULE_ID = names.WEEKLY_SCHEDULE_ID
#: The built-in scenario the weekly schedule runs: ByteBot's own Schedule, ported.
WEEKLY_SCENARIO = "weekly-resilience-test"
#: ByteBot's Schedule: Sundays 02:00 (UTC).
WEEKLY_CRON = "0 2 * * 0"
OVERLAP = {
    ConcurrencyPolicy.FORBID: ScheduleOverlapPolicy.SKIP,
    ConcurrencyPolicy.ALLOW: ScheduleOverlapPolicy.ALLOW_ALL,
}


class ScheduleOptions(Frozen):
    """What `starter.py schedule apply` sets."""

    schedule_id: str = WEEKLY_SCHEDULE_ID
    cron: str = Field(WEEKLY_CRON, description="Cron expression, in UTC.")
    run_input: ScenarioInput = Field(
        default_factory=lambda: ScenarioInput(scenario=WEEKLY_SCENARIO)
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        ConcurrencyPolicy.FORBID, description="Forbid: overlap SKIP; Allow: ALLOW_ALL."
    )
    task_queue: str = "bytebot-chaos"
    pause_on_failure: bool = Field(
        False, description="Pause the schedule after a failed run until a person unpauses it."
    )
    catchup_window: timedelta = Field(
        timedelta(minutes=10),
        description="After an outage, missed runs older than this are skipped.",
    )

    @classmethod
    def for_scenario(
        cls, scenario: Scenario, run_input: ScenarioInput, **overrides: object
    ) -> ScheduleOptions:
        """Options from the scenario's own `schedule` settings, then ``overrides`` (not None)."""
        settings = scenario.schedule
        data: dict[str, object] = {"run_input": run_input}
        if settings is not None:
            data |= {"cron": settings.cron, "concurrency_policy": settings.concurrency_policy}
            if settings.starting_deadline is not None:
                data["catchup_window"] = settings.starting_deadline
        data |= {k: v for k, v in overrides.items() if v is not None}
        return cls.model_validate(data)


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
        spec=ScheduleSpec(cron_expressions=[options.cron], time_zone_name="UTC"),
        policy=SchedulePolicy(
            overlap=OVERLAP[options.concurrency_policy],
            catchup_window=options.catchup_window,
            pause_on_failure=options.pause_on_failure,
        ),
        state=ScheduleState(
            note=f"ByteBot resilience test: runs chaos scenario '{name}' "
            f"({options.cron} UTC); managed by `starter.py schedule apply`.",
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
