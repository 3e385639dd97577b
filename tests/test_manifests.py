"""Rendering faults into Chaos Mesh objects, and the generated manifests staying in sync.

Pure tests: no server. That the rendered objects are valid Chaos Mesh 2.6 objects is proved
against the real kube-apiserver with strict field validation in tests/test_chaos_mesh.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from activities.faults.chaos_mesh.documents import form_of, render_scenario
from activities.faults.chaos_mesh.render import (
    ANNOTATION_EXPIRES_AT,
    ANNOTATION_RUN_ID,
    LABEL_MANAGED_BY,
    LABEL_RUN,
    LABEL_STEP,
    PeerMap,
    PeerTarget,
    RenderError,
    render_fault,
    render_request,
    run_label,
)
from activities.scenario_files import builtin_names, load_builtin
from control.manifests import SEED_MANIFESTS, expected_manifests, main
from models.faults import FaultSpec
from models.ledger import FaultRequest

REPO = Path(__file__).resolve().parent.parent
FAULT = TypeAdapter(FaultSpec)
KAFKA_HOST = "core-cluster-kafka-bootstrap.kafka.svc.cluster.local"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def spec_of(fault: dict[str, Any], peers: PeerMap | None = None) -> dict[str, Any]:
    obj = render_fault(
        FAULT.validate_python(fault), name="n", scenario_id="r", step=0, peers=peers or PeerMap()
    )
    spec: dict[str, Any] = obj["spec"]
    return spec


@pytest.mark.parametrize(
    ("fault", "kind", "expected"),
    [
        (
            {"action": "pod-kill", "duration": "30s"},
            "PodChaos",
            {"action": "pod-kill", "mode": "one", "duration": "30s"},
        ),
        (
            {"action": "pod-kill", "duration": "1m30s", "grace_period_s": 5},
            "PodChaos",
            {"action": "pod-kill", "gracePeriod": 5, "duration": "1m30s"},
        ),
        (
            {
                "action": "pod-failure",
                "duration": "30s",
                "target": {"mode": "fixed-percent", "value": 50},
            },
            "PodChaos",
            {"action": "pod-failure", "mode": "fixed-percent", "value": "50"},
        ),
        (
            {"action": "container-kill", "duration": "30s", "container_names": ["worker"]},
            "PodChaos",
            {"action": "container-kill", "containerNames": ["worker"]},
        ),
        (
            {
                "action": "network-delay",
                "duration": "30s",
                "latency": "200ms",
                "jitter": "10ms",
                "correlation_pct": 25,
            },
            "NetworkChaos",
            {
                "action": "delay",
                "direction": "to",
                "delay": {"latency": "200ms", "jitter": "10ms", "correlation": "25"},
            },
        ),
        (
            {"action": "network-loss", "duration": "30s", "loss_pct": 25},
            "NetworkChaos",
            {"action": "loss", "loss": {"loss": "25"}},
        ),
        (
            {"action": "network-partition", "duration": "30s", "peers": ["kafka"]},
            "NetworkChaos",
            {"action": "partition", "direction": "to", "externalTargets": [KAFKA_HOST]},
        ),
        (
            {"action": "network-bandwidth", "duration": "30s", "rate_kbps": 1000},
            "NetworkChaos",
            {
                "action": "bandwidth",
                "bandwidth": {"rate": "1mbps", "limit": 20971520, "buffer": 10000},
            },
        ),
        (
            {"action": "network-bandwidth", "duration": "30s", "rate_kbps": 1500},
            "NetworkChaos",
            {"bandwidth": {"rate": "1500kbps", "limit": 20971520, "buffer": 10000}},
        ),
        (
            {"action": "dns-error", "duration": "30s", "patterns": ["temporal*", "kafka.?om"]},
            "DNSChaos",
            {"action": "error", "patterns": ["temporal*", "kafka.?om"]},
        ),
        (
            {"action": "cpu-stress", "duration": "30s", "cpu": {"workers": 2, "load_pct": 80}},
            "StressChaos",
            {"stressors": {"cpu": {"workers": 2, "load": 80}}},
        ),
        (
            {"action": "memory-stress", "duration": "30s", "memory": {"size_mb": 256}},
            "StressChaos",
            {"stressors": {"memory": {"workers": 1, "size": "256MB", "oomScoreAdj": 0}}},
        ),
        (
            {"action": "combined-stress", "duration": "30s"},
            "StressChaos",
            {
                "stressors": {
                    "cpu": {"workers": 1, "load": 80},
                    "memory": {"workers": 1, "size": "256MB", "oomScoreAdj": 0},
                }
            },
        ),
    ],
)
def test_each_fault_renders_its_chaos_mesh_fields(
    fault: dict[str, Any], kind: str, expected: dict[str, Any]
) -> None:
    obj = render_fault(FAULT.validate_python(fault), name="n", scenario_id="r", step=0)
    assert obj["apiVersion"] == "chaos-mesh.org/v1alpha1"
    assert obj["kind"] == kind
    spec = obj["spec"]
    assert {k: spec.get(k) for k in expected} == expected
    assert spec["selector"] == {
        "namespaces": ["bytebot"],
        "labelSelectors": {"app": "bytebot-temporal-worker"},
    }
    assert spec["duration"] == fault["duration"]


def test_a_request_is_named_by_its_fault_id_and_labelled_for_the_sweeper() -> None:
    request = FaultRequest(
        fault_id="chaos-1a2b3c4d-02-pod-kill",
        run_id="weekly-2030-01-02T03:00:00Z",
        step=2,
        fault=FAULT.validate_python({"action": "pod-kill", "duration": "30s"}),
        expires_at=EXPIRES,
    )
    obj = render_request(request)
    meta = obj["metadata"]
    assert meta["name"] == "chaos-1a2b3c4d-02-pod-kill"
    assert meta["namespace"] == "bytebot"
    assert meta["labels"][LABEL_MANAGED_BY] == "bytebot-chaos"
    assert meta["labels"][LABEL_STEP] == "2"
    assert meta["annotations"][ANNOTATION_RUN_ID] == "weekly-2030-01-02T03:00:00Z"
    assert meta["annotations"][ANNOTATION_EXPIRES_AT] == "2030-01-02T03:04:05+00:00"
    # The workflow id has ':' (not allowed in a label value): the label is a stable digest form.
    assert meta["labels"][LABEL_RUN] == run_label("weekly-2030-01-02T03:00:00Z")
    assert ":" not in meta["labels"][LABEL_RUN] and len(meta["labels"][LABEL_RUN]) <= 63
    assert render_request(request) == obj  # deterministic: a retry finds the same object


@pytest.mark.parametrize("run_id", ["t-1", "x" * 80, "a:b/c", "::", "weekly run 1"])
def test_run_labels_are_valid_label_values_and_stable(run_id: str) -> None:
    label = run_label(run_id)
    assert 0 < len(label) <= 63
    assert label[0].isalnum() and label[-1].isalnum()
    assert all(c.isalnum() or c in "-_." for c in label)
    assert run_label(run_id) == label
    assert run_label(run_id + "2") != label


def test_a_peer_mapped_to_pods_becomes_the_target_selector() -> None:
    peers = PeerMap(kafka=PeerTarget(namespace="kafka", labels={"strimzi.io/cluster": "core"}))
    spec = spec_of(
        {"action": "network-partition", "duration": "30s", "direction": "both", "peers": ["kafka"]},
        peers,
    )
    assert spec["direction"] == "both"
    assert spec["target"] == {
        "mode": "all",
        "selector": {"namespaces": ["kafka"], "labelSelectors": {"strimzi.io/cluster": "core"}},
    }
    assert "externalTargets" not in spec


def test_faults_chaos_mesh_cannot_express_are_refused_with_the_reason() -> None:
    with pytest.raises(RenderError, match="only with direction 'to'"):
        spec_of({"action": "network-loss", "duration": "30s", "direction": "both"})
    with pytest.raises(ValidationError, match="may only end a pattern"):
        spec_of({"action": "dns-error", "duration": "30s", "patterns": ["*kafka*"]})
    with pytest.raises(ValueError, match="host names or a pod selector"):
        PeerTarget()


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_scenario_renders_one_bounded_object_per_fault(name: str) -> None:
    scenario = load_builtin(name)
    docs = [d for d in yaml.safe_load_all(render_scenario(scenario, form="objects")) if d]
    assert len(docs) == scenario.fault_count
    assert len({d["metadata"]["name"] for d in docs}) == len(docs)
    for doc in docs:
        assert doc["spec"]["duration"]  # no open-ended fault, even when applied by hand
        # Hand-applied objects are not the sweeper's: no run of ours owns them.
        assert LABEL_MANAGED_BY not in doc["metadata"]["labels"]
    assert render_scenario(scenario) == render_scenario(scenario)


def test_the_seed_manifests_are_generated_from_the_builtin_scenarios_and_do_not_drift() -> None:
    expected = expected_manifests()
    assert sorted(expected) == sorted(SEED_MANIFESTS)
    for file, content in expected.items():
        path = REPO / "manifests" / file
        assert path.read_text() == content, (
            f"{path} is out of date: run `python -m control.manifests write manifests/`"
        )
    assert main(["check", str(REPO / "manifests")]) == 0


def test_the_check_command_reports_a_hand_edited_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["write", str(tmp_path)])
    edited = tmp_path / "pod-failure.yaml"
    edited.write_text(edited.read_text().replace("duration: 30s", "duration: 5m", 1))
    capsys.readouterr()
    assert main(["check", str(tmp_path)]) == 1
    errors = capsys.readouterr().err
    assert f"{edited} is out of date" in errors
    assert "stress-chaos.yaml is out of date" not in errors


def test_a_pod_peer_selector_renders_as_the_target_with_its_own_mode() -> None:
    spec = spec_of(
        {
            "action": "network-delay",
            "duration": "2m",
            "latency": "200ms",
            "jitter": "50ms",
            "correlation_pct": 50,
            "direction": "both",
            "target": {"mode": "all"},
            "peer_pods": {"namespace": "temporal", "labels": {}, "mode": "fixed", "value": 2},
        }
    )
    assert spec["mode"] == "all"
    assert spec["target"] == {
        "mode": "fixed",
        "value": "2",
        "selector": {"namespaces": ["temporal"]},
    }
    assert spec["delay"] == {"latency": "200ms", "jitter": "50ms", "correlation": "50"}
    assert "externalTargets" not in spec


def test_all_traffic_has_neither_target_nor_external_targets_and_new_peers_are_hosts() -> None:
    spec = spec_of(
        {"action": "network-bandwidth", "duration": "30s", "all_traffic": True, "direction": "both"}
    )
    assert "target" not in spec and "externalTargets" not in spec
    assert spec["direction"] == "both"
    spec = spec_of({"action": "network-partition", "duration": "30s", "peers": ["llm-proxy"]})
    assert spec["externalTargets"] == ["bytebot-llm-proxy.bytebot.svc.cluster.local"]
    with pytest.raises(ValidationError, match="all_traffic excludes"):
        spec_of(
            {"action": "network-loss", "duration": "30s", "all_traffic": True, "peers": ["kafka"]}
        )


def test_dns_random_renders_the_random_action() -> None:
    spec = spec_of({"action": "dns-random", "duration": "1m", "patterns": ["kafka*"]})
    assert spec["action"] == "random" and spec["patterns"] == ["kafka*"]


def test_scenarios_with_pauses_render_as_a_workflow_and_scheduled_ones_as_a_schedule() -> None:
    assert form_of(load_builtin("pod-failure")) == "objects"
    assert form_of(load_builtin("temporal-resilience-test")) == "workflow"
    assert form_of(load_builtin("weekly-resilience-test")) == "schedule"
    [workflow] = [d for d in yaml.safe_load_all(render_scenario(load_builtin("full-resilience")))]
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    assert templates["settle-after-pod-faults"] == {
        "name": "settle-after-pod-faults",
        "templateType": "Suspend",
        "deadline": "10s",
    }
    assert templates["entry"]["children"][0] == "pod-kill"
    assert templates["pod-kill"]["podChaos"]["duration"] == "30s"


def test_rbac_grants_the_same_least_privilege_in_every_allowed_namespace_and_no_other() -> None:
    k8s = Path(__file__).resolve().parent.parent / "k8s"
    allowed = yaml.safe_load(
        yaml.safe_load((k8s / "configmap.yaml").read_text())["data"]["CHAOS_ALLOWED_NAMESPACES"]
    )
    docs = list(yaml.safe_load_all((k8s / "rbac.yaml").read_text()))
    roles = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "RoleBinding"}
    assert sorted(roles) == sorted(bindings) == sorted(allowed) == ["bytebot", "kafka", "temporal"]
    assert {d["kind"] for d in docs} == {"Role", "RoleBinding"}
    for namespace in allowed:
        rules = roles[namespace]["rules"]
        assert rules == roles["bytebot"]["rules"], namespace
        chaos = next(r for r in rules if r["apiGroups"] == ["chaos-mesh.org"])
        assert sorted(chaos["resources"]) == ["dnschaos", "networkchaos", "podchaos", "stresschaos"]
        assert "update" not in chaos["verbs"] and "deletecollection" not in chaos["verbs"]
        pods = next(r for r in rules if r["apiGroups"] == [""])
        assert pods == {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
        binding = bindings[namespace]
        assert binding["roleRef"]["name"] == roles[namespace]["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "bytebot-chaos-worker", "namespace": "bytebot-chaos"}
        ]
