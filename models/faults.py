"""Fault specs in Chaos Mesh's vocabulary: what to break, where, how, and for how long.

Every fault of the seed's catalog is one model here, with the seed's parameters as defaults.
A fault always carries a bounded `duration`: no fault may be open-ended (the dead-man switch).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from models.base import Frozen
from models.durations import Duration
from models.peers import ALL_PEERS as ALL_PEERS
from models.peers import DEFAULT_PEERS, peers_matching_pattern
from models.peers import Peer as Peer
from models.targets import WORKER_LABELS as WORKER_LABELS
from models.targets import PodTarget as PodTarget
from models.targets import SelectMode as SelectMode

#: No single fault may hold longer than this, whatever a scenario says.
MAX_FAULT_DURATION = timedelta(hours=1)


class Symptom(StrEnum):
    """Symptoms a chaos type is expected to cause; anything else observed is a finding."""

    ACTIVITY_RETRIES = "activity-retries"
    ACTIVITY_TIMEOUTS = "activity-timeouts"
    SLOWER_EXECUTION = "slower-execution"
    REPLICA_RESTART = "replica-restart"
    OOM_KILL = "oom-kill"


class ExpectedBehavior(Frozen):
    """The seed's "Expected Behaviors" row for a chaos type."""

    summary: str = Field(description="What the seed says should happen.")
    tolerated: frozenset[Symptom] = Field(
        default=frozenset(), description="Symptoms that are normal under this fault."
    )


def _expect(summary: str, *tolerated: Symptom) -> ExpectedBehavior:
    return ExpectedBehavior(summary=summary, tolerated=frozenset(tolerated))


_S = Symptom
POD_EXPECTED = _expect(
    "Workflow continues on other workers, no data loss",
    # Runs on the killed worker wait out a heartbeat timeout before another takes them over.
    _S.SLOWER_EXECUTION,
    _S.REPLICA_RESTART,
    _S.ACTIVITY_RETRIES,
    _S.ACTIVITY_TIMEOUTS,
)
OOM_EXPECTED = _expect(
    "OOMKill possible, workflow resumes on restart",
    _S.SLOWER_EXECUTION,
    _S.OOM_KILL,
    _S.REPLICA_RESTART,
    _S.ACTIVITY_RETRIES,
    _S.ACTIVITY_TIMEOUTS,
)
DELAY_EXPECTED = _expect(
    "Increased latency, activities may timeout and retry",
    _S.SLOWER_EXECUTION,
    _S.ACTIVITY_RETRIES,
    _S.ACTIVITY_TIMEOUTS,
)
PARTITION_EXPECTED = _expect(
    "Activities fail, Temporal retries when connectivity restored",
    _S.SLOWER_EXECUTION,
    _S.ACTIVITY_RETRIES,
    _S.ACTIVITY_TIMEOUTS,
)
CPU_EXPECTED = _expect(
    "Slower execution, may trigger activity timeouts",
    _S.SLOWER_EXECUTION,
    _S.ACTIVITY_RETRIES,
    _S.ACTIVITY_TIMEOUTS,
)


class FaultBase(Frozen):
    """What every fault has: a target, a bounded duration and its expected behaviour."""

    name: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$",
        description="Optional short name (DNS label); defaults to the action.",
    )
    target: PodTarget = Field(default_factory=PodTarget, description="The pods it hits.")
    duration: Duration = Field(
        description="How long the fault holds; recovery is due by then, whatever happens."
    )

    @model_validator(mode="after")
    def _duration_is_bounded(self) -> FaultBase:
        if self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.duration > MAX_FAULT_DURATION:
            raise ValueError(f"duration must be at most {MAX_FAULT_DURATION} (no open-ended fault)")
        return self

    def namespaces(self) -> list[str]:
        """Every namespace whose pods the fault acts on."""
        return [self.target.namespace]

    @property
    def label(self) -> str:
        """The fault's name, or its action when unnamed."""
        return self.name or str(getattr(self, "action"))  # noqa: B009 - set on every subclass

    @property
    def expected(self) -> ExpectedBehavior:
        """The seed's expected behaviour for this chaos type."""
        raise NotImplementedError


