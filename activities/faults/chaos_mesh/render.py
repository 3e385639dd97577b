"""Pure rendering: a fault spec becomes a Chaos Mesh 2.6 object (`chaos-mesh.org/v1alpha1`).

Owns the only place where our snake_case models meet Chaos Mesh's camelCase: the kind and
action of each fault, its selector, mode and value, the mandatory `duration` (Chaos Mesh counts
it from creation, so a fault ends even if the chaos worker dies), the peers of network faults,
and the labels and annotations that name the tool, the run, the step and the expiry. Also
`documents` builds whole scenarios from these objects (lists of objects, a Workflow, a
Schedule: `starter.py render`); the seed's manifest files are written and checked by
`control.manifests`.

It never talks to the Kubernetes API, never reads the clock and never touches files: the same
input always gives the same object, so a retried activity finds its own object and the
manifests cannot drift.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from models.base import Frozen
from models.durations import format_duration
from models.faults import (
    CombinedStress,
    ContainerKill,
    CpuStress,
    Direction,
    DnsFaultBase,
    DnsRandom,
    FaultSpec,
    MemoryStress,
    NetworkBandwidth,
    NetworkDelay,
    NetworkFaultBase,
    NetworkLoss,
    Peer,
    PodFailure,
    PodKill,
    PodTarget,
    SelectMode,
)
from models.ledger import FaultRequest
from models.peers import PEER_CATALOG

GROUP, VERSION = "chaos-mesh.org", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
TOOL = "bytebot-chaos"
#: Only objects this tool created for a run carry it; the sweeper selects on it.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_RUN = "chaos.bytebot.io/run"
LABEL_STEP = "chaos.bytebot.io/step"
LABEL_ACTION = "chaos.bytebot.io/action"
ANNOTATION_RUN_ID = "chaos.bytebot.io/run-id"
ANNOTATION_EXPIRES_AT = "chaos.bytebot.io/expires-at"
#: Chaos Mesh pauses an experiment (and recovers its targets) while this annotation is "true".
PAUSE_ANNOTATION = "experiment.chaos-mesh.org/pause"
MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={TOOL}"
MANUAL_RUN = "manual"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class RenderError(ValueError):
    """The fault cannot be expressed as a Chaos Mesh object (a retry cannot help)."""


@dataclass(frozen=True)
class ChaosKind:
    """A Chaos Mesh kind and its resource name (plural) in the API."""

    kind: str
    plural: str


POD_CHAOS = ChaosKind("PodChaos", "podchaos")
NETWORK_CHAOS = ChaosKind("NetworkChaos", "networkchaos")
DNS_CHAOS = ChaosKind("DNSChaos", "dnschaos")
STRESS_CHAOS = ChaosKind("StressChaos", "stresschaos")
KINDS = (POD_CHAOS, NETWORK_CHAOS, DNS_CHAOS, STRESS_CHAOS)


class PeerTarget(Frozen):
    """Where a network fault's peer lives: host names (`externalTargets`) or a pod selector."""

    hosts: list[str] = Field(default_factory=list, description="DNS names or IPs of the peer.")
    namespace: str | None = Field(default=None, description="Namespace of the peer's pods.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of its pods.")

    @model_validator(mode="after")
    def _hosts_or_pods(self) -> PeerTarget:
        if bool(self.hosts) == bool(self.labels):
            raise ValueError("a peer is either host names or a pod selector (labels)")
        return self


def _hosts_of(peer: Peer) -> PeerTarget:
    return PeerTarget(hosts=[PEER_CATALOG[peer].host])


