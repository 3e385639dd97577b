"""Verification of the system under test's Temporal side, on the real dev server.

Real parts: the suite's Temporal dev server (two namespaces: the chaos worker's `default`
and the system under test's `bytebot-sut`), ChaosScenarioWorkflow and ChaosFaultWorkflow run
by a real Worker, the verification activities, and goal runs executed by real goalRunWorkflow
workers (in-process "replicas" polling their own task queue).

Test doubles, because no cluster or ByteBot runs here:
- `GoalRunWorkflow`: a minimal goalRunWorkflow with switchable bad behaviours (a step that
  fails while the fault holds, a run that stalls forever, a wrong result);
- `StandInBackend`: a stand-in fault backend; "pod-kill" stops replicas' workers (and may
  restart them on recovery), its replicas are read from those workers, and its confirm() can
  report that the fault never took effect;
- `resolve_scenario`: a stand-in resolver returning the inline scenario as is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import names
from activities.backend import NotYet
from activities.faults import FaultActivities
from activities.temporal_clients import (
    TargetMisconfigured,
    TemporalClients,
    TemporalDefaults,
    resolve_endpoint,
)
from activities.temporal_probe import TemporalProbeActivities
from devstack.temporal import TemporalDevServer
from models.ledger import (
    FaultRequest,
    FaultStatus,
    Injection,
    Recovery,
    ReplicaQuery,
    ReplicaSet,
    TargetPreview,
    TargetRef,
)
from models.observations import HoldProbe, HoldProbeInput, ProbeContext, RecoveryInput
from models.report import Criterion, ScenarioReport, Verdict
from models.run import ResolvedScenario
from models.scenario import AbortConditions, Scenario, ScenarioInput, TemporalTarget, TlsFiles
from workflows.fault import FaultWorkflow
from workflows.scenario import ChaosScenarioWorkflow

SUT_NAMESPACE = "bytebot-sut"
BROKEN = "the replica lost the goal run's state under chaos"


# -- the system under test: a minimal goalRunWorkflow and its replicas ---------------------


@workflow.defn(name="goalRunWorkflow", sandboxed=False)
class GoalRunWorkflow:
    """Test double of ByteBot's goal run: `steps` activities; `mode` picks a bad behaviour."""

    @workflow.run
    async def run(self, goal: dict[str, Any]) -> dict[str, Any]:
        mode, steps = goal.get("mode", "ok"), int(goal.get("steps", 2))
        if mode == "stall":
            await workflow.wait_condition(lambda: False)
        for number in range(1, steps + 1):
            await workflow.execute_activity(
                "goal_step", {**goal, "step": number},
                start_to_close_timeout=timedelta(seconds=3),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                         backoff_coefficient=1.0, maximum_attempts=50),
            )  # fmt: skip
        done = steps - 1 if mode == "wrong" else steps
        return {
            "goal_run_id": goal["goal_run_id"], "goal": goal.get("goal", ""),
            "status": "COMPLETED", "steps_completed": done, "output": f"{done} steps",
        }  # fmt: skip


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
            self.connections[name], task_queue=self.task_queue, workflows=[GoalRunWorkflow],
            activities=[self.goal_step], workflow_runner=UnsandboxedWorkflowRunner(),
            identity=name, graceful_shutdown_timeout=timedelta(0),
        )  # fmt: skip
        self.workers[name] = (worker, asyncio.create_task(worker.run()))
        self.starts[name] += 1

    async def stop(self, name: str) -> None:
        if (entry := self.workers.pop(name, None)) is not None:
            await entry[0].shutdown()
            await entry[1]

    async def goal_run(self, tag: str, **goal: Any) -> str:
        workflow_id = f"gr-{tag}-{uuid4().hex[:6]}"
        await self.client.start_workflow(
            "goalRunWorkflow", {"goal_run_id": workflow_id, "goal": tag, **goal},
            id=workflow_id, task_queue=self.task_queue,
        )  # fmt: skip
        return workflow_id


