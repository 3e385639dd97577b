"""The `resolve_scenario` activity: turn a run's input into a scenario that is safe to run.

Looks up built-in names, applies the input's caps, and checks what only the deployment knows
(the backend, the allowed namespaces). Every problem is non-retryable and names the field, so
a bad input fails the run at once and nothing is injected.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.scenario_files import UnknownScenario, load_builtin
from models.errors import describe_validation_error
from models.fences import namespace_refusal, outside
from models.run import ResolvedScenario
from models.scenario import Scenario, ScenarioInput
from workflows import names


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidScenario", non_retryable=True)


def apply_caps(scenario: Scenario, run_input: ScenarioInput) -> Scenario:
    """Shorten faults, pauses and the settle window to the input's caps (quick runs)."""
    cap, settle_cap = run_input.duration_cap, run_input.settle_cap
    if cap is None and settle_cap is None:
        return scenario
    data = scenario.model_dump()
    for step in data["steps"]:
        if cap is not None and step["pause"] is not None:
            step["pause"] = min(step["pause"], cap)
        for fault in step["faults"]:
            if cap is not None:
                fault["duration"] = min(fault["duration"], cap)
    verification = data["verification"]
    if settle_cap is not None:
        verification["settle"] = min(verification["settle"], settle_cap)
        verification["probe_interval"] = min(
            verification["probe_interval"], max(settle_cap / 4, timedelta(seconds=1))
        )
    return Scenario.model_validate(data)


def scenario_of(run_input: ScenarioInput) -> Scenario:
    """The run's scenario: the built-in one it names, or its own; with its caps applied."""
    name_or_scenario = run_input.scenario
    scenario = (
        load_builtin(name_or_scenario) if isinstance(name_or_scenario, str) else name_or_scenario
    )
    return apply_caps(scenario, run_input)


def check_namespaces(scenario: Scenario, allowed: list[str]) -> None:
    """Refuse a scenario that targets a namespace outside the allowed ones (the one fence)."""
    for i, step in enumerate(scenario.steps):
        for j, fault in enumerate(step.faults):
            for namespace in outside(fault.namespaces(), allowed):
                where = "target" if namespace == fault.target.namespace else "peer_pods"
                refusal = namespace_refusal([namespace], allowed)
                raise _invalid(f"steps.{i}.faults.{j}.{where}.namespace: {refusal}")


class ScenarioActivities:
    """Resolves scenarios for one deployment (its backend and allowed namespaces)."""

    def __init__(self, backend: str, allowed_namespaces: list[str]) -> None:
        self.backend = backend
        self.allowed_namespaces = allowed_namespaces

    @activity.defn(name=names.RESOLVE_SCENARIO)
    async def resolve_scenario(self, run_input: ScenarioInput) -> ResolvedScenario:
        """Look up, cap and check the scenario of a run."""
        return self.resolve(run_input)

    def resolve(self, run_input: ScenarioInput) -> ResolvedScenario:
        """The same as the activity, callable from the CLI to check before starting."""
        if run_input.backend is not None and run_input.backend != self.backend:
            raise _invalid(
                f"backend: the run asks for '{run_input.backend}' but this worker's fault "
                f"backend is '{self.backend}'"
            )
        try:
            scenario = scenario_of(run_input)
        except UnknownScenario as err:
            raise _invalid(f"scenario: {err}") from err
        except ValidationError as err:
            raise _invalid(describe_validation_error(err)) from err
        check_namespaces(scenario, self.allowed_namespaces)
        return ResolvedScenario(
            scenario=scenario, backend=self.backend, allowed_namespaces=self.allowed_namespaces
        )

    def all(self) -> list[object]:
        """Every activity of this class, for the worker."""
        return [self.resolve_scenario]
