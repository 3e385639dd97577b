"""The real chaos workflows, run against the test-side goal runs of tests/support/goal_runs.py.

`chaos_worker` is a real chaos worker (sandboxed ChaosScenarioWorkflow and FaultWorkflow, the
real verification activities) whose backend is the `StandInBackend` and whose `resolve_scenario`
is a stand-in returning the inline scenario as is. `scenario` and `context` build the inputs a
person or the workflow would; `criterion` reads one criterion of a report; `eventually` polls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import uuid4

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.faults.activities import FaultActivities
from activities.verify.clients import TemporalClients
from activities.verify.probe import TemporalProbeActivities
from models.observations import ProbeContext
from models.report import Criterion, ScenarioReport
from models.run import ResolvedScenario
from models.scenario import Scenario, ScenarioInput, capability_probe
from tests.support.goal_runs import SUT_NAMESPACE, StandInBackend, SystemUnderTest
from workflows import names
from workflows.fault import FaultWorkflow
from workflows.scenario import ChaosScenarioWorkflow


@activity.defn(name=names.RESOLVE_SCENARIO)
async def resolve_scenario(run: ScenarioInput) -> ResolvedScenario:
    """Stand-in resolver: the inline scenario as is (built-in names are not tested here)."""
    assert isinstance(run.scenario, Scenario)
    return ResolvedScenario(
        scenario=run.scenario, backend="stand-in", allowed_namespaces=["bytebot"]
    )


def scenario(
    system: SystemUnderTest, *, duration: str = "4s", settle: str = "20s", **extra: Any
) -> ScenarioInput:
    """A one-fault pod-kill scenario against the system, as a person would type it."""
    goal = {**capability_probe(), "step_seconds": 0.2, **extra.pop("canary_input", {})}
    canary = {"count": 1, "input": goal}
    return ScenarioInput.model_validate(
        {
            "scenario": {
                "name": "verify",
                "steps": [{"fault": {"action": "pod-kill", "duration": duration}}],
                "verification": {
                    "temporal": {"namespace": SUT_NAMESPACE, "task_queue": system.task_queue},
                    "kafka": None,
                    "canary": canary,
                    "settle": settle,
                    "probe_interval": "1s",
                },
                **extra,
            }
        }
    )


@asynccontextmanager
async def chaos_worker(
    client: Client,
    clients: TemporalClients,
    backend: StandInBackend,
    extra_activities: Sequence[Callable[..., Any]] = (),
) -> AsyncIterator[Callable[[ScenarioInput], Awaitable[tuple[ScenarioReport, str]]]]:
    """A real chaos worker (sandboxed workflows); yields `run(scenario) -> (report, id)`.

    `extra_activities`: e.g. the real Kafka probes, for a run with Kafka checks on.
    """
    task_queue = f"chaos-{uuid4().hex[:8]}"
    probe = TemporalProbeActivities(clients, backend)
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "models", "activities", "workflows"
        )
    )
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[ChaosScenarioWorkflow, FaultWorkflow],
        activities=[
            *probe.all(),
            *FaultActivities(backend).all(),
            resolve_scenario,
            *extra_activities,
        ],  # type: ignore[list-item]
        workflow_runner=runner,
    )

    async def run(scenario_input: ScenarioInput) -> tuple[ScenarioReport, str]:
        workflow_id = f"chaos-{uuid4().hex[:8]}"
        report = await client.execute_workflow(
            ChaosScenarioWorkflow.run,
            scenario_input,
            id=workflow_id,
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=3),
        )
        return report, workflow_id

    async with worker:
        yield run


def context(system: SystemUnderTest, fault_id: str, max_goal_runs: int = 2000) -> ProbeContext:
    """The probe context a scenario run would pass the verification activities."""
    return ProbeContext.model_validate(
        {
            "scenario_id": "direct",
            "fault_id": fault_id,
            "target": {},
            "verification": {
                "temporal": {"namespace": SUT_NAMESPACE, "task_queue": system.task_queue},
                "kafka": None,
                "max_goal_runs": max_goal_runs,
            },
        }
    )


def criterion(report: ScenarioReport, which: Criterion) -> Any:
    """The one fault's judgement of `which`."""
    (fault,) = report.faults()
    return next(c for c in fault.criteria if c.criterion is which)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    """Await `check` until it is true; fail once `within_s` has passed."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.2)


async def holds(value: bool) -> bool:
    """`value`, awaitable: lets `eventually` poll a plain condition."""
    return value