class StandInBackend:
    """Stand-in fault backend (test double): a "pod-kill" stops replicas' workers.

    `kill` replicas are stopped on inject; `restart` brings them back `restart_delay` after
    recovery; `breaks_goal_runs` makes goal-run steps fail while the fault holds;
    `takes_effect=False` makes confirm() never see the fault.
    """

    name = "stand-in"

    def __init__(
        self, system: SystemUnderTest, *, kill: int = 1, restart: bool = True,
        restart_delay: float = 1.0, takes_effect: bool = True, breaks_goal_runs: bool = False,
    ) -> None:  # fmt: skip
        self.system, self.kill, self.restart = system, kill, restart
        self.restart_delay, self.takes_effect = restart_delay, takes_effect
        self.breaks_goal_runs = breaks_goal_runs
        self.killed: dict[str, list[str]] = {}
        self.recovered: list[str] = []
        self._restarts: list[asyncio.Task[None]] = []

    async def preview(self, request: FaultRequest) -> TargetPreview:
        return TargetPreview(
            fault_id=request.fault_id, label=request.fault.label, action=request.fault.action,
            selector=request.fault.target.describe(),
        )  # fmt: skip

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
        return ReplicaSet(replicas=[
            TargetRef(namespace=query.target.namespace, name=name,
                      uid=f"{name}-{self.system.starts[name]}", ready=name in self.system.workers,
                      restarts=max(0, self.system.starts[name] - 1))
            for name in self.system.names
        ])  # fmt: skip

    async def sweep(self) -> list[str]:
        return []


@activity.defn(name=names.RESOLVE_SCENARIO)
async def resolve_scenario(run: ScenarioInput) -> ResolvedScenario:
    """Stand-in resolver: the inline scenario as is (built-in names are not tested here)."""
    assert isinstance(run.scenario, Scenario)
    return ResolvedScenario(
        scenario=run.scenario, backend="stand-in", allowed_namespaces=["bytebot"]
    )


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def clients(temporal_server: TemporalDevServer, client: Client) -> TemporalClients:
    """Clients as the chaos worker builds them; the SUT lives in a namespace of its own."""
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=SUT_NAMESPACE,
                workflow_execution_retention_period=Duration(seconds=86400),
            )
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.ALREADY_EXISTS:
            raise
    return TemporalClients(TemporalDefaults(address=temporal_server.address), own=client)


@pytest.fixture
async def system(clients: TemporalClients) -> AsyncIterator[SystemUnderTest]:
    sut_client = await clients.get(TemporalTarget(namespace=SUT_NAMESPACE))
    sut = SystemUnderTest(sut_client, clients.defaults.address)
    for name in sut.names:
        await sut.start(name)
    yield sut
    for name in list(sut.workers):
        await sut.stop(name)
    query = f"TaskQueue='{sut.task_queue}' AND ExecutionStatus='Running'"
    async for run in sut.client.list_workflows(query):
        await sut.client.get_workflow_handle(run.id).terminate("test over")


def scenario(
    system: SystemUnderTest, *, duration: str = "4s", settle: str = "20s", **extra: Any
) -> ScenarioInput:
    """A one-fault pod-kill scenario against the system, as a person would type it."""
    goal = {"goal": "canary", "steps": 2, "step_seconds": 0.2, **extra.pop("canary_input", {})}
    canary = {"count": 1, "input": goal}
    return ScenarioInput.model_validate({"scenario": {
        "name": "verify", "steps": [{"fault": {"action": "pod-kill", "duration": duration}}],
        "verification": {
            "temporal": {"namespace": SUT_NAMESPACE, "task_queue": system.task_queue},
            "kafka": None, "canary": canary, "settle": settle, "probe_interval": "1s",
        },
        **extra,
    }})  # fmt: skip


