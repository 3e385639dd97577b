"""The worker's dependencies ("peers") a network or DNS fault can aim at, and where they live.

ByteBot's worker talks to Temporal, Kafka, the orchestrator (`ORCHESTRATOR_URL`) and the LLM
proxy (`LLM_PROXY_URL`). A fault names them symbolically (`peers`), by the pods behind them
(`peer_pods`, Chaos Mesh's `target`), by host name (`external_targets`) or not at all (every
connection). `PEER_CATALOG` says where each peer is in ByteBot's cluster, so both backends can
tell which peers a selector, a host or a DNS pattern means: the Chaos Mesh backend renders the
hosts, the local backend turns peers into fault proxy routes.

The Temporal and Kafka entries are ByteBot's documented topology; the orchestrator's and the
LLM proxy's host names and labels are this tool's defaults (ByteBot documents only the
environment variables): a deployment that differs maps its peers in the Chaos Mesh backend.
"""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import Field

from models.base import Frozen
from models.targets import PodTarget

Peer = Literal["temporal", "kafka", "orchestrator", "llm-proxy"]
ALL_PEERS: tuple[Peer, ...] = ("temporal", "kafka", "orchestrator", "llm-proxy")
#: The peers a network fault affects when it names none (the seed's two dependencies).
DEFAULT_PEERS: tuple[Peer, ...] = ("temporal", "kafka")


class PeerInfo(Frozen):
    """Where one peer lives in the cluster."""

    name: Peer = Field(description="The peer's symbolic name.")
    host: str = Field(description="The DNS name the worker connects to.")
    namespace: str = Field(description="Namespace of the peer's pods.")
    labels: dict[str, str] = Field(description="Labels every pod of the peer carries.")
    env: str = Field(description="The worker's environment variable that points at it.")


PEER_CATALOG: dict[Peer, PeerInfo] = {
    "temporal": PeerInfo(
        name="temporal",
        host="temporal-frontend.temporal.svc.cluster.local",
        namespace="temporal",
        labels={"app.kubernetes.io/component": "frontend", "app.kubernetes.io/name": "temporal"},
        env="TEMPORAL_ADDRESS",
    ),
    "kafka": PeerInfo(
        name="kafka",
        host="core-cluster-kafka-bootstrap.kafka.svc.cluster.local",
        namespace="kafka",
        labels={"strimzi.io/kind": "Kafka", "strimzi.io/cluster": "core-cluster"},
        env="KAFKA_BROKERS",
    ),
    "orchestrator": PeerInfo(
        name="orchestrator",
        host="bytebot-workflow-orchestrator.bytebot.svc.cluster.local",
        namespace="bytebot",
        labels={"app": "bytebot-workflow-orchestrator"},
        env="ORCHESTRATOR_URL",
    ),
    "llm-proxy": PeerInfo(
        name="llm-proxy",
        host="bytebot-llm-proxy.bytebot.svc.cluster.local",
        namespace="bytebot",
        labels={"app": "bytebot-llm-proxy"},
        env="LLM_PROXY_URL",
    ),
}


def peers_selected_by(target: PodTarget) -> list[Peer]:
    """The peers whose pods a selector (a network fault's `target`) matches."""
    return [p for p, info in PEER_CATALOG.items() if target.selects(info.namespace, info.labels)]


def peers_named_by(host: str) -> list[Peer]:
    """The peers an external target names: by host (a port or trailing dot ignored) or name."""
    bare = host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")
    return [p for p, info in PEER_CATALOG.items() if bare in (info.host, info.name)]


def peers_matching_pattern(pattern: str) -> list[Peer]:
    """The peers a DNSChaos pattern matches: by host name or by symbolic name."""
    return [
        p
        for p, info in PEER_CATALOG.items()
        if fnmatch.fnmatchcase(info.host, pattern) or fnmatch.fnmatchcase(info.name, pattern)
    ]


#: Peers whose pods are infrastructure the workers depend on, not workers themselves.
INFRASTRUCTURE: tuple[Peer, ...] = ("temporal", "kafka")


def watched_workers(target: PodTarget) -> PodTarget:
    """The pods verification watches when a fault hits ``target``.

    A fault on the workers watches them; one on infrastructure (the Temporal frontend, a
    Kafka broker) watches the default worker pods: those must ride out their dependency's
    outage, and the frontend does not poll a task queue as a worker must.
    """
    if target.namespace != PodTarget().namespace and any(
        p in INFRASTRUCTURE for p in peers_selected_by(target)
    ):
        return PodTarget()
    return target