class PodKill(FaultBase):
    """Sudden pod termination (PodChaos pod-kill)."""

    action: Literal["pod-kill"] = "pod-kill"
    grace_period_s: int = Field(0, ge=0, description="Termination grace period; 0 is SIGKILL.")

    @property
    def expected(self) -> ExpectedBehavior:
        return POD_EXPECTED


class PodFailure(FaultBase):
    """The pod is unavailable for the duration, then back (PodChaos pod-failure)."""

    action: Literal["pod-failure"] = "pod-failure"

    @property
    def expected(self) -> ExpectedBehavior:
        return POD_EXPECTED


class ContainerKill(FaultBase):
    """A container killed as by the OOM killer (PodChaos container-kill)."""

    action: Literal["container-kill"] = "container-kill"
    container_names: list[str] = Field(
        default_factory=lambda: ["worker"], min_length=1, description="Containers to kill."
    )

    @property
    def expected(self) -> ExpectedBehavior:
        return OOM_EXPECTED


class Direction(StrEnum):
    """Which traffic of the target a network fault affects."""

    TO = "to"
    FROM = "from"
    BOTH = "both"


class NetworkFaultBase(FaultBase):
    """Common fields of the network faults: the traffic of the target pods with whom.

    The other side is given as Chaos Mesh gives it: pods (`peer_pods`, its `target`), host
    names (`external_targets`), symbolic dependencies (`peers`), or every connection
    (`all_traffic`: neither `target` nor `externalTargets`). With none of these, `peers` is
    Temporal and Kafka.
    """

    peers: list[Peer] = Field(
        default_factory=list,
        description="Dependencies whose traffic with the target is affected (temporal, kafka, "
        "orchestrator, llm-proxy); by default temporal and kafka when nothing else is given.",
    )
    peer_pods: PodTarget | None = Field(
        None, description="The pods on the other side, with their own mode (Chaos Mesh target)."
    )
    external_targets: list[str] = Field(
        default_factory=list, description="Host names or IPs on the other side (externalTargets)."
    )
    all_traffic: bool = Field(
        False, description="Every connection of the target, whatever the other side is."
    )
    direction: Direction = Field(Direction.TO, description="Traffic direction affected.")

    @model_validator(mode="before")
    @classmethod
    def _default_peers(cls, data: Any) -> Any:
        keys = ("peers", "peer_pods", "external_targets", "all_traffic")
        if isinstance(data, dict) and not any(data.get(k) for k in keys):
            data = {**data, "peers": list(DEFAULT_PEERS)}
        return data

    @model_validator(mode="after")
    def _one_kind_of_other_side(self) -> NetworkFaultBase:
        if self.all_traffic and (self.peers or self.peer_pods or self.external_targets):
            raise ValueError("all_traffic excludes peers, peer_pods and external_targets")
        if len(set(self.peers)) != len(self.peers):
            raise ValueError(f"peers repeat: {self.peers}")
        return self

    def namespaces(self) -> list[str]:
        """The target's namespace and, for a pod peer, the peer's (Chaos Mesh acts on both)."""
        others = [self.peer_pods.namespace] if self.peer_pods else []
        return sorted({self.target.namespace, *others})


class NetworkDelay(NetworkFaultBase):
    """Added latency (NetworkChaos delay)."""

    action: Literal["network-delay"] = "network-delay"
    latency: Duration = Field(timedelta(milliseconds=200), description="Added delay.")
    jitter: Duration = Field(timedelta(0), description="Random variation of the delay.")
    correlation_pct: int | None = Field(
        None, ge=0, le=100, description="Correlation with the previous packet's delay, percent."
    )

    @property
    def expected(self) -> ExpectedBehavior:
        return DELAY_EXPECTED


class NetworkLoss(NetworkFaultBase):
    """Packet loss (NetworkChaos loss)."""

    action: Literal["network-loss"] = "network-loss"
    loss_pct: int = Field(25, ge=1, le=100, description="Share of packets dropped.")
    correlation_pct: int | None = Field(
        None, ge=0, le=100, description="Correlation with the previous packet's fate, percent."
    )

    @property
    def expected(self) -> ExpectedBehavior:
        return DELAY_EXPECTED


