"""Fault specs in Chaos Mesh's vocabulary: what to break, where, how, and for how long.

Every fault of the seed's catalog is one model here, with the seed's parameters as defaults.
A fault always carries a bounded `duration`: no fault may be open-ended (the dead-man switch).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from models.base import Frozen
from models.durations import Duration

#: No single fault may hold longer than this, whatever a scenario says.
MAX_FAULT_DURATION = timedelta(hours=1)
WORKER_LABELS = {"app": "bytebot-temporal-worker"}


class SelectMode(StrEnum):
    """How many of the matching targets a fault hits (Chaos Mesh's `mode`)."""

    ONE = "one"
    ALL = "all"
    FIXED = "fixed"
    FIXED_PERCENT = "fixed-percent"
    RANDOM_MAX_PERCENT = "random-max-percent"


class PodTarget(Frozen):
    """Which worker pods (or local replicas) a fault hits."""

    namespace: str = Field("bytebot", description="Namespace of the target pods.")
    labels: dict[str, str] = Field(
        default_factory=lambda: dict(WORKER_LABELS),
        description="Pods must carry every one of these labels.",
    )
    mode: SelectMode = Field(SelectMode.ONE, description="How many matching pods to hit.")
    value: int | None = Field(
        None, ge=1, description="Count for 'fixed'; percent (1-100) for the percent modes."
    )

    @model_validator(mode="after")
    def _value_fits_mode(self) -> PodTarget:
        if self.mode in (SelectMode.ONE, SelectMode.ALL) and self.value is not None:
            raise ValueError(f"mode '{self.mode}' takes no value")
        if self.mode is SelectMode.FIXED and self.value is None:
            raise ValueError("mode 'fixed' needs a value: the number of pods")
        percent = self.mode in (SelectMode.FIXED_PERCENT, SelectMode.RANDOM_MAX_PERCENT)
        if percent and (self.value is None or self.value > 100):
            raise ValueError(f"mode '{self.mode}' needs a value between 1 and 100 (percent)")
        return self

    def describe(self) -> str:
        """A short human form, e.g. `bytebot/app=bytebot-temporal-worker (one)`."""
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        mode = self.mode.value if self.value is None else f"{self.mode.value} {self.value}"
        return f"{self.namespace}/{labels} ({mode})"


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


Peer = Literal["temporal", "kafka"]
ALL_PEERS: tuple[Peer, ...] = ("temporal", "kafka")


class NetworkFaultBase(FaultBase):
    """Common fields of the network faults."""

    peers: list[Peer] = Field(
        default_factory=lambda: list(ALL_PEERS),
        min_length=1,
        description="Dependencies whose traffic with the target is affected.",
    )
    direction: Direction = Field(Direction.TO, description="Traffic direction affected.")


class NetworkDelay(NetworkFaultBase):
    """Added latency (NetworkChaos delay)."""

    action: Literal["network-delay"] = "network-delay"
    latency: Duration = Field(timedelta(milliseconds=200), description="Added delay.")
    jitter: Duration = Field(timedelta(0), description="Random variation of the delay.")
    correlation_pct: int = Field(0, ge=0, le=100, description="Correlation with the last one.")

    @property
    def expected(self) -> ExpectedBehavior:
        return DELAY_EXPECTED


class NetworkLoss(NetworkFaultBase):
    """Packet loss (NetworkChaos loss)."""

    action: Literal["network-loss"] = "network-loss"
    loss_pct: int = Field(25, ge=1, le=100, description="Share of packets dropped.")
    correlation_pct: int = Field(0, ge=0, le=100, description="Correlation with the last one.")

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


class DnsError(FaultBase):
    """Name resolution of the peers fails (DNSChaos error)."""

    action: Literal["dns-error"] = "dns-error"
    patterns: list[str] = Field(
        default_factory=lambda: ["temporal*", "core-cluster-kafka*", "kafka*"],
        min_length=1,
        description="Domain patterns that fail to resolve; '*' only at the end, '?' anywhere.",
    )

    @model_validator(mode="after")
    def _patterns_chaos_mesh_can_match(self) -> DnsError:
        # Chaos Mesh accepts a leading '*' and then silently matches nothing: refuse it here.
        for pattern in self.patterns:
            if not pattern or "*" in pattern[:-1]:
                raise ValueError(f"pattern '{pattern}': '*' may only end a pattern (e.g. 'kafka*')")
        return self

    @property
    def expected(self) -> ExpectedBehavior:
        return PARTITION_EXPECTED


class CpuStressor(Frozen):
    """A CPU stressor (Chaos Mesh `stressors.cpu`)."""

    workers: int = Field(1, ge=1, le=64, description="Stress worker threads.")
    load_pct: int = Field(80, ge=1, le=100, description="Load each worker aims at.")


class MemoryStressor(Frozen):
    """A memory stressor (Chaos Mesh `stressors.memory`)."""

    workers: int = Field(1, ge=1, le=64, description="Stress worker threads.")
    size_mb: int = Field(256, ge=1, description="Memory each worker holds, in MB.")


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
    | CpuStress
    | MemoryStress
    | CombinedStress,
    Field(discriminator="action"),
]
