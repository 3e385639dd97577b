"""Helpers for the Chaos Mesh backend's tests on a real kube-apiserver (tests/test_chaos_mesh.py).

Fault requests aimed at a test's namespace, what Chaos Mesh objects a namespace holds, scenarios
moved into that namespace, and `Runs`: a worker with the real workflows, the Chaos Mesh backend
and the sweeper. Its verification activities are the `HealthyProbes` stand-in
(tests/support/standins.py). Nothing here creates a cluster or a controller: the tests' fixtures
do (tests/support/fake_chaos_controller.py holds the controller stand-in).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from temporalio.client import Client
from temporalio.worker import Worker

from activities.faults.activities import FaultActivities
from activities.faults.backend import NotYet
from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import KubeClient
from activities.faults.chaos_mesh.render import KINDS
from activities.faults.chaos_mesh.sweeper import SweeperActivities
from activities.scenario import ScenarioActivities
from models.faults import FaultSpec
from models.ledger import FaultRequest, Injection
from models.scenario import Scenario, ScenarioInput
from models.sweep import SweepInput, SweepReport
from tests.support.standins import HealthyProbes
from worker import WORKFLOWS, workflow_runner
from workflows.scenario import ChaosScenarioWorkflow
from workflows.sweeper import ChaosOrphanSweeperWorkflow

FAULT = TypeAdapter(FaultSpec)
#: DNS patterns Chaos Mesh accepts (a wildcard only at the end).
DNS_PATTERNS = ["temporal*", "core-cluster-kafka*"]


def request(
    ns: str,
    fault: dict[str, Any],
    *,
    run_id: str = "run-1",
    step: int = 0,
    expires_in: timedelta = timedelta(minutes=5),
) -> FaultRequest:
    """A fault request for `fault`, aimed at (and allowed only in) namespace `ns`."""
    spec = FAULT.validate_python({"target": {"namespace": ns}, **fault})
    return FaultRequest(
        fault_id=f"chaos-{secrets.token_hex(4)}-{step:02d}-{spec.label}",
        scenario_id=run_id,
        step=step,
        fault=spec,
        expires_at=datetime.now(UTC) + expires_in,
        allowed_namespaces=[ns],
    )


async def objects(kc: KubeClient, ns: str) -> list[str]:
    """Every Chaos Mesh object of our four kinds in a namespace (whoever made it)."""
    return [o["metadata"]["name"] for k in KINDS for o in await kc.list_objects(k.plural, ns, "")]


async def names_are(kc: KubeClient, ns: str, expected: list[str]) -> None:
    """Assert the namespace holds exactly the Chaos Mesh objects named `expected`."""
    assert sorted(await objects(kc, ns)) == sorted(expected)


async def confirm_now(backend: ChaosMeshBackend, req: FaultRequest) -> Injection:
    """`backend.confirm(req)`, with NotYet as an AssertionError so `assert_eventually` polls."""
    try:
        return await backend.confirm(req)
    except NotYet as err:
        raise AssertionError(str(err)) from err


def with_dns_patterns(data: dict[str, Any]) -> dict[str, Any]:
    """Give every dns-error fault of a scenario's data `DNS_PATTERNS`."""
    for step in data["steps"]:
        for fault in step["faults"]:
            if fault["action"] == "dns-error":
                fault["patterns"] = DNS_PATTERNS
    return data


def scenario_in(ns: str, *steps: dict[str, Any], **extra: Any) -> Scenario:
    """A scenario of `steps` whose faults target namespace `ns`, with a short verification."""
    data: dict[str, Any] = {
        "name": "t",
        "steps": list(steps),
        "verification": {"kafka": None, "settle": "10s", "probe_interval": "1s"},
        **extra,
    }
    for step in data["steps"]:
        for fault in step.get("faults", [step.get("fault")]):
            if fault:
                fault.setdefault("target", {})["namespace"] = ns
    return Scenario.model_validate(data)


class Runs:
    """A worker on a fresh task queue: real workflows, Chaos Mesh backend, sweeper."""

    def __init__(self, client: Client, kc: KubeClient, backend: ChaosMeshBackend, ns: str) -> None:
        self.client, self.kc, self.ns = client, kc, ns
        self.task_queue = f"chaos-mesh-{uuid.uuid4()}"
        activities: list[Any] = [
            *ScenarioActivities("chaos-mesh", [ns]).all(),
            *FaultActivities(backend).all(),
            *HealthyProbes().all(),
            *SweeperActivities(kc, client, [ns]).all(),
        ]
        self.worker = Worker(
            client,
            task_queue=self.task_queue,
            workflows=list(dict.fromkeys([*WORKFLOWS, ChaosOrphanSweeperWorkflow])),
            workflow_runner=workflow_runner(),
            activities=activities,
        )

    async def start(self, scenario: Scenario, **extra: Any) -> Any:
        return await self.client.start_workflow(
            ChaosScenarioWorkflow.run,
            ScenarioInput(scenario=scenario, **extra),
            id=f"t-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )

    async def sweep(self, **extra: Any) -> SweepReport:
        return await self.client.execute_workflow(
            ChaosOrphanSweeperWorkflow.run,
            SweepInput(**extra),
            id=f"sweep-{uuid.uuid4()}",
            task_queue=self.task_queue,
        )

    async def injected(self) -> list[str]:
        return await objects(self.kc, self.ns)
