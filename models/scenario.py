"""A chaos scenario: steps of faults, what to verify, and when to abort.

`ScenarioInput` is the one input of `ChaosScenarioWorkflow`: the CLI, scenario files,
`temporal workflow start --input` and the weekly schedule all produce it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, model_validator

from models.base import Frozen
from models.durations import Duration
from models.faults import FaultSpec


class Step(Frozen):
    """One step: faults injected together (in parallel), or a pause between faults."""

    name: str | None = Field(None, description="Shown in the Web UI and the report.")
    faults: list[FaultSpec] = Field(
        default_factory=list, description="Faults held at the same time (e.g. combined stress)."
    )
    pause: Duration | None = Field(None, description="A quiet period instead of faults.")

    @model_validator(mode="before")
    @classmethod
    def _single_fault_shorthand(cls, data: Any) -> Any:
        # `{"fault": {...}}` is the common case; it means `{"faults": [{...}]}`.
        if isinstance(data, dict) and "fault" in data:
            data = dict(data)
            if "faults" in data:
                raise ValueError("give either 'fault' or 'faults', not both")
            data["faults"] = [data.pop("fault")]
        return data

    @model_validator(mode="after")
    def _faults_or_pause(self) -> Step:
        if bool(self.faults) == (self.pause is not None):
            raise ValueError("a step holds either one or more faults or a pause")
        labels = [f.label for f in self.faults]
        if len(set(labels)) != len(labels):
            raise ValueError(f"faults of one step need distinct names, got {labels}")
        return self

    @property
    def label(self) -> str:
        """The step's name, or what it does."""
        if self.name:
            return self.name
        if self.pause is not None:
            return "pause"
        return "+".join(f.label for f in self.faults)


class TlsFiles(Frozen):
    """Client TLS for a Temporal endpoint, as file paths on the chaos worker."""

    client_cert: str | None = Field(None, description="PEM client certificate path.")
    client_key: str | None = Field(None, description="PEM client key path.")
    server_ca: str | None = Field(None, description="PEM CA bundle path.")
    server_name: str | None = Field(None, description="Override of the TLS server name.")


class TemporalTarget(Frozen):
    """Where the system under test runs its goalRunWorkflow executions."""

    address: str | None = Field(
        None, description="host:port of its frontend; default: the chaos worker's own."
    )
    namespace: str | None = Field(None, description="Its namespace; default: the worker's own.")
    task_queue: str = Field("bytebot-goal-runs", description="Task queue of its goal runs.")
    workflow_type: str = Field("goalRunWorkflow", description="Workflow type to verify.")
    tls: TlsFiles | None = Field(None, description="Client TLS, if the endpoint needs it.")
    api_key_env: str | None = Field(
        None, description="Name of an environment variable of the worker holding an API key."
    )


class CanarySpec(Frozen):
    """Goal runs with a known input whose correct result is known."""

    count: int = Field(1, ge=0, le=20, description="Canaries started around each fault.")
    input: dict[str, Any] = Field(
        default_factory=lambda: {"goal": "canary", "steps": 2, "step_seconds": 0.2},
        description="The canary goal run's input (its goal_run_id is filled in).",
    )
    expected_result: dict[str, Any] = Field(
        default_factory=lambda: {"status": "COMPLETED", "steps_completed": 2},
        description="Fields the result must have, with these values.",
    )
    timeout: Duration = Field(timedelta(minutes=2), description="A canary must finish by then.")


class KafkaTarget(Frozen):
    """The system under test's Kafka topics and consumer group."""

    bootstrap: str | None = Field(None, description="Direct bootstrap; default: the worker's.")
    goal_topic: str = "bytebot.goal.events"
    step_topic: str = "bytebot.step.events"
    consumer_group: str = "bytebot-consumers"
    lag_tolerance: int = Field(50, ge=0, description="Lag above baseline still counted as drained.")
    exactly_once: bool = Field(False, description="Fail on duplicate eventIds (else report).")


class Verification(Frozen):
    """How the system under test is checked around each fault."""

    temporal: TemporalTarget = Field(default_factory=TemporalTarget)
    kafka: KafkaTarget | None = Field(
        default_factory=KafkaTarget, description="Kafka checks; null turns them off."
    )
    canary: CanarySpec = Field(default_factory=CanarySpec)
    settle: Duration = Field(
        timedelta(minutes=2), description="After recovery, the system must be whole by then."
    )
    probe_interval: Duration = Field(timedelta(seconds=5), description="Checks during a hold.")
    max_goal_runs: int = Field(2000, ge=1, description="At most this many goal runs followed.")


class AbortConditions(Frozen):
    """Limits that end a run at once, recovering every fault."""

    max_failed_goal_runs: int | None = Field(
        None, ge=0, description="Abort when more goal runs than this failed during a fault."
    )
    max_no_pollers: Duration | None = Field(
        None, description="Abort when the goal runs' task queue had no poller for this long."
    )
    max_recovery: Duration | None = Field(
        None, description="Abort when recovery after a fault takes longer than this."
    )


class Scenario(Frozen):
    """A named sequence of steps, run in series."""

    name: str = Field(pattern=r"^[a-z0-9][-a-z0-9]{0,62}$", description="Scenario name.")
    description: str = ""
    steps: list[Step] = Field(min_length=1)
    verification: Verification = Field(default_factory=Verification)
    abort_conditions: AbortConditions = Field(default_factory=AbortConditions)
    continue_on_failure: bool = Field(
        False, description="Run the remaining steps after a failed one."
    )

    @property
    def fault_count(self) -> int:
        """How many faults the scenario injects in all."""
        return sum(len(step.faults) for step in self.steps)


class ScenarioInput(Frozen):
    """The input of a chaos run: a built-in scenario's name or a whole scenario."""

    scenario: str | Scenario = Field(description="Built-in scenario name, or a scenario.")
    dry_run: bool = Field(False, description="Validate and preview targets; inject nothing.")
    backend: str | None = Field(
        None, description="Fault backend the run expects ('local' or 'chaos-mesh')."
    )
    duration_cap: Duration | None = Field(
        None, description="Shorten every fault and pause to at most this (quick runs)."
    )
    settle_cap: Duration | None = Field(None, description="Shorten the settle window too.")
