"""The local kube-apiserver behaves like a cluster's for what the orchestrator relies on.

Real server (embedded etcd + kube-apiserver, Chaos Mesh v2.6.7 CRDs); no controllers run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from kubernetes import client

from devstack.kube import NAMESPACE, KubeApiServer

# The first test's setup may include a cold build of kube-apiserver (minutes on 2 cores).
pytestmark = pytest.mark.timeout(900)

GROUP, VERSION, PLURAL = "chaos-mesh.org", "v1alpha1", "podchaos"


@pytest.fixture
def admin(kube: KubeApiServer) -> Iterator[client.ApiClient]:
    with kube.api_client() as api:
        yield api


def pod_chaos(name: str, **spec_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PodChaos",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "action": "pod-kill",
            "mode": "one",
            "selector": {"labelSelectors": {"app": "bytebot-temporal-worker"}},
            "duration": "30s",
            **spec_extra,
        },
    }


def eventually(check: Callable[[], None], timeout_s: float = 10.0) -> None:
    """Run `check` until it stops raising AssertionError, or re-raise after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_pod_chaos_is_stored_under_strict_validation_and_unknown_fields_are_rejected(
    admin: client.ApiClient,
) -> None:
    custom = client.CustomObjectsApi(admin)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, pod_chaos("kill-one"), field_validation="Strict"
    )
    stored = cast(
        dict[str, Any],
        custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "kill-one"),
    )
    assert stored["spec"]["action"] == "pod-kill"
    assert stored["spec"]["mode"] == "one"
    assert stored["spec"]["duration"] == "30s"
    assert stored["spec"]["selector"]["labelSelectors"] == {"app": "bytebot-temporal-worker"}

    with pytest.raises(client.ApiException) as rejected:
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            pod_chaos("typo", gracePeriodSecs=5),
            field_validation="Strict",
        )
    assert rejected.value.status == 400
    assert "gracePeriodSecs" in str(rejected.value.body)
    listed = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
    )
    names = [item["metadata"]["name"] for item in listed["items"]]
    assert "typo" not in names


def test_a_pod_can_be_created_and_its_status_faked_to_running_and_ready(
    admin: client.ApiClient,
) -> None:
    core = client.CoreV1Api(admin)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="worker-0", labels={"app": "bytebot-temporal-worker"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="worker", image="worker")]),
    )
    created = core.create_namespaced_pod(NAMESPACE, pod)
    assert created.status is not None
    assert created.status.phase == "Pending"  # no scheduler or kubelet will ever move it

    core.patch_namespaced_pod_status(
        "worker-0",
        NAMESPACE,
        {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
    )
    status = core.read_namespaced_pod("worker-0", NAMESPACE).status
    assert status is not None
    assert status.phase == "Running"
    assert [(c.type, c.status) for c in status.conditions or []] == [("Ready", "True")]


def test_a_service_account_token_is_forbidden_podchaos_until_a_role_grants_it(
    kube: KubeApiServer, admin: client.ApiClient
) -> None:
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(
        NAMESPACE, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="chaos-worker"))
    )
    issued = core.create_namespaced_service_account_token(
        "chaos-worker",
        NAMESPACE,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    token = issued.status.token if issued.status else None
    assert token

    with kube.token_client(token) as worker_api:
        worker = client.CustomObjectsApi(worker_api)
        with pytest.raises(client.ApiException) as forbidden:
            worker.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
        assert forbidden.value.status == 403  # authenticated (not 401), but not allowed
        assert "system:serviceaccount:bytebot:chaos-worker" in str(forbidden.value.body)

        rbac.create_namespaced_role(
            NAMESPACE,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="chaos-worker"),
                rules=[
                    client.V1PolicyRule(
                        api_groups=[GROUP], resources=[PLURAL], verbs=["get", "list", "create"]
                    )
                ],
            ),
        )
        rbac.create_namespaced_role_binding(
            NAMESPACE,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="chaos-worker"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="chaos-worker"
                ),
                subjects=[
                    client.RbacV1Subject(
                        kind="ServiceAccount", name="chaos-worker", namespace=NAMESPACE
                    )
                ],
            ),
        )

        def can_list() -> None:
            try:
                worker.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
            except client.ApiException as e:
                raise AssertionError(f"still refused: {e.status}") from e

        eventually(can_list)  # the RBAC authorizer reads roles from an informer
