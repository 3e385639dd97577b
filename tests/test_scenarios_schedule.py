"""The weekly Temporal Schedule is ByteBot's Chaos Mesh Schedule: cron, policy and workflow.

Pure: the Schedule object `starter.py schedule apply` sends. That the server stores and
describes it so is tests/test_cli_and_worker.py's schedule test.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from activities.scenario import scenario_of
from control.schedule import ScheduleOptions, build_schedule
from models.scenario import Scenario, ScenarioInput
from tests.test_scenarios_fidelity import originals


def weekly_options(**overrides: object) -> ScheduleOptions:
    run_input = ScenarioInput(scenario="weekly-resilience-test")
    return ScheduleOptions.for_scenario(scenario_of(run_input), run_input, **overrides)


def test_the_default_schedule_is_the_seeds_cron_in_utc_with_skip_for_forbid() -> None:
    [_, original] = originals("chaos-workflow.yaml")
    assert ScheduleOptions() == weekly_options()
    schedule = build_schedule(ScheduleOptions())
    assert schedule.spec.cron_expressions == [original["spec"]["schedule"]] == ["0 2 * * 0"]
    assert schedule.spec.time_zone_name == "UTC"
    assert original["spec"]["concurrencyPolicy"] == "Forbid"
    assert schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [run_input] = action.args
    assert isinstance(run_input, ScenarioInput) and run_input.scenario == "weekly-resilience-test"


def test_a_scenarios_own_schedule_settings_and_flags_decide() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "every-5m",
            "schedule": {
                "cron": "*/5 * * * *",
                "concurrency_policy": "Allow",
                "starting_deadline": "2m",
            },
            "steps": [{"fault": {"action": "pod-kill", "duration": "10s"}}],
        }
    )
    run_input = ScenarioInput(scenario=scenario)
    options = ScheduleOptions.for_scenario(scenario, run_input)
    schedule = build_schedule(options)
    assert schedule.spec.cron_expressions == ["*/5 * * * *"]
    assert schedule.policy.overlap is ScheduleOverlapPolicy.ALLOW_ALL
    assert schedule.policy.catchup_window == timedelta(minutes=2)
    flagged = ScheduleOptions.for_scenario(scenario, run_input, cron="0 4 * * *", task_queue=None)
    assert flagged.cron == "0 4 * * *" and flagged.task_queue == "bytebot-chaos"