@asynccontextmanager
async def chaos_worker(
    client: Client, clients: TemporalClients, backend: StandInBackend
) -> AsyncIterator[Callable[[ScenarioInput], Awaitable[tuple[ScenarioReport, str]]]]:
    """A real chaos worker (sandboxed workflows); yields `run(scenario) -> (report, id)`."""
    task_queue = f"chaos-{uuid4().hex[:8]}"
    probe = TemporalProbeActivities(clients, backend)
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "models", "activities", "workflows"
        )
    )
    worker = Worker(
        client, task_queue=task_queue, workflows=[ChaosScenarioWorkflow, FaultWorkflow],
        activities=[*probe.all(), *FaultActivities(backend).all(), resolve_scenario],  # type: ignore[list-item]
        workflow_runner=runner,
    )  # fmt: skip

    async def run(scenario_input: ScenarioInput) -> tuple[ScenarioReport, str]:
        workflow_id = f"chaos-{uuid4().hex[:8]}"
        report = await client.execute_workflow(
            ChaosScenarioWorkflow.run, scenario_input, id=workflow_id, task_queue=task_queue,
            execution_timeout=timedelta(minutes=3),
        )  # fmt: skip
        return report, workflow_id

    async with worker:
        yield run


def criterion(report: ScenarioReport, which: Criterion) -> Any:
    (fault,) = report.faults()
    return next(c for c in fault.criteria if c.criterion is which)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.2)


# -- the verdicts, through the real workflows -----------------------------------------------


async def test_a_healthy_system_passes_three_runs_in_a_row(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=1)
    async with chaos_worker(client, clients, backend) as run:
        for attempt in range(3):
            in_flight = [await system.goal_run(f"ok{attempt}", steps=10, step_seconds=0.4)
                         for _ in range(3)]  # fmt: skip
            report, workflow_id = await run(scenario(system))
            assert report.verdict is Verdict.PASS, report.reason
            assert report.score_pct == 100.0
            (fault,) = report.faults()
            assert fault.time_to_recovery_s is not None and 0 < fault.time_to_recovery_s < 20
            loss = criterion(report, Criterion.NO_DATA_LOSS)
            assert "3 goal runs in flight at injection: 3 completed" in loss.evidence[0]
            assert criterion(report, Criterion.EVENT_ORDERING).verdict is Verdict.NOT_RUN
            for goal_run in in_flight:
                desc = await system.client.get_workflow_handle(goal_run).describe()
                assert desc.status is WorkflowExecutionStatus.COMPLETED

    async def verdict_is_searchable() -> bool:
        query = f"WorkflowId='{workflow_id}' AND ChaosVerdict='pass'"
        return (await client.count_workflows(query)).count == 1

    await eventually(verdict_is_searchable)


async def test_a_goal_run_that_fails_under_chaos_is_named_as_lost(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=0, breaks_goal_runs=True)
    victim = await system.goal_run("victim", steps=30, step_seconds=0.3)
    async with chaos_worker(client, clients, backend) as run:
        report, _ = await run(scenario(system))
    assert report.verdict is Verdict.FAIL
    loss = criterion(report, Criterion.NO_DATA_LOSS)
    assert loss.verdict is Verdict.FAIL
    (finding,) = [f for f in loss.findings if f.startswith(victim)]
    assert f"{victim}: failed:" in finding and BROKEN in finding
    assert victim in report.reason


async def test_a_stalled_goal_run_is_named_as_lost(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=0)
    stalled = await system.goal_run("stuck", mode="stall")
    healthy = await system.goal_run("fine", steps=6, step_seconds=0.3)

    async def parked() -> bool:  # its first workflow task ran: it now waits for ever
        desc = await system.client.get_workflow_handle(stalled).describe()
        return desc.history_length >= 4

    await eventually(parked)
    async with chaos_worker(client, clients, backend) as run:
        report, _ = await run(scenario(system, settle="8s"))
    loss = criterion(report, Criterion.NO_DATA_LOSS)
    assert report.verdict is Verdict.FAIL and loss.verdict is Verdict.FAIL
    assert [f for f in loss.findings if f.startswith(f"{stalled}: stalled: no new event")]
    assert not [f for f in loss.findings if healthy in f]


