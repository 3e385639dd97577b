"""A test-side system under test on Temporal: goal runs, their replicas, a fault backend for them.

Test doubles, because no cluster or ByteBot runs in the verification tests:
- `GoalRunWorkflow`: a minimal goalRunWorkflow with switchable bad behaviours (a step that
  fails while the fault holds, a run that stalls forever, a wrong result);
- `SystemUnderTest`: real Temporal workers of it ("replicas"), in-process, each polling one task
  queue of the `bytebot-sut` namespace on its own connection;
- `StandInBackend`: a stand-in fault backend; "pod-kill" stops replicas' workers (and may
  restart them on recovery), its replicas are read from those workers, and its confirm() can
  report that the fault never took effect.

The namespace itself is registered by the tests' fixture, not here.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any
from uuid import uuid4

from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.faults.backend import NotYet
from models.ledger import (
    FaultRequest,
    Injection,
    Recovery,
    ReplicaQuery,
    ReplicaSet,
    TargetPreview,
    TargetRef,
)

SUT_NAMESPACE = "bytebot"  # the dev server registers ByteBot's search attributes there
BROKEN = "the replica lost the goal run's state under chaos"
PHASE = SearchAttributeKey.for_keyword("ByteBotPhase")
STEPS = SearchAttributeKey.for_int("ByteBotStepCount")


@workflow.defn(name="goalRunWorkflow", sandboxed=False)
class GoalRunWorkflow:
    """Test double of ByteBot's goal run on its contract: `constraints.maxSteps` activities.

    Like the real workflow it catches a failure of its body and *completes* with
    `status: FAILED`; `mode` picks a bad behaviour: "stall" waits for ever, "wrong" reports one
    step more than it did.
    """

    @workflow.run
    async def run(self, goal: dict[str, Any]) -> dict[str, Any]:
        mode = goal.get("mode", "ok")
        steps = int(goal.get("constraints", {}).get("maxSteps", 2))
        goal_run_id = goal["goalRunId"]
        workflow.upsert_search_attributes([PHASE.value_set("EXECUTING"), STEPS.value_set(steps)])
        if mode == "stall":
            await workflow.wait_condition(lambda: False)
        for number in range(1, steps + 1):
            try:
                await workflow.execute_activity(
                    "goal_step",
                    {**goal, "step": number},
                    start_to_close_timeout=timedelta(seconds=3),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(milliseconds=200),
                        backoff_coefficient=1.0,
                        maximum_attempts=50,
                    ),
                )
            except ActivityError as err:
                workflow.upsert_search_attributes([PHASE.value_set("FAILED")])
                return {
                    "goalRunId": goal_run_id,
                    "status": "FAILED",
                    "stepsCompleted": number - 1,
                    "errorDetails": {
                        "errorType": "StateLost",
                        "errorMessage": str(err.cause or err),
                        "failedStep": number,
                        "recoverable": False,
                    },
                }
        done = steps + 1 if mode == "wrong" else steps
        workflow.upsert_search_attributes([PHASE.value_set("COMPLETED")])
        return {"goalRunId": goal_run_id, "status": "COMPLETED", "stepsCompleted": done}


class SystemUnderTest:
    """Real goalRunWorkflow workers ("replicas") on one task queue of the SUT namespace."""

    def __init__(self, client: Client, address: str, replicas: int = 2) -> None:
        self.client, self.address = client, address
        self.connections: dict[str, Client] = {}
        self.task_queue = f"goal-runs-{uuid4().hex[:8]}"
        self.names = [f"replica-{i}" for i in range(replicas)]
        self.workers: dict[str, tuple[Worker, asyncio.Task[None]]] = {}
        self.starts = dict.fromkeys(self.names, 0)
        self.fault_active = False
        self.breaks_goal_runs = False

    @activity.defn(name="goal_step")
    async def goal_step(self, goal: dict[str, Any]) -> str:
        """One step; fails for good while a fault that breaks goal runs holds."""
        await asyncio.sleep(float(goal.get("step_seconds", 0.2)))
        if self.fault_active and self.breaks_goal_runs:
            raise ApplicationError(BROKEN, type="StateLost", non_retryable=True)
        return f"step {goal['step']}"

    async def start(self, name: str) -> None:
        # One connection per replica, as separate processes have (the SDK refuses two workers
        # of one task queue on one client).
        if name not in self.connections:
            self.connections[name] = await Client.connect(
                self.address, namespace=SUT_NAMESPACE, data_converter=pydantic_data_converter
            )
        worker = Worker(
            self.connections[name],
            task_queue=self.task_queue,
            workflows=[GoalRunWorkflow],
            activities=[self.goal_step],
            workflow_runner=UnsandboxedWorkflowRunner(),
            # The SDK's default shape, `<pid>@<host>`, with the replica's name as the host, as
            # a pod's hostname is its name: how the probes tell replicas' pollers apart.
            identity=f"{os.getpid()}@{name}",
            graceful_shutdown_timeout=timedelta(0),
        )
        self.workers[name] = (worker, asyncio.create_task(worker.run()))
        self.starts[name] += 1

    async def stop(self, name: str) -> None:
        if (entry := self.workers.pop(name, None)) is not None:
            await entry[0].shutdown()
            await entry[1]

    async def goal_run(self, tag: str, steps: int = 2, **goal: Any) -> str:
        """Start a goal run with a well-formed GoalRunInput (`goal` adds test-only knobs)."""
        workflow_id = f"gr-{tag}-{uuid4().hex[:6]}"
        await self.client.start_workflow(
            "goalRunWorkflow",
            {
                "goalRunId": workflow_id,
                "tenantId": "tests",
                "userId": "tests",
                "goalDescription": tag,
                "constraints": {"maxSteps": steps},
                **goal,
            },
            id=workflow_id,
            task_queue=self.task_queue,
        )
        return workflow_id


class StandInBackend:
    """Stand-in fault backend (test double): a "pod-kill" stops replicas' workers.

    `kill` replicas are stopped on inject; `restart` brings them back `restart_delay` after
    recovery; `breaks_goal_runs` makes goal-run steps fail while the fault holds;
    `takes_effect=False` makes confirm() never see the fault.
    """

    name = "stand-in"

    def __init__(
        self,
        system: SystemUnderTest,
        *,
        kill: int = 1,
        restart: bool = True,
        restart_delay: float = 1.0,
        takes_effect: bool = True,
        breaks_goal_runs: bool = False,
    ) -> None:
        self.system, self.kill, self.restart = system, kill, restart
        self.restart_delay, self.takes_effect = restart_delay, takes_effect
        self.breaks_goal_runs = breaks_goal_runs
        self.killed: dict[str, list[str]] = {}
        self.recovered: list[str] = []
        self._restarts: list[asyncio.Task[None]] = []

    async def preview(self, request: FaultRequest) -> TargetPreview:
        return TargetPreview(
            fault_id=request.fault_id,
            label=request.fault.label,
            action=request.fault.action,
            selector=request.fault.target.describe(),
        )

    async def inject(self, request: FaultRequest) -> Injection:
        if request.fault_id not in self.killed:
            self.killed[request.fault_id] = victims = self.system.names[: self.kill]
            for name in victims:
                await self.system.stop(name)
            self.system.fault_active = True
            self.system.breaks_goal_runs = self.breaks_goal_runs
        victims = self.killed[request.fault_id]
        return Injection(targets=[TargetRef(name=n) for n in victims], in_effect=True)

    async def confirm(self, request: FaultRequest) -> Injection:
        if not self.takes_effect:
            raise NotYet("no replica shows the fault")
        return Injection(in_effect=True, evidence=[f"stopped {self.killed[request.fault_id]}"])

    async def recover(self, request: FaultRequest) -> Recovery:
        self.system.fault_active = False
        if request.fault_id not in self.recovered:
            self.recovered.append(request.fault_id)
            if self.restart:
                self._restarts.append(asyncio.create_task(self._bring_back(request.fault_id)))
        return Recovery(recovered=True, evidence=["stand-in recovered"])

    async def _bring_back(self, fault_id: str) -> None:
        await asyncio.sleep(self.restart_delay)
        for name in self.killed.get(fault_id, []):
            if name not in self.system.workers:
                await self.system.start(name)

    async def read_replicas(self, query: ReplicaQuery) -> ReplicaSet:
        return ReplicaSet(
            replicas=[
                TargetRef(
                    namespace=query.target.namespace,
                    name=name,
                    uid=f"{name}-{self.system.starts[name]}",
                    ready=name in self.system.workers,
                    restarts=max(0, self.system.starts[name] - 1),
                )
                for name in self.system.names
            ]
        )

    async def sweep(self) -> list[str]:
        return []


async def ensure_namespace(client: Client, namespace: str) -> None:
    """Register a Temporal namespace for the system under test, unless it exists."""
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
            )
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.ALREADY_EXISTS:
            raise
