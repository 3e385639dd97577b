"""A chaos scenario: steps of faults, what to verify, and when to abort.

`ScenarioInput` is the one input of `ChaosScenarioWorkflow`: the CLI, scenario files,
`temporal workflow start --input` and the weekly schedule all produce it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from models.base import Frozen
from models.contract import GoalRunContract
from models.durations import Duration
from models.faults import FaultSpec
from models.schedule import ScheduleSettings

#: The shortest `probe_interval`. One probe is a canary start, a visibility query, a task-queue
#: describe and a replica read (about 0.1-1 s on a busy machine): probing faster measures the
#: probe, not the system. The history bound of a long fault comes from `MAX_HOLD_PROBES`.
MIN_PROBE_INTERVAL = timedelta(seconds=1)
#: Hold probes per fault at most: a longer fault's probes are spread out (1 h: one per 10 s),
#: so its history stays far below Temporal's limits whatever the interval.
MAX_HOLD_PROBES = 360
#: Faults per scenario at most: a badly failing fault's report is ~50 KB (findings and
#: timeline capped), so a whole run's report stays under Temporal's 2 MB payload limit.
MAX_FAULTS = 30


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
    namespace: str | None = Field(
        "bytebot", description="Its namespace (ByteBot's is `bytebot`); null: the worker's own."
    )
    task_queue: str = Field("bytebot-goal-runs", description="Task queue of its goal runs.")
    workflow_type: str = Field("goalRunWorkflow", description="Workflow type to verify.")
    tls: TlsFiles | None = Field(None, description="Client TLS, if the endpoint needs it.")
    api_key_env: str | None = Field(
        None, description="Name of an environment variable of the worker holding an API key."
    )
    contract: GoalRunContract = Field(
        default_factory=GoalRunContract, description="Where a goal run's outcome lives."
    )


def capability_probe() -> dict[str, Any]:
    """ByteBot's own health probe as a GoalRunInput (without its id): the default canary."""
    # ByteBot's own health probe: a one-step goal run that needs no planning or approval.
    return {
        "tenantId": "bytebot-chaos",
        "userId": "bytebot-chaos",
        "goalDescription": "chaos canary: capability probe",
        "constraints": {
            "maxSteps": 1,
            "maxRetries": 1,
            "maxReplans": 0,
            "timeoutMs": 60000,
            "requireApprovalForHighRisk": False,
        },
        "context": {"previousAttempts": 0, "inheritedKnowledge": []},
        "mode": "CAPABILITY_PROBE",
    }


class CanarySpec(Frozen):
    """Goal runs with a known input whose correct result is known."""

    count: int = Field(1, ge=0, le=20, description="Canaries started around each fault.")
    input: dict[str, Any] = Field(
        default_factory=capability_probe,
        description="A whole goal-run input; its `id_field` is set to each canary's own id.",
    )
    id_field: str = Field("goalRunId", description="Input field that carries the canary's id.")
    id_prefix: str = Field(
        "bytebot-chaos-canary",
        pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$",
        description="Canary workflow ids start with this (then fault id and a counter).",
    )
    expected_result: dict[str, Any] = Field(
        default_factory=lambda: {"status": "COMPLETED", "stepsCompleted": 1},
        description="Fields the result must have, with these values (the contract's names).",
    )
    timeout: Duration = Field(timedelta(minutes=1), description="A canary must finish by then.")


class KafkaTarget(Frozen):
    """The system under test's Kafka topics and consumer group."""

    bootstrap: str | None = Field(None, description="Direct bootstrap; default: the worker's.")
    goal_topic: str = "bytebot.goal.events"
    step_topic: str = "bytebot.step.events"
    consumer_group: str = "bytebot-consumers"
    lag_tolerance: int = Field(50, ge=0, description="Lag above baseline still counted as drained.")
    exactly_once: bool = Field(False, description="Fail on duplicate events (else count them).")
    emit_activity_types: list[str] = Field(
        default_factory=lambda: ["emitGoalEvent", "emitStepEvent"],
        description="Activities that write the events: a run's history tells a swallowed emit.",
    )


class DegradationLimits(Frozen):
    """What "degrades gracefully" allows, measured against the steady state before the fault."""

    min_starts_accepted_pct: float | None = Field(
        90.0, ge=0, le=100, description="Share of goal-run starts the frontend must accept."
    )
    max_start_latency_ratio: float | None = Field(
        None, gt=0, description="p95 start latency at most this multiple of the baseline's."
    )
    max_latency_ratio: float | None = Field(
        10.0, gt=0, description="p95 end-to-end goal-run latency at most this multiple."
    )
    slower_ratio: float = Field(
        1.5, gt=1, description='p50 latency above this multiple is "slower execution".'
    )
    min_latency_samples: int = Field(
        3, ge=1, description="Fewer closed goal runs than this give no latency ratio."
    )


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
    probe_interval: Duration = Field(
        timedelta(seconds=5),
        description="Checks during a hold; at least 1s (a probe's own round trips take that "
        "long), and a long fault's probes are spread so it gets at most 360.",
    )
    max_goal_runs: int = Field(2000, ge=1, description="At most this many goal runs followed.")
    degradation: DegradationLimits = Field(default_factory=DegradationLimits)
    latency_lookback: Duration = Field(
        timedelta(minutes=2), description="Steady-state latency: goal runs closed this long before."
    )

    @field_validator("probe_interval")
    @classmethod
    def _probe_interval_floor(cls, value: timedelta) -> timedelta:
        if value < MIN_PROBE_INTERVAL:
            raise ValueError(
                f"probe_interval must be at least {MIN_PROBE_INTERVAL.total_seconds():g}s "
                "(every probe is written into the fault's Temporal history)"
            )
        return value


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
    schedule: ScheduleSettings | None = Field(
        None,
        description="When it runs by itself (`starter.py schedule apply`); a manual run "
        "ignores it.",
    )

    @field_validator("steps")
    @classmethod
    def _bounded_fault_count(cls, steps: list[Step]) -> list[Step]:
        # A field validator, not a model one: that would rename `Scenario` in error paths.
        count = sum(len(step.faults) for step in steps)
        if count > MAX_FAULTS:
            raise ValueError(
                f"{count} faults in one scenario, at most {MAX_FAULTS} "
                "(its report must fit one Temporal payload); split it into several scenarios"
            )
        return steps

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