async def test_a_canary_with_a_wrong_result_is_named(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=0)
    async with chaos_worker(client, clients, backend) as run:
        report, _ = await run(scenario(system, canary_input={"mode": "wrong"}))
    (fault,) = report.faults()
    loss = criterion(report, Criterion.NO_DATA_LOSS)
    expected = f"canary {fault.fault_id}-canary-0: wrong-result: wrong result: steps_completed=1"
    assert any(f.startswith(expected) for f in loss.findings), loss.findings
    recovery = criterion(report, Criterion.AUTOMATIC_RECOVERY)
    assert recovery.verdict is Verdict.FAIL
    assert any(f"{fault.fault_id}-recovery did not complete" in f for f in recovery.findings)


async def test_a_task_queue_left_without_pollers_fails_automatic_recovery(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=2, restart=False)
    orphan = await system.goal_run("orphan", steps=30, step_seconds=0.3)
    async with chaos_worker(client, clients, backend) as run:
        # Long enough a hold for a canary to wait past the poll grace while it holds.
        report, _ = await run(scenario(system, duration="6s", settle="6s"))
    loss = criterion(report, Criterion.NO_DATA_LOSS)
    # It made progress before its workers died: judged after the fault, it is stalled.
    assert any(f.startswith(f"{orphan}: stalled: no new event") for f in loss.findings)
    recovery = criterion(report, Criterion.AUTOMATIC_RECOVERY)
    assert report.verdict is Verdict.FAIL and recovery.verdict is Verdict.FAIL
    assert any(f"no live poller on task queue '{system.task_queue}'" in f
               for f in recovery.findings), recovery.findings  # fmt: skip
    assert any("0 of 2 baseline worker replicas ready" in f for f in recovery.findings)
    (fault,) = report.faults()
    assert fault.time_to_recovery_s is None
    degradation = criterion(report, Criterion.GRACEFUL_DEGRADATION)
    assert any("saw no live poller" in e for e in degradation.evidence), degradation.evidence


async def test_a_fault_that_never_took_effect_is_inconclusive_not_pass(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=0, takes_effect=False)
    async with chaos_worker(client, clients, backend) as run:
        report, _ = await run(scenario(system))
    (fault,) = report.faults()
    assert report.verdict is Verdict.INCONCLUSIVE
    assert fault.reason.startswith("the fault never took effect")
    assert "no replica shows the fault" in fault.reason
    assert not [c for c in fault.criteria if c.verdict is Verdict.PASS]
    assert report.score_pct == 0.0


async def test_an_abort_condition_breached_mid_hold_recovers_and_ends_aborted(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=2, restart=True, restart_delay=0.5)
    run_input = scenario(system, duration="20s", abort_conditions={"max_no_pollers": "1s"})
    began = time.monotonic()
    async with chaos_worker(client, clients, backend) as run:
        report, _ = await run(run_input)
    assert report.verdict is Verdict.ABORTED
    assert f"no live poller on task queue '{system.task_queue}' for " in report.reason
    assert report.reason.endswith("(limit 1s)")
    (record,) = report.ledger
    assert record.status is FaultStatus.RECOVERED and record.fault_id in backend.recovered
    assert record.injected_at and record.recovered_at
    assert (record.recovered_at - record.injected_at).total_seconds() < 15  # cut short
    assert time.monotonic() - began < 60
    await eventually(lambda: _true(len(system.workers) == 2))


async def _true(value: bool) -> bool:
    return value


# -- the activities, called directly --------------------------------------------------------


