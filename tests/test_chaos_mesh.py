"""The Chaos Mesh backend against a real kube-apiserver with the Chaos Mesh v2.6.7 CRDs.

Real parts: kube-apiserver + etcd (devstack.kube, the suite's `kube` fixture), the Temporal dev
server, the real workflows and the real backend, kube client, sweeper and `resolve_scenario`.
Stand-ins, named as such: `FakeChaosController` (tests/support/fake_chaos_controller.py) plays
the Chaos Mesh controller, plain Pod objects with a patched Ready status play the worker pods,
and `HealthyProbes` (tests/support/standins.py) plays the verification activities (the real
probes are tested against real goal runs elsewhere). Requests, scenarios and the `Runs` worker
come from tests/support/chaos_mesh.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, utils
from pydantic import ValidationError

from activities.faults.backend import FaultRejected, NotYet
from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import (
    KubeAlreadyExists,
    KubeClient,
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeTemporary,
    KubeThrottled,
    classify,
)
from activities.faults.chaos_mesh.render import render_request
from activities.scenario_files import builtin_names, load_builtin
from devstack.kube import KubeApiServer
from models.ledger import FaultRequest, ReplicaQuery
from tests.conftest import assert_eventually
from tests.support.chaos_mesh import (
    confirm_now,
    names_are,
    objects,
    request,
)
from tests.support.fake_chaos_controller import FakeChaosController, worker_pods

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parent.parent


# -- the rendered objects are valid Chaos Mesh objects ------------------------------------


@pytest.mark.parametrize("name", builtin_names())
async def test_every_fault_of_every_builtin_scenario_is_created_under_strict_validation(
    name: str, kc: KubeClient, ns: str
) -> None:
    scenario = load_builtin(name)
    for index, step in enumerate(scenario.steps):
        for fault in step.faults:
            moved = fault.model_copy(
                update={"target": fault.target.model_copy(update={"namespace": ns})}
            )
            obj = render_request(
                FaultRequest(
                    fault_id=f"{name}-{index:02d}-{fault.label}",
                    run_id="strict",
                    step=index,
                    fault=moved,
                    expires_at=datetime.now(UTC),
                )
            )
            stored = await kc.create(obj)  # field_validation=Strict: an unknown field fails
            assert stored["spec"] == obj["spec"]
    assert len(await objects(kc, ns)) == scenario.fault_count


async def test_a_wrong_field_or_value_is_refused_naming_it(kc: KubeClient, ns: str) -> None:
    obj = render_request(request(ns, {"action": "pod-kill", "duration": "30s"}))
    obj["spec"]["gracePeriodSecs"] = 5
    with pytest.raises(KubeInvalid, match="gracePeriodSecs") as unknown:
        await kc.create(obj)
    assert unknown.value.non_retryable
    del obj["spec"]["gracePeriodSecs"]
    obj["spec"]["mode"] = "sometimes"
    with pytest.raises(KubeInvalid, match=r"spec\.mode") as invalid:
        await kc.create(obj)
    assert invalid.value.non_retryable and invalid.value.status == 422
    assert await objects(kc, ns) == []


# -- the backend ----------------------------------------------------------------------------


async def test_pod_kill_replaces_one_pod_is_confirmed_by_uids_and_recovers_to_nothing(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    req = request(ns, {"action": "pod-kill", "duration": "30s"})
    before = {
        p.uid for p in (await backend.read_replicas(ReplicaQuery(target=req.fault.target))).replicas
    }
    injection = await backend.inject(req)
    assert len(injection.targets) == 3 and "created PodChaos" in injection.evidence[0]
    stored = await kc.get("podchaos", ns, req.fault_id)
    assert stored is not None
    assert stored["spec"]["duration"] == "30s"
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "bytebot-chaos"
    confirmed = await assert_eventually(lambda: confirm_now(backend, req), timeout_s=10)
    killed = controller.killed[0]
    assert any(f"pod {killed}" in e and "was killed" in e for e in confirmed.evidence)
    after = {
        p.uid for p in (await backend.read_replicas(ReplicaQuery(target=req.fault.target))).replicas
    }
    assert len(after) == 3 and len(before - after) == 1  # one pod replaced, with a new uid

    recovery = await backend.recover(req)
    assert recovery.recovered and f"{req.fault_id} is gone" in recovery.evidence
    assert await objects(kc, ns) == []
    assert (await backend.recover(req)).evidence == [f"{req.fault_id}: nothing to delete"]


async def test_container_kill_and_network_faults_are_confirmed_by_their_evidence(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    kill = request(ns, {"action": "container-kill", "duration": "30s"})
    await backend.inject(kill)
    effect = await assert_eventually(lambda: confirm_now(backend, kill), timeout_s=10)
    assert any("restarted (0 -> 1 restarts)" in e for e in effect.evidence), effect.evidence
    replicas = await backend.read_replicas(ReplicaQuery(target=kill.fault.target))
    assert sorted(r.restarts or 0 for r in replicas.replicas) == [0, 0, 1]

    delay = request(ns, {"action": "network-delay", "duration": "30s"}, step=1)
    await backend.inject(delay)
    effect = await assert_eventually(lambda: confirm_now(backend, delay), timeout_s=10)
    assert effect.in_effect and len(effect.targets) == 1
    assert any(": Injected (injected 1x" in e for e in effect.evidence), effect.evidence
    for req in (kill, delay):
        assert (await backend.recover(req)).recovered
    assert await objects(kc, ns) == []


async def test_a_retried_inject_adopts_its_object_and_never_takes_another_runs(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    req = request(ns, {"action": "cpu-stress", "duration": "30s"})
    first = await backend.inject(req)
    again = await backend.inject(req)
    assert again.evidence[0].startswith("adopted StressChaos")
    assert first.evidence[0].split("(uid ")[1] == again.evidence[0].split("(uid ")[1]
    assert await objects(kc, ns) == [req.fault_id]
    other_run = req.model_copy(update={"scenario_id": "someone-else"})
    with pytest.raises(FaultRejected, match="belongs to run 'run-1'"):
        await backend.inject(other_run)
    await backend.recover(req)


async def test_unsafe_faults_are_refused_before_anything_is_created(
    backend: ChaosMeshBackend, kc: KubeClient, ns: str
) -> None:
    everything = request(
        ns, {"action": "pod-kill", "duration": "30s", "target": {"namespace": ns, "mode": "all"}}
    )
    with pytest.raises(FaultRejected, match=r"3 of 3 matching pods \(100%\), more than the cap"):
        await backend.inject(everything)
    nobody = request(
        ns,
        {
            "action": "pod-kill",
            "duration": "30s",
            "target": {"namespace": ns, "labels": {"app": "nobody"}},
        },
    )
    with pytest.raises(FaultRejected, match="no pod matches"):
        await backend.inject(nobody)
    elsewhere = request("kube-system", {"action": "pod-kill", "duration": "30s"})
    with pytest.raises(FaultRejected, match="namespace 'kube-system' is not allowed"):
        await backend.inject(elsewhere)
    assert await objects(kc, ns) == [] and await objects(kc, "kube-system") == []


async def test_the_dry_run_previews_targets_and_validates_server_side_creating_nothing(
    backend: ChaosMeshBackend, kc: KubeClient, ns: str
) -> None:
    ok = await backend.preview(request(ns, {"action": "network-loss", "duration": "30s"}))
    assert ok.accepted and len(ok.targets) == 3 and all(t.ready for t in ok.targets)
    everything = {
        "action": "dns-error",
        "duration": "30s",
        "target": {"namespace": ns, "mode": "all"},
    }
    bad = await backend.preview(request(ns, everything))
    assert not bad.accepted
    assert any("more than the cap" in p for p in bad.problems)
    # A pattern Chaos Mesh would accept and then never match is refused by the model itself.
    with pytest.raises(ValidationError, match="may only end a pattern"):
        request(ns, {"action": "dns-error", "duration": "30s", "patterns": ["*kafka*"]})
    outside = await backend.preview(
        request("kube-system", {"action": "pod-kill", "duration": "9s"})
    )
    assert not outside.accepted and outside.targets == []
    assert outside.problems == [f"namespace 'kube-system' is not allowed for chaos (allowed: {ns})"]
    assert await objects(kc, ns) == []


async def test_recover_waits_for_the_finalizer_and_says_what_holds_it(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    req = request(ns, {"action": "memory-stress", "duration": "30s"})
    await backend.inject(req)
    await assert_eventually(lambda: confirm_now(backend, req), timeout_s=10)
    controller.hold_finalizers = True
    backend.recover_wait_s = 1
    with pytest.raises(NotYet, match=r"still being deleted: finalizers \['chaos-mesh/records'\]"):
        await backend.recover(req)
    controller.hold_finalizers = False
    recovery = await backend.recover(req)  # what the activity's retry does
    assert recovery.recovered
    assert await objects(kc, ns) == []


async def test_read_replicas_reports_readiness_restarts_and_an_oom_kill(
    backend: ChaosMeshBackend, admin: client.ApiClient, ns: str
) -> None:
    pod: Any = client.CoreV1Api(admin).list_namespaced_pod(ns).items[0]
    client.CoreV1Api(admin).patch_namespaced_pod_status(
        pod.metadata.name,
        ns,
        {
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {
                        "name": "worker",
                        "ready": False,
                        "restartCount": 2,
                        "image": "w",
                        "imageID": "",
                        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                    }
                ],
            }
        },
    )
    replicas = await backend.read_replicas(
        ReplicaQuery(target=request(ns, {"action": "pod-kill", "duration": "1s"}).fault.target)
    )
    by_name = {r.name: r for r in replicas.replicas}
    oom = by_name[pod.metadata.name]
    assert (oom.ready, oom.restarts, oom.last_exit_reason) == (False, 2, "OOMKilled")
    assert oom.uid == pod.metadata.uid and replicas.ready == 2


async def test_the_janitor_sweep_deletes_only_expired_objects(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    old = request(ns, {"action": "pod-failure", "duration": "30s"}, expires_in=timedelta(0))
    fresh = request(ns, {"action": "pod-failure", "duration": "30s"}, step=1)
    await backend.inject(old)
    await backend.inject(fresh)
    assert await backend.sweep() == [old.fault_id]
    await assert_eventually(lambda: names_are(kc, ns, [fresh.fault_id]), timeout_s=10)
    await backend.recover(fresh)


# -- the client -----------------------------------------------------------------------------


async def test_the_client_honours_its_qps_limit(kube: KubeApiServer, ns: str) -> None:
    limited = KubeClient(kube.api_client(), qps=10, burst=2)
    started = time.monotonic()
    await asyncio.gather(*(limited.list_pods(ns, {}) for _ in range(12)))
    elapsed = time.monotonic() - started
    limited.close()
    assert elapsed >= 0.9, f"12 calls at 10 qps (burst 2) took only {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("status", "reason", "kind", "retryable"),
    [
        (429, "TooManyRequests", KubeThrottled, True),
        (409, "Conflict", KubeConflict, True),
        (409, "AlreadyExists", KubeAlreadyExists, True),
        (503, "ServiceUnavailable", KubeTemporary, True),
        (504, "Timeout", KubeTemporary, True),
        (422, "Invalid", KubeInvalid, False),
        (403, "Forbidden", KubeForbidden, False),
    ],
)
def test_api_errors_become_our_errors_that_say_whether_a_retry_helps(
    status: int, reason: str, kind: type[KubeError], retryable: bool
) -> None:
    # Plain data: the server above answers 403/400/422 for real; throttling and 5xx it won't.
    body = {
        "kind": "Status",
        "reason": reason,
        "message": "m",
        "code": status,
        "details": {"causes": [{"field": "spec.mode", "message": "Unsupported value"}]},
    }
    err = client.ApiException(status=status, reason=reason, body=json.dumps(body))
    err.headers = {"Retry-After": "3"}
    ours = classify(err, "create PodChaos ns/x")
    assert type(ours) is kind and ours.non_retryable is not retryable
    assert ours.message.startswith("create PodChaos ns/x")
    if kind is KubeThrottled:
        assert ours.next_retry_delay == timedelta(seconds=3)
    if kind is KubeInvalid:
        assert "spec.mode: Unsupported value" in ours.message


async def test_an_unreachable_api_server_is_a_retryable_failure(kube: KubeApiServer) -> None:
    from devstack.ports import free_port

    config = client.Configuration(host=f"https://127.0.0.1:{free_port()}")
    config.ssl_ca_cert = str(kube.ca_path)
    dead = KubeClient(client.ApiClient(config), timeout_s=2)
    with pytest.raises(KubeTemporary, match="unreachable or slow") as err:
        await dead.list_pods("bytebot", {})
    assert not err.value.non_retryable


# -- the worker's identity from k8s/ --------------------------------------------------------


async def test_the_worker_service_account_can_do_its_job_in_the_allowed_namespaces_only(
    kube: KubeApiServer, admin: client.ApiClient
) -> None:
    for namespace in ("bytebot", "temporal", "kafka"):  # they exist in ByteBot's cluster
        kube.ensure_namespace(namespace)
    kustomization = yaml.safe_load((REPO / "k8s" / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(
        p.name for p in (REPO / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    for name in listed:  # in kustomization order; strict: a wrong field fails
        for doc in yaml.safe_load_all((REPO / "k8s" / name).read_text()):
            utils.create_from_dict(admin, doc, field_validation="Strict")  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(admin)
    issued: Any = core.create_namespaced_service_account_token(
        "bytebot-chaos-worker",
        "bytebot-chaos",
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    token: str = issued.status.token
    labels = {"app": "sa-test"}
    worker_pods(admin, "bytebot", 2, labels)
    kube.ensure_namespace("other")
    worker = KubeClient(kube.token_client(token))
    backend = ChaosMeshBackend(worker, allowed_namespaces=["bytebot", "other"], poll_s=0.1)
    req = request(
        "bytebot",
        {
            "action": "pod-kill",
            "duration": "30s",
            "target": {"namespace": "bytebot", "labels": labels},
        },
    )
    with kube.api_client() as api, FakeChaosController(api, ["bytebot"]):

        async def granted() -> None:  # RBAC reads roles from an informer: allow it a moment
            try:
                await backend.inject(req)
            except FaultRejected as err:
                raise AssertionError(str(err)) from err

        await assert_eventually(granted, timeout_s=10)
        await assert_eventually(lambda: confirm_now(backend, req), timeout_s=10)
        assert (await backend.recover(req)).recovered
    for namespace in ("temporal", "kafka"):  # ByteBot's suite kills the frontend and a broker
        there = render_request(request(namespace, {"action": "pod-kill", "duration": "30s"}))
        assert (await worker.create(there))["metadata"]["namespace"] == namespace
        assert await worker.list_pods(namespace, {}) == []
        assert await worker.delete("podchaos", namespace, there["metadata"]["name"])
    elsewhere = render_request(request("other", {"action": "pod-kill", "duration": "30s"}))
    with pytest.raises(KubeForbidden, match=r'cannot create resource "podchaos".*"other"') as no:
        await worker.create(elsewhere)
    assert no.value.non_retryable and "k8s/rbac.yaml" in no.value.message
    with pytest.raises(KubeForbidden, match='list resource "pods"'):
        await worker.list_pods("other", {})
    with pytest.raises(client.ApiException) as delete_pod:  # least privilege: no pod writes
        client.CoreV1Api(worker.api).delete_collection_namespaced_pod("bytebot")
    assert delete_pod.value.status == 403
    worker.close()


def test_the_configmap_holds_settings_the_worker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import Settings

    data = yaml.safe_load((REPO / "k8s" / "configmap.yaml").read_text())["data"]
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.backend == "chaos-mesh"
    assert settings.allowed_namespaces == ["bytebot", "temporal", "kafka"]
    assert settings.task_queue == "bytebot-chaos"
    assert settings.temporal_address == "temporal-frontend.temporal.svc.cluster.local:7233"


# -- scenarios through the backend, on the Temporal dev server -------------------------------