class PeerMap(Frozen):
    """Where the peers named by network faults' `peers` are in the cluster (host names by
    default: `models.peers.PEER_CATALOG`; a deployment may map a peer to its pods instead)."""

    temporal: PeerTarget = Field(default_factory=lambda: _hosts_of("temporal"))
    kafka: PeerTarget = Field(default_factory=lambda: _hosts_of("kafka"))
    orchestrator: PeerTarget = Field(default_factory=lambda: _hosts_of("orchestrator"))
    llm_proxy: PeerTarget = Field(default_factory=lambda: _hosts_of("llm-proxy"))

    def of(self, peer: Peer) -> PeerTarget:
        """The target of one peer."""
        target: PeerTarget = getattr(self, peer.replace("-", "_"))
        return target


DEFAULT_PEERS = PeerMap()


def kind_of(fault: FaultSpec) -> ChaosKind:
    """The Chaos Mesh kind that implements a fault."""
    if isinstance(fault, PodKill | PodFailure | ContainerKill):
        return POD_CHAOS
    if isinstance(fault, DnsFaultBase):
        return DNS_CHAOS
    if isinstance(fault, CpuStress | MemoryStress | CombinedStress):
        return STRESS_CHAOS
    return NETWORK_CHAOS


def selector(target: PodTarget) -> dict[str, Any]:
    """Chaos Mesh's `selector` for a target: its namespace and label selectors (if any)."""
    out: dict[str, Any] = {"namespaces": [target.namespace]}
    if target.labels:
        out["labelSelectors"] = dict(target.labels)
    return out


def _mode(target: PodTarget) -> dict[str, Any]:
    mode: dict[str, Any] = {"mode": target.mode.value}
    if target.mode not in (SelectMode.ONE, SelectMode.ALL):
        mode["value"] = str(target.value)  # Chaos Mesh keeps the value as a string
    return mode


def _rate(kbps: int) -> str:
    return f"{kbps // 1000}mbps" if kbps % 1000 == 0 else f"{kbps}kbps"


def _peers(fault: NetworkFaultBase, peers: PeerMap) -> dict[str, Any]:
    """`direction`, `externalTargets` and/or `target` for the other side of a network fault."""
    hosts = [*fault.external_targets, *(h for p in fault.peers for h in peers.of(p).hosts)]
    pod_peers = [
        PodTarget(
            namespace=t.namespace or fault.target.namespace, labels=t.labels, mode=SelectMode.ALL
        )
        for t in (peers.of(p) for p in fault.peers)
        if t.labels
    ]
    if fault.peer_pods is not None:
        pod_peers.append(fault.peer_pods)
    out: dict[str, Any] = {"direction": fault.direction.value}
    if hosts and fault.direction is not Direction.TO:
        raise RenderError(
            f"direction '{fault.direction.value}' needs peers that are pods: Chaos Mesh applies "
            f"externalTargets ({', '.join(hosts)}) only with direction 'to'"
        )
    if hosts:
        out["externalTargets"] = hosts
    if len(pod_peers) > 1:
        raise RenderError("a NetworkChaos has one target selector: give at most one pod peer")
    if pod_peers:
        out["target"] = _mode(pod_peers[0]) | {"selector": selector(pod_peers[0])}
    return out