def context(system: SystemUnderTest, fault_id: str, max_goal_runs: int = 2000) -> ProbeContext:
    return ProbeContext.model_validate({
        "run_id": "direct", "fault_id": fault_id, "target": {},
        "verification": {
            "temporal": {"namespace": SUT_NAMESPACE, "task_queue": system.task_queue},
            "kafka": None, "max_goal_runs": max_goal_runs,
        },
    })  # fmt: skip


async def test_the_census_is_bounded_and_says_when_it_is_truncated(
    clients: TemporalClients, system: SystemUnderTest
) -> None:
    probe = TemporalProbeActivities(clients, StandInBackend(system))
    runs = {await system.goal_run("parked", mode="stall") for _ in range(5)}
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *d: beats.append(d)

    async def all_listed() -> bool:
        query = f"TaskQueue='{system.task_queue}' AND ExecutionStatus='Running'"
        return (await system.client.count_workflows(query)).count >= 5

    await eventually(all_listed)
    fault_id = f"census-{uuid4().hex[:6]}"
    baseline = await env.run(probe.check_steady_state, context(system, fault_id, max_goal_runs=3))
    assert len(baseline.goal_runs) == 3 and baseline.truncated
    assert {m.workflow_id for m in baseline.goal_runs} <= runs
    assert all(m.history_length >= 2 for m in baseline.goal_runs)
    assert baseline.canary_ids == [f"{fault_id}-canary-0"] and baseline.steady
    assert beats and beats[0][0] == "census"


async def test_a_gone_worker_still_listed_by_describe_task_queue_is_not_counted_live(
    clients: TemporalClients, system: SystemUnderTest
) -> None:
    probe = TemporalProbeActivities(clients, StandInBackend(system))
    target = TemporalTarget(namespace=SUT_NAMESPACE, task_queue=system.task_queue)

    async def polling() -> bool:
        return (await probe.live_pollers(system.client, target, []))[0] >= 1

    await eventually(polling)
    for name in system.names:
        await system.stop(name)
    canary = f"gone-{uuid4().hex[:6]}-canary-0"
    await system.client.start_workflow(
        "goalRunWorkflow", {"goal_run_id": canary}, id=canary, task_queue=system.task_queue
    )
    await asyncio.sleep(probe.poll_grace.total_seconds() + 0.5)
    live, since, notes = await probe.live_pollers(system.client, target, [canary])
    assert live == 0 and since is not None
    listed = int(notes[-1].split(" poller(s) listed")[0])
    assert listed >= 1 and ", 0 live" in notes[-1], notes  # the server still lists a gone one
    assert datetime.now(UTC) - since >= probe.poll_grace
    await system.start("replica-0")
    await system.client.get_workflow_handle(canary).result()
    live, since, _ = await probe.live_pollers(system.client, target, [canary])
    assert live >= 1 and since is None


async def test_await_recovery_heartbeats_and_honours_cancellation(
    clients: TemporalClients, system: SystemUnderTest
) -> None:
    probe = TemporalProbeActivities(clients, StandInBackend(system))
    ctx = context(system, f"cancel-{uuid4().hex[:6]}")
    baseline = await ActivityEnvironment().run(probe.check_steady_state, ctx)
    for name in system.names:
        await system.stop(name)
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *d: beats.append(d)
    now = datetime.now(UTC)
    task = asyncio.create_task(env.run(probe.await_recovery, RecoveryInput(
        context=ctx, baseline=baseline, recovered_at=now, injected_at=now,
    )))  # fmt: skip
    await eventually(lambda: _true(len(beats) >= 2))
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_recovery_slower_than_the_abort_limit_is_a_breach(
    clients: TemporalClients, system: SystemUnderTest
) -> None:
    probe = TemporalProbeActivities(clients, StandInBackend(system))
    ctx = context(system, f"slow-{uuid4().hex[:6]}")
    baseline = await ActivityEnvironment().run(probe.check_steady_state, ctx)
    for name in system.names:
        await system.stop(name)
    ctx = ctx.model_copy(update={"abort": AbortConditions(max_recovery=timedelta(seconds=1))})
    now = datetime.now(UTC)
    began = time.monotonic()
    check = await ActivityEnvironment().run(probe.await_recovery, RecoveryInput(
        context=ctx, baseline=baseline, recovered_at=now, injected_at=now,
    ))  # fmt: skip
    assert time.monotonic() - began < 5  # gave up at the limit, not at the settle window
    assert not check.recovered and check.time_to_recovery_s is None
    assert check.breach and check.breach.startswith("recovery took longer than 1s (not recovered)")
    assert "0 of 2 baseline worker replicas ready" in check.breach


