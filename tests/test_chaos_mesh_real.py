"""The Chaos Mesh backend against the REAL Chaos Mesh 2.6.7 controller and admission webhooks.

Real: kube-apiserver, kube-controller-manager (a Deployment replaces a killed pod),
chaos-controller-manager with its webhooks, the backend and its client. Stand-ins, named as
such (tests/support/chaos_mesh_stack.py): chaos-daemon and the chaos DNS server (they record
the controller's gRPC calls and fail on demand) and the kubelet (binds pods, reports them
Ready, restarts a container the daemon was told to kill), because no container runs here.
Conditions, records, finalizers and `AllRecovered` all come from the real controller.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from kubernetes import client

from activities.faults.backend import FaultRejected, NotYet
from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import KubeClient, KubeWebhookRefused
from activities.faults.chaos_mesh.render import PAUSE_ANNOTATION, render_request
from models.faults import PodTarget, SelectMode
from models.ledger import FaultRequest, ReplicaQuery
from tests.conftest import assert_eventually
from tests.support.chaos_mesh import confirm_now, objects, request
from tests.support.chaos_mesh_stack import RealChaosMesh, wait_ready_pods

pytestmark = pytest.mark.timeout(240)


async def _recovered(backend: ChaosMeshBackend, real_kc: KubeClient, req: FaultRequest) -> None:
    # The real controller often recovers and drops its finalizer before the first poll, so
    # `AllRecovered` is seen only sometimes: the object being gone is what recovery proves.
    recovery = await backend.recover(req)
    assert recovery.recovered and f"{req.fault_id} is gone" in recovery.evidence
    assert await objects(real_kc, req.fault.target.namespace) == []


def _pods(real_admin: client.ApiClient, ns: str) -> dict[str, dict[str, Any]]:
    import json

    listed: Any = client.CoreV1Api(real_admin).list_namespaced_pod(ns, _preload_content=False)
    return {p["metadata"]["name"]: p for p in json.loads(listed.data)["items"]}


async def test_pod_kill_is_confirmed_by_real_records_and_the_deployment_replaces_the_pod(
    real_backend: ChaosMeshBackend, real_kc: KubeClient, real_admin: client.ApiClient, real_ns: str
) -> None:
    req = request(real_ns, {"action": "pod-kill", "duration": "30s"})
    before = {
        p.uid
        for p in (await real_backend.read_replicas(ReplicaQuery(target=req.fault.target))).replicas
    }
    await real_backend.inject(req)
    confirmed = await assert_eventually(lambda: confirm_now(real_backend, req), timeout_s=30)
    # AllInjected, or (a kill is one shot) its records all injected by the time we look.
    assert any("AllInjected" in e or "injected, then" in e for e in confirmed.evidence)
    assert any(": Injected (injected 1x" in e for e in confirmed.evidence), confirmed.evidence
    assert any("was killed" in e for e in confirmed.evidence), confirmed.evidence
    # kube-controller-manager's replicaset controller made a new pod; the kubelet stand-in ran it.
    pods = wait_ready_pods(real_admin, real_ns, 3)
    after = {p["metadata"]["uid"] for p in pods}
    assert len(before - after) == 1 and len(after) == 3
    await _recovered(real_backend, real_kc, req)


async def test_container_kill_goes_through_chaos_daemon_and_the_container_restarts(
    real_backend: ChaosMeshBackend,
    chaos_mesh: RealChaosMesh,
    real_kc: KubeClient,
    real_admin: client.ApiClient,
    real_ns: str,
) -> None:
    ids = {
        s["containerID"].split("//")[1]
        for p in _pods(real_admin, real_ns).values()
        for s in p["status"]["containerStatuses"]
        if s["name"] == "worker"
    }
    req = request(real_ns, {"action": "container-kill", "duration": "30s"})
    await real_backend.inject(req)
    effect = await assert_eventually(lambda: confirm_now(real_backend, req), timeout_s=30)
    assert any("worker restarted (0 -> 1 restarts)" in e for e in effect.evidence), effect.evidence
    killed = [
        c.request["container_id"].split("//")[-1]
        for c in chaos_mesh.daemon.daemon.calls_of("ContainerKill")
    ]
    assert set(killed) & ids, (killed, ids)  # the stand-in daemon got the real container id
    await _recovered(real_backend, real_kc, req)


async def test_stress_network_and_dns_faults_reach_the_daemon_and_are_undone_on_recovery(
    real_backend: ChaosMeshBackend, chaos_mesh: RealChaosMesh, real_kc: KubeClient, real_ns: str
) -> None:
    daemon, dns = chaos_mesh.daemon.daemon, chaos_mesh.daemon.dns
    cancels = len(daemon.calls_of("CancelStressors"))
    stress = request(real_ns, {"action": "cpu-stress", "duration": "30s"})
    await real_backend.inject(stress)
    await assert_eventually(lambda: confirm_now(real_backend, stress), timeout_s=30)
    assert daemon.calls_of("ExecStressors")[-1].request["cpuStressors"]
    await _recovered(real_backend, real_kc, stress)
    assert len(daemon.calls_of("CancelStressors")) > cancels  # the stressor was stopped

    tcs = len(daemon.calls_of("SetTcs"))
    delay = request(real_ns, {"action": "network-delay", "duration": "30s"}, step=1)
    await real_backend.inject(delay)
    await assert_eventually(lambda: confirm_now(real_backend, delay), timeout_s=30)
    # AllInjected comes when the PodNetworkChaos is written; its own controller calls the daemon.
    await assert_eventually(
        lambda: any("netem" in str(c.request) for c in daemon.calls_of("SetTcs")[tcs:]),
        timeout_s=30,
    )
    await _recovered(real_backend, real_kc, delay)
    await assert_eventually(  # the tc rules were emptied
        lambda: "netem" not in str(daemon.calls_of("SetTcs")[-1].request), timeout_s=30
    )

    dns_error = request(
        real_ns, {"action": "dns-error", "duration": "30s", "patterns": ["temporal*"]}, step=2
    )
    await real_backend.inject(dns_error)
    await assert_eventually(lambda: confirm_now(real_backend, dns_error), timeout_s=30)
    assert dns.calls_of("SetDNSChaos")[-1].request["patterns"] == ["temporal*"]
    await _recovered(real_backend, real_kc, dns_error)
    assert dns.calls_of("CancelDNSChaos")


async def test_pod_failure_swaps_the_image_and_recovery_restores_it(
    real_backend: ChaosMeshBackend, real_kc: KubeClient, real_admin: client.ApiClient, real_ns: str
) -> None:
    req = request(real_ns, {"action": "pod-failure", "duration": "30s"})
    await real_backend.inject(req)
    effect = await assert_eventually(lambda: confirm_now(real_backend, req), timeout_s=30)
    (target,) = [t.name for t in effect.targets]
    images = [c["image"] for c in _pods(real_admin, real_ns)[target]["spec"]["containers"]]
    assert all("pause" in i for i in images), images
    await _recovered(real_backend, real_kc, req)
    images = [c["image"] for c in _pods(real_admin, real_ns)[target]["spec"]["containers"]]
    assert images == ["bytebot/worker:1", "bytebot/sidecar:1"]


async def test_a_container_that_does_not_exist_is_never_confirmed_and_says_why(
    real_backend: ChaosMeshBackend, real_kc: KubeClient, real_ns: str
) -> None:
    req = request(
        real_ns, {"action": "container-kill", "duration": "30s", "container_names": ["nosuch"]}
    )
    await real_backend.inject(req)  # the webhook cannot know the pods' containers

    async def failed_for_a_reason() -> None:
        with pytest.raises(NotYet) as err:
            await real_backend.confirm(req)
        assert "selected no target: no container ['nosuch']" in err.value.message

    await assert_eventually(failed_for_a_reason, timeout_s=30)
    await _recovered(real_backend, real_kc, req)


async def test_an_unreachable_or_failing_daemon_is_named_and_the_fault_still_recovers(
    real_backend: ChaosMeshBackend, chaos_mesh: RealChaosMesh, real_kc: KubeClient, real_ns: str
) -> None:
    daemon = chaos_mesh.daemon.daemon
    daemon.fail("ExecStressors", grpc.StatusCode.INTERNAL, "stress-ng: cannot start")
    try:
        req = request(real_ns, {"action": "memory-stress", "duration": "30s"})
        await real_backend.inject(req)

        async def failed() -> None:
            with pytest.raises(NotYet, match="stress-ng: cannot start"):
                await real_backend.confirm(req)

        await assert_eventually(failed, timeout_s=30)
    finally:
        daemon.heal()
    await _recovered(real_backend, real_kc, req)

    daemon.stop()  # the daemon is gone: the controller cannot connect
    try:
        kill = request(real_ns, {"action": "container-kill", "duration": "30s"}, step=1)
        await real_backend.inject(kill)

        async def unreachable() -> None:
            with pytest.raises(NotYet, match="Apply failed") as err:
                await real_backend.confirm(kill)
            assert "connect" in err.value.message or "Unavailable" in err.value.message

        await assert_eventually(unreachable, timeout_s=60)
    finally:
        daemon.start()
    await _recovered(real_backend, real_kc, kill)


async def test_the_real_webhook_refuses_a_spec_on_create_and_in_the_dry_run(
    real_backend: ChaosMeshBackend, real_kc: KubeClient, real_ns: str
) -> None:
    obj = render_request(request(real_ns, {"action": "network-delay", "duration": "30s"}))
    obj["spec"]["delay"]["jitter"] = "soon"  # the CRD's schema takes any string; Chaos Mesh not
    with pytest.raises(KubeWebhookRefused, match=r"refused by Chaos Mesh.*Jitter") as refused:
        await real_kc.create(obj)
    assert refused.value.non_retryable and "rbac" not in refused.value.message.lower()
    # A target the models would refuse (fixed, 0 pods), built past them as a stale client might:
    # the preview's server-side dry run goes through the real webhook and refuses it too.
    good = request(real_ns, {"action": "pod-kill", "duration": "30s"})
    target = PodTarget.model_construct(
        namespace=real_ns, labels=dict(good.fault.target.labels), mode=SelectMode.FIXED, value=0
    )
    bad = good.model_copy(update={"fault": good.fault.model_copy(update={"target": target})})
    preview = await real_backend.preview(bad)
    assert not preview.accepted
    assert any("refused by Chaos Mesh" in p and "greater than 0" in p for p in preview.problems)
    with pytest.raises(FaultRejected, match="blast radius"):
        await real_backend.inject(bad)
    assert await objects(real_kc, real_ns) == []


async def test_pause_makes_the_real_controller_recover_the_targets_and_resume_reinjects(
    real_backend: ChaosMeshBackend, chaos_mesh: RealChaosMesh, real_kc: KubeClient, real_ns: str
) -> None:
    req = request(real_ns, {"action": "network-partition", "duration": "60s"})
    await real_backend.inject(req)
    await assert_eventually(lambda: confirm_now(real_backend, req), timeout_s=30)
    paused = await real_backend.set_paused(req, True)
    assert paused.in_effect is False and "paused" in paused.evidence[0]

    async def recovered_while_paused() -> None:
        obj = await real_kc.get("networkchaos", real_ns, req.fault_id)
        assert obj and obj["metadata"]["annotations"][PAUSE_ANNOTATION] == "true"
        conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
        assert conditions["Paused"] == "True" and conditions["AllRecovered"] == "True"

    await assert_eventually(recovered_while_paused, timeout_s=30)
    with pytest.raises(NotYet):
        await real_backend.confirm(req)
    await real_backend.set_paused(req, False)
    await assert_eventually(lambda: confirm_now(real_backend, req), timeout_s=30)
    stored = await real_kc.get("networkchaos", real_ns, req.fault_id)
    assert stored and PAUSE_ANNOTATION not in stored["metadata"]["annotations"]
    await _recovered(real_backend, real_kc, req)
    assert "not there" in (await real_backend.set_paused(req, True)).evidence[0]
