"""Which peers a selector means, and which pods verification watches under a fault (pure)."""

from __future__ import annotations

from models.peers import peers_named_by, peers_selected_by, watched_workers
from models.targets import WORKER_LABELS, PodTarget, SelectMode


def test_the_real_suites_selectors_name_the_frontend_and_the_brokers() -> None:
    frontend = PodTarget(namespace="temporal", labels={"app.kubernetes.io/component": "frontend"})
    every_temporal_pod = PodTarget(namespace="temporal", labels={}, mode=SelectMode.ALL)
    brokers = PodTarget(namespace="kafka", labels={"strimzi.io/kind": "Kafka"})
    assert peers_selected_by(frontend) == ["temporal"]
    assert peers_selected_by(every_temporal_pod) == ["temporal"]
    assert peers_selected_by(brokers) == ["kafka"]
    assert peers_named_by("core-cluster-kafka-bootstrap.kafka.svc.cluster.local:9092") == ["kafka"]


def test_a_fault_on_infrastructure_is_verified_on_the_workers_and_one_on_workers_on_them() -> None:
    frontend = PodTarget(namespace="temporal", labels={"app.kubernetes.io/component": "frontend"})
    brokers = PodTarget(namespace="kafka", labels={"strimzi.io/kind": "Kafka"})
    for infrastructure in (frontend, brokers):
        assert watched_workers(infrastructure) == PodTarget()
        assert watched_workers(infrastructure).labels == WORKER_LABELS
    half = PodTarget(mode=SelectMode.FIXED_PERCENT, value=50)
    assert watched_workers(half) is half
    # A namespace of ours that is not infrastructure keeps its own target.
    custom = PodTarget(namespace="kafka", labels={"app": "my-consumer"})
    assert watched_workers(custom) is custom
