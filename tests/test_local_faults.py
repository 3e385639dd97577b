"""The local fault backend against the real stand-in: each seed fault happens, then is gone.

Real parts only: a Temporal dev server, a single-node Kafka with one CHAOS listener per replica,
the fault proxy and the stand-in supervisor with three replicas in cgroup v1 (devstack.sut),
stress-ng. Effects are measured from outside (tests/support/measure.py): Kafka round trips and
Temporal RPCs through a replica's proxy routes, a producer's throughput through them, the
supervisor's state.json, and the replica cgroups' CPU and memory use. Requests and waiting for
them to take effect: tests/support/local_requests.py.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.faults.activities import FaultActivities
from activities.faults.backend import FaultRejected, NotYet
from activities.faults.local.backend import LocalBackend
from devstack.sut import LocalSut
from faultproxy import procs
from faultproxy.control import read_status, rules_dir
from models.ledger import ReplicaQuery
from tests.conftest import assert_eventually
from tests.support.local_requests import confirmed, request, stress_pids
from tests.support.local_sut import REPLICAS, backend, others, steady, sut
from tests.support.measure import (
    cgroup_cores,
    cgroup_memory,
    replica,
    round_trips,
)

pytestmark = pytest.mark.timeout(120)
FAST_S, SLOW_S = 0.05, 0.18  # a plain loopback round trip / one with 200 ms added
CPU_RISE = 0.2  # cores; the seed's 80% load gets less when the machine is busy
needs_stress_ng = pytest.mark.skipif(
    shutil.which("stress-ng") is None, reason="run scripts/install-system-packages.sh"
)


# --- pod faults ------------------------------------------------------------------------------


async def test_pod_kill_replaces_the_replica_process_once(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "pod-kill"})
    injection = await backend.inject(req)
    [target] = injection.targets
    old_pid, old_restarts = int(target.uid), target.restarts or 0

    effect = await confirmed(backend, req)  # in effect once killed, before it is back
    assert "last exit 137 Killed" in " ".join(effect.evidence)

    def restarted() -> None:
        assert replica(sut, target.name)["pid"] not in (None, old_pid)

    await assert_eventually(restarted, timeout_s=20)
    now = replica(sut, target.name)
    assert now["restarts"] == old_restarts + 1
    assert now["last_exit_code"] == 137 and now["last_exit_reason"] == "Killed"
    assert effect.in_effect

    again = await backend.inject(req)  # a retried activity adopts; it does not kill again
    assert [t.name for t in again.targets] == [target.name]
    assert replica(sut, target.name)["restarts"] == old_restarts + 1

    recovery = await backend.recover(req)
    assert recovery.recovered and f"{target.name}: back as pid {now['pid']}" in recovery.evidence[0]
    assert (await backend.recover(req)).recovered  # idempotent


async def test_pod_failure_holds_the_replica_down_until_recovered(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "pod-failure"})
    [target] = (await backend.inject(req)).targets
    effect = await confirmed(backend, req)
    assert "down" in effect.evidence[0]
    await asyncio.sleep(1.5)  # the supervisor does not restart a held replica
    assert replica(sut, target.name)["pid"] is None
    assert replica(sut, target.name)["phase"] == "Held"

    recovery = await backend.recover(req)
    assert not (sut.state_dir / "hold" / target.name).exists()
    assert any("back as pid" in e for e in recovery.evidence)
    back = replica(sut, target.name)
    assert back["pid"] is not None and back["pid"] != int(target.uid)


async def test_container_kill_is_a_real_oom_kill(sut: LocalSut, backend: LocalBackend) -> None:
    req = request({"action": "container-kill"})
    [planned] = (await backend.preview(req)).targets  # the same seeded choice as inject's
    old = replica(sut, planned.name)
    assert old["cgroup"]["memory"], "the stand-in must run replicas in a memory cgroup"
    [target] = (await backend.inject(req)).targets
    assert target.name == planned.name

    effect = await confirmed(backend, req)  # in effect once OOM-killed, before it is back
    assert "OOMKilled" in effect.evidence[0]

    def restarted() -> None:
        assert replica(sut, target.name)["pid"] not in (None, int(target.uid))

    await assert_eventually(restarted, timeout_s=20)
    now = replica(sut, target.name)
    assert now["last_exit_code"] == 137 and now["last_exit_reason"] == "OOMKilled"
    assert now["cgroup"]["oom_kills"] > old["cgroup"]["oom_kills"]
    assert (await backend.recover(req)).recovered


# --- stress ----------------------------------------------------------------------------------


@needs_stress_ng
async def test_cpu_stress_loads_the_replica_cgroup_until_recovered(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "cpu-stress"})  # the seed's 80% load, one worker
    [target] = (await backend.preview(req)).targets
    before = await asyncio.to_thread(cgroup_cores, sut, target.name)
    assert before < 0.3

    await backend.inject(req)
    effect = await confirmed(backend, req)
    assert "CPU use" in effect.evidence[0]
    # 0.8 cores on an idle machine; other work on this 2-core machine may take a share.
    assert await asyncio.to_thread(cgroup_cores, sut, target.name) >= before + CPU_RISE

    await backend.recover(req)
    assert not any(procs.group_members(pid) for pid in stress_pids(backend, req))
    assert await asyncio.to_thread(cgroup_cores, sut, target.name) < 0.3


@needs_stress_ng
async def test_memory_stress_fills_the_replica_cgroup_until_recovered(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "memory-stress"})  # the seed's 256MB
    [target] = (await backend.preview(req)).targets
    baseline = cgroup_memory(sut, target.name)

    await backend.inject(req)
    await confirmed(backend, req)
    assert cgroup_memory(sut, target.name) - baseline >= 200 * 2**20

    await backend.recover(req)
    assert not any(procs.group_members(pid) for pid in stress_pids(backend, req))
    assert cgroup_memory(sut, target.name) - baseline < 64 * 2**20


@needs_stress_ng
async def test_combined_stress_loads_cpu_and_memory_together(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "combined-stress"})
    [target] = (await backend.preview(req)).targets
    baseline = cgroup_memory(sut, target.name)
    before = await asyncio.to_thread(cgroup_cores, sut, target.name)

    await backend.inject(req)
    effect = await confirmed(backend, req)
    assert "CPU use" in effect.evidence[0] and "cgroup memory" in effect.evidence[0]
    assert await asyncio.to_thread(cgroup_cores, sut, target.name) >= before + CPU_RISE
    assert cgroup_memory(sut, target.name) - baseline >= 200 * 2**20

    await backend.recover(req)
    assert not any(procs.group_members(pid) for pid in stress_pids(backend, req))
    assert cgroup_memory(sut, target.name) - baseline < 64 * 2**20


# --- bounded faults, selection, the adapter ---------------------------------------------------


@needs_stress_ng
async def test_faults_end_by_their_expiry_without_recovery_and_the_janitor_tidies_up(
    sut: LocalSut, backend: LocalBackend, tmp_path: Path
) -> None:
    delay = request({"action": "network-delay", "peers": ["kafka"]}, seconds=3)
    hold = request({"action": "pod-failure"}, seconds=3)
    stress = request({"action": "cpu-stress"}, seconds=6)  # room to confirm on a busy machine
    [slow] = (await backend.preview(delay)).targets
    [held] = (await backend.preview(hold)).targets
    for req in (delay, hold, stress):
        await backend.inject(req)
        # A network rule is in effect once it met traffic: give it a Kafka round trip.
        await confirmed(
            backend, req, traffic=lambda: asyncio.to_thread(round_trips, sut, slow.name, 1)
        )
    # The chaos worker "dies" here: nobody calls recover. Each fault ends by its own expiry.

    async def all_ended() -> None:
        assert max(await asyncio.to_thread(round_trips, sut, slow.name, 3)) < FAST_S
        assert replica(sut, held.name)["pid"] is not None
        assert not any(procs.group_members(pid) for pid in stress_pids(backend, stress))

    await assert_eventually(all_ended, timeout_s=25)
    status = read_status(sut.control_dir)
    assert status is not None and delay.fault_id in status.expired_rules

    janitor = LocalBackend(backend.env.state_dir, sut.state_dir, sut.control_dir)  # a new worker
    swept = await janitor.sweep()
    assert {delay.fault_id, hold.fault_id, stress.fault_id} <= set(swept)
    assert not list(rules_dir(sut.control_dir).glob("*.json"))
    assert not (sut.state_dir / "hold" / held.name).exists()
    assert await janitor.sweep() == []


async def test_selection_follows_the_mode_and_is_stable_per_fault_id(backend: LocalBackend) -> None:
    def target(**kw: Any) -> dict[str, Any]:
        return {"action": "pod-kill", "target": kw}

    async def picked(fault: dict[str, Any], fault_id: str = "sel") -> list[str]:
        preview = await backend.preview(request(fault, fault_id=fault_id))
        return [t.name for t in preview.targets]

    assert len(await picked(target(mode="all"))) == REPLICAS
    assert len(await picked(target(mode="fixed", value=2))) == 2
    assert len(await picked(target(mode="fixed-percent", value=34))) == 1  # floor(3 * 0.34)
    assert len(await picked(target(mode="random-max-percent", value=100))) <= REPLICAS
    assert await picked(target(mode="one"), "same") == await picked(target(mode="one"), "same")
    spread = {tuple(await picked(target(mode="one"), f"id-{i}")) for i in range(20)}
    assert len(spread) > 1

    other_app = request(target(labels={"app": "something-else"}))
    assert not (await backend.preview(other_app)).accepted
    with pytest.raises(FaultRejected, match="no target matched"):
        await backend.inject(other_app)
    other_ns = request(target(namespace="kube-system"))
    with pytest.raises(FaultRejected, match="not allowed"):
        await backend.inject(other_ns)
    assert backend.ledger.load(other_app.fault_id) is None  # a rejected fault leaves nothing


async def test_read_replicas_lists_every_replica_as_a_pod(
    sut: LocalSut, backend: LocalBackend
) -> None:
    replicas = (await backend.read_replicas(ReplicaQuery.model_validate({"target": {}}))).replicas
    assert [r.name for r in replicas] == [f"replica-{i}" for i in range(REPLICAS)]
    assert all(r.namespace == "bytebot" and r.ready for r in replicas)
    assert [r.uid for r in replicas] == [str(replica(sut, r.name)["pid"]) for r in replicas]


async def test_the_fault_activities_drive_the_local_backend(
    sut: LocalSut, backend: LocalBackend
) -> None:
    acts = FaultActivities(backend)
    env = ActivityEnvironment()
    heartbeats: list[Any] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    req = request({"action": "pod-failure"})
    injection = await env.run(acts.inject_fault, req)

    async def in_effect() -> bool:
        try:
            return (await env.run(acts.confirm_fault, req)).in_effect
        except NotYet as e:  # what the workflow's retry policy polls on
            raise AssertionError(str(e)) from e

    await assert_eventually(in_effect, timeout_s=20)
    recovery = await env.run(acts.recover_fault, req)
    assert recovery.recovered and replica(sut, injection.targets[0].name)["pid"] is not None
    assert heartbeats  # the recovery waited for the replica, heartbeating