def fault_spec(fault: FaultSpec, peers: PeerMap = DEFAULT_PEERS) -> dict[str, Any]:
    """The `spec` of the Chaos Mesh object for a fault (`duration` always set)."""
    spec: dict[str, Any] = {}
    if isinstance(fault, PodKill | PodFailure | ContainerKill):
        spec["action"] = fault.action
    elif isinstance(fault, NetworkFaultBase):
        spec["action"] = fault.action.removeprefix("network-")
    elif isinstance(fault, DnsFaultBase):
        spec["action"] = "random" if isinstance(fault, DnsRandom) else "error"
    spec |= _mode(fault.target)
    spec["selector"] = selector(fault.target)
    if isinstance(fault, PodKill) and fault.grace_period_s:
        spec["gracePeriod"] = fault.grace_period_s
    if isinstance(fault, ContainerKill):
        spec["containerNames"] = list(fault.container_names)
    if isinstance(fault, NetworkFaultBase):
        spec |= _peers(fault, peers)
    if isinstance(fault, NetworkDelay):
        spec["delay"] = {"latency": format_duration(fault.latency)}
        if fault.jitter:
            spec["delay"]["jitter"] = format_duration(fault.jitter)
        if fault.correlation_pct is not None:
            spec["delay"]["correlation"] = str(fault.correlation_pct)
    elif isinstance(fault, NetworkLoss):
        spec["loss"] = {"loss": str(fault.loss_pct)}
        if fault.correlation_pct is not None:
            spec["loss"]["correlation"] = str(fault.correlation_pct)
    elif isinstance(fault, NetworkBandwidth):
        spec["bandwidth"] = {
            "rate": _rate(fault.rate_kbps),
            "limit": fault.limit_bytes,
            "buffer": fault.buffer_bytes,
        }
    elif isinstance(fault, DnsFaultBase):
        spec["patterns"] = list(fault.patterns)  # the model checked them
    elif isinstance(fault, CpuStress | MemoryStress | CombinedStress):
        stressors: dict[str, Any] = {}
        if isinstance(fault, CpuStress | CombinedStress):
            stressors["cpu"] = {"workers": fault.cpu.workers, "load": fault.cpu.load_pct}
        if isinstance(fault, MemoryStress | CombinedStress):
            # oomScoreAdj is the CRD's default, written out so the stored object equals ours.
            stressors["memory"] = {
                "workers": fault.memory.workers,
                "size": f"{fault.memory.size_mb}MB",
                "oomScoreAdj": 0,
            }
        spec["stressors"] = stressors
    spec["duration"] = format_duration(fault.duration)
    return spec


def run_label(run_id: str) -> str:
    """A label value naming the run: the id itself when it fits, else a stable digest of it."""
    if _LABEL_VALUE.match(run_id):
        return run_id
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", run_id)[:50].strip("-_.")
    return f"{head}-{digest}" if head else digest


def render_fault(
    fault: FaultSpec,
    *,
    name: str,
    scenario_id: str,
    step: int,
    expires_at: datetime | None = None,
    managed: bool = True,
    peers: PeerMap = DEFAULT_PEERS,
) -> dict[str, Any]:
    """The whole Chaos Mesh object of one fault.

    Args:
        fault: the fault to render.
        name: the object's name (deterministic: a retry must find the same object).
        scenario_id: the workflow id of the scenario run that owns it (`manual` by hand).
        step: the step index of the fault in its scenario.
        expires_at: when the run means it to end, for the sweeper; None when applied by hand.
        managed: label it `app.kubernetes.io/managed-by=bytebot-chaos`, so the orphan sweeper
            owns it. Manifests applied by hand are not: their `duration` bounds them.
        peers: where the network faults' peers are.

    Raises:
        RenderError: the fault cannot be expressed in Chaos Mesh's API.
    """
    kind = kind_of(fault)
    labels = {
        LABEL_PART_OF: TOOL,
        LABEL_RUN: run_label(scenario_id),
        LABEL_STEP: str(step),
        LABEL_ACTION: fault.action,
    }
    if managed:
        labels = {LABEL_MANAGED_BY: TOOL} | labels
    annotations = {ANNOTATION_RUN_ID: scenario_id}
    if expires_at is not None:
        annotations[ANNOTATION_EXPIRES_AT] = expires_at.isoformat()
    return {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {
            "name": name,
            "namespace": fault.target.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": fault_spec(fault, peers),
    }


def render_request(request: FaultRequest, peers: PeerMap = DEFAULT_PEERS) -> dict[str, Any]:
    """The object the Chaos Mesh backend creates for a request, named by its fault id."""
    return render_fault(
        request.fault,
        name=request.fault_id,
        scenario_id=request.scenario_id,
        step=request.step,
        expires_at=request.expires_at,
        managed=True,
        peers=peers,
    )