class NetworkPartition(NetworkFaultBase):
    """Network isolation from the peers (NetworkChaos partition)."""

    action: Literal["network-partition"] = "network-partition"

    @property
    def expected(self) -> ExpectedBehavior:
        return PARTITION_EXPECTED


class NetworkBandwidth(NetworkFaultBase):
    """A bandwidth limit (NetworkChaos bandwidth)."""

    action: Literal["network-bandwidth"] = "network-bandwidth"
    rate_kbps: int = Field(1000, ge=1, description="Rate limit in kilobits per second (1mbps).")
    limit_bytes: int = Field(20971520, ge=1, description="Bytes that may wait in the queue.")
    buffer_bytes: int = Field(10000, ge=1, description="Token bucket size (burst).")

    @property
    def expected(self) -> ExpectedBehavior:
        return DELAY_EXPECTED


class DnsFaultBase(FaultBase):
    """Common fields of the DNS faults (DNSChaos): which names are affected."""

    patterns: list[str] = Field(
        default_factory=lambda: ["temporal*", "core-cluster-kafka*", "kafka*"],
        min_length=1,
        description="Domain patterns affected; '*' only at the end, '?' anywhere.",
    )

    @model_validator(mode="after")
    def _patterns_chaos_mesh_can_match(self) -> DnsFaultBase:
        # Chaos Mesh accepts a leading '*' and then silently matches nothing: refuse it here.
        for pattern in self.patterns:
            if not pattern or "*" in pattern[:-1]:
                raise ValueError(f"pattern '{pattern}': '*' may only end a pattern (e.g. 'kafka*')")
        return self

    def peers(self) -> list[Peer]:
        """The known peers whose names the patterns match."""
        return [p for p in ALL_PEERS if any(p in peers_matching_pattern(x) for x in self.patterns)]

    @property
    def expected(self) -> ExpectedBehavior:
        return PARTITION_EXPECTED


class DnsError(DnsFaultBase):
    """Name resolution of the peers fails (DNSChaos error)."""

    action: Literal["dns-error"] = "dns-error"


class DnsRandom(DnsFaultBase):
    """Name resolution of the peers returns random addresses (DNSChaos random)."""

    action: Literal["dns-random"] = "dns-random"


class CpuStressor(Frozen):
    """A CPU stressor (Chaos Mesh `stressors.cpu`)."""

    workers: int = Field(1, ge=1, le=64, description="Stress worker threads.")
    load_pct: int = Field(80, ge=1, le=100, description="Load each worker aims at.")


class MemoryStressor(Frozen):
    """A memory stressor (Chaos Mesh `stressors.memory`)."""

    workers: int = Field(1, ge=1, le=64, description="Stress worker threads.")
    size_mb: int = Field(
        256, ge=1, description="Memory the stressor holds in all, shared by its workers, in MB."
    )


class CpuStress(FaultBase):
    """CPU load on the target (StressChaos cpu)."""

    action: Literal["cpu-stress"] = "cpu-stress"
    cpu: CpuStressor = Field(default_factory=CpuStressor)

    @property
    def expected(self) -> ExpectedBehavior:
        return CPU_EXPECTED


class MemoryStress(FaultBase):
    """Memory pressure on the target (StressChaos memory)."""

    action: Literal["memory-stress"] = "memory-stress"
    memory: MemoryStressor = Field(default_factory=MemoryStressor)

    @property
    def expected(self) -> ExpectedBehavior:
        return OOM_EXPECTED


class CombinedStress(FaultBase):
    """CPU and memory pressure at once (one StressChaos with both stressors)."""

    action: Literal["combined-stress"] = "combined-stress"
    cpu: CpuStressor = Field(default_factory=CpuStressor)
    memory: MemoryStressor = Field(default_factory=MemoryStressor)

    @property
    def expected(self) -> ExpectedBehavior:
        return OOM_EXPECTED


FaultSpec = Annotated[
    PodKill
    | PodFailure
    | ContainerKill
    | NetworkDelay
    | NetworkLoss
    | NetworkPartition
    | NetworkBandwidth
    | DnsError
    | DnsRandom
    | CpuStress
    | MemoryStress
    | CombinedStress,
    Field(discriminator="action"),
]
