"""Verification of the system under test's Temporal side, on the real dev server.

Real parts: the suite's Temporal dev server (two namespaces: the chaos worker's `default`
and the system under test's `bytebot-sut`), ChaosScenarioWorkflow and ChaosFaultWorkflow run
by a real Worker, the verification activities, and goal runs executed by real goalRunWorkflow
workers (in-process "replicas" polling their own task queue).

Test doubles, because no cluster or ByteBot runs here (tests/support/goal_runs.py):
- `GoalRunWorkflow`: a minimal goalRunWorkflow with switchable bad behaviours (a step that
  fails while the fault holds, a run that stalls forever, a wrong result);
- `StandInBackend`: a stand-in fault backend; "pod-kill" stops replicas' workers (and may
  restart them on recovery), its replicas are read from those workers, and its confirm() can
  report that the fault never took effect;
- `resolve_scenario` (tests/support/verification_runs.py, with the chaos worker): a stand-in
  resolver returning the inline scenario as is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.verify.clients import (
    TargetMisconfigured,
    TemporalClients,
    TemporalDefaults,
    resolve_endpoint,
)
from activities.verify.probe import TemporalProbeActivities
from devstack.temporal import TemporalDevServer
from models.ledger import FaultStatus
from models.observations import HoldProbe, HoldProbeInput, RecoveryInput
from models.report import Criterion, Verdict
from models.scenario import AbortConditions, TemporalTarget, TlsFiles
from tests.support.goal_runs import (
    BROKEN,
    SUT_NAMESPACE,
    StandInBackend,
    SystemUnderTest,
    ensure_namespace,
)
from tests.support.verification_runs import (
    chaos_worker,
    context,
    criterion,
    eventually,
    holds,
    scenario,
)

# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def clients(temporal_server: TemporalDevServer, client: Client) -> TemporalClients:
    """Clients as the chaos worker builds them; the SUT lives in a namespace of its own."""
    await ensure_namespace(client, SUT_NAMESPACE)
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


# -- the verdicts, through the real workflows -----------------------------------------------


async def test_a_healthy_system_passes_three_runs_in_a_row(
    client: Client, clients: TemporalClients, system: SystemUnderTest
) -> None:
    backend = StandInBackend(system, kill=1)
    async with chaos_worker(client, clients, backend) as run:
        for attempt in range(3):
            in_flight = [
                await system.goal_run(f"ok{attempt}", steps=10, step_seconds=0.4) for _ in range(3)
            ]
            report, workflow_id = await run(scenario(system))
            assert report.verdict is Verdict.PASS, report.reason
            assert report.score_pct == 100.0
            (fault,) = report.faults()
            assert fault.time_to_recovery_s is not None and 0 < fault.time_to_recovery_s < 20
            loss = criterion(report, Criterion.NO_DATA_LOSS)
            assert (
                "3 goal runs followed (0 started while the fault held): 3 ended well"
                in (loss.evidence[0])
            )
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
    # Completed as an execution, like ByteBot's: the result says what happened.
    assert f"{victim}: result-failed: status FAILED: StateLost: " in finding and BROKEN in finding
    desc = await system.client.get_workflow_handle(victim).describe()
    assert desc.status is WorkflowExecutionStatus.COMPLETED
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
    canary = f"bytebot-chaos-canary-{fault.fault_id}-steady-0"
    expected = f"canary {canary}: wrong-result: wrong result: stepsCompleted=2 (expected 1)"
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
    assert any(f.startswith(f"{orphan}: stalled: no new event") for f in loss.findings), (
        loss.findings
    )
    recovery = criterion(report, Criterion.AUTOMATIC_RECOVERY)
    assert report.verdict is Verdict.FAIL and recovery.verdict is Verdict.FAIL
    assert any(
        f"no live poller on task queue '{system.task_queue}'" in f for f in recovery.findings
    ), recovery.findings
    assert any(" not back after " in f for f in recovery.findings), recovery.findings
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
    assert report.verdict is Verdict.INCONCLUSIVE, report.reason
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
    await eventually(lambda: holds(len(system.workers) == 2))


# -- the activities, called directly --------------------------------------------------------


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
    assert baseline.canary_ids == [f"bytebot-chaos-canary-{fault_id}-steady-0"]
    assert baseline.steady, baseline.problems
    assert beats and beats[0][0] == "census"


async def test_a_gone_worker_still_listed_by_describe_task_queue_is_not_counted_live(
    clients: TemporalClients, system: SystemUnderTest
) -> None:
    probe = TemporalProbeActivities(clients, StandInBackend(system))
    target = TemporalTarget(namespace=SUT_NAMESPACE, task_queue=system.task_queue)

    async def polling() -> bool:
        return (await probe.live_pollers(system.client, target, [])).count >= 1

    await eventually(polling)
    for name in system.names:
        await system.stop(name)
    canary = f"gone-{uuid4().hex[:6]}-canary-0"
    await system.client.start_workflow(
        "goalRunWorkflow", {"goalRunId": canary}, id=canary, task_queue=system.task_queue
    )
    await asyncio.sleep(probe.poll_grace.total_seconds() + 0.5)
    view = await probe.live_pollers(system.client, target, [canary])
    live, since, notes = view.count, view.since, view.notes
    assert live == 0 and since is not None
    listed = int(notes[-1].split(" poller(s) listed")[0])
    assert listed >= 1 and ", 0 live" in notes[-1], notes  # the server still lists a gone one
    assert datetime.now(UTC) - since >= probe.poll_grace
    await system.start("replica-0")
    await system.client.get_workflow_handle(canary).result()
    view = await probe.live_pollers(system.client, target, [canary])
    assert view.count >= 1 and view.since is None


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
    task = asyncio.create_task(
        env.run(
            probe.await_recovery,
            RecoveryInput(
                context=ctx,
                baseline=baseline,
                recovered_at=now,
                injected_at=now,
            ),
        )
    )
    await eventually(lambda: holds(len(beats) >= 2))
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
    check = await ActivityEnvironment().run(
        probe.await_recovery,
        RecoveryInput(
            context=ctx,
            baseline=baseline,
            recovered_at=now,
            injected_at=now,
        ),
    )
    assert time.monotonic() - began < 5  # gave up at the limit, not at the settle window
    assert not check.recovered and check.time_to_recovery_s is None
    assert check.breach and check.breach.startswith(
        "recovery took longer than 1s (not recovered after 1"
    )
    assert "replica-0 not back after 1" in check.breach and check.never_back == system.names


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

    async def failed() -> bool:  # completed, its result saying FAILED, as ByteBot's would
        result = await system.client.get_workflow_handle(victim).result()
        return bool(result["status"] == "FAILED")

    await eventually(failed)

    async def probed() -> HoldProbe:
        return await ActivityEnvironment().run(
            probe.probe_hold,
            HoldProbeInput(
                context=ctx,
                baseline=baseline,
                injected_at=injected_at,
            ),
        )

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
    own = await clients.get(TemporalTarget(namespace=None))  # null: the worker's own
    assert own is await clients.get(
        TemporalTarget(address=clients.defaults.address, namespace=None)
    )
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