async def test_more_failed_goal_runs_than_the_abort_limit_is_a_breach(
    clients: TemporalClients, system: SystemUnderTest
) -> None:
    probe = TemporalProbeActivities(clients, StandInBackend(system))
    ctx = context(system, f"failing-{uuid4().hex[:6]}")
    ctx = ctx.model_copy(update={"abort": AbortConditions(max_failed_goal_runs=0)})
    baseline = await ActivityEnvironment().run(probe.check_steady_state, ctx)
    for canary in baseline.canary_ids:  # the steady state's canary finishes before the fault
        await system.client.get_workflow_handle(canary).result()
    injected_at = datetime.now(UTC)
    system.fault_active = system.breaks_goal_runs = True
    victim = await system.goal_run("victim", steps=1, step_seconds=0.1)

    async def failed() -> bool:
        desc = await system.client.get_workflow_handle(victim).describe()
        return desc.status is WorkflowExecutionStatus.FAILED

    await eventually(failed)

    async def probed() -> HoldProbe:
        return await ActivityEnvironment().run(probe.probe_hold, HoldProbeInput(
            context=ctx, baseline=baseline, injected_at=injected_at,
        ))  # fmt: skip

    hold = await probed()
    for _ in range(20):  # visibility catches up with the close within moments
        if hold.failed_goal_runs:
            break
        await asyncio.sleep(0.2)
        hold = await probed()
    # The probe's own canary may have failed by now too (its steps fail while this holds).
    assert victim in hold.failed_goal_runs
    n = len(hold.failed_goal_runs)
    assert hold.breach and hold.breach.startswith(
        f"{n} goal runs failed during the fault (limit 0)"
    )
    assert victim in hold.breach
    assert hold.canary_starts_ok == 1 and hold.start_latency_s is not None


# -- the client factory ----------------------------------------------------------------------


async def test_clients_are_cached_per_endpoint_and_take_secrets_from_the_environment(
    clients: TemporalClients,
) -> None:
    own = await clients.get(TemporalTarget())
    assert own is await clients.get(TemporalTarget(address=clients.defaults.address))
    sut = await clients.get(TemporalTarget(namespace=SUT_NAMESPACE))
    assert sut is not own and sut.namespace == SUT_NAMESPACE
    assert sut is await clients.get(TemporalTarget(namespace=SUT_NAMESPACE, task_queue="x"))

    defaults = TemporalDefaults(address="a:7233", api_key="worker-key")
    other = TemporalTarget(address="b:7233", namespace="n", api_key_env="SUT_KEY")
    endpoint = resolve_endpoint(other, defaults, {"SUT_KEY": "sut-key"})
    assert (endpoint.address, endpoint.namespace, endpoint.api_key) == ("b:7233", "n", "sut-key")
    assert "sut-key" not in repr(endpoint)
    assert resolve_endpoint(TemporalTarget(), defaults, {}).api_key == "worker-key"
    assert resolve_endpoint(TemporalTarget(address="b:1"), defaults, {}).api_key is None
    with pytest.raises(TargetMisconfigured, match="SUT_KEY"):
        resolve_endpoint(other, defaults, {})
    broken = TemporalClients(defaults)
    with pytest.raises(TargetMisconfigured, match="server CA /nonexistent/ca.pem"):
        await broken.get(TemporalTarget(tls=TlsFiles(server_ca="/nonexistent/ca.pem")))
