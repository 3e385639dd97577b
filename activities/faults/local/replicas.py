"""The local replicas as pods: read the stand-in supervisor's state, match and select targets.

The supervisor publishes ``<sut>/state.json``; this module reads it leniently (only the fields
the backend needs, unknown ones ignored), so the two can evolve apart. Local replicas stand
for the pods of one Deployment: namespace `NAMESPACE`, labels `LABELS`. A `PodTarget` matches
them when its namespace is that one and its labels are a subset of those; a selection then
applies Chaos Mesh's modes, seeded with the fault id, so a retried injection picks the same
replicas. This module only reads; it never signals a process or writes a file.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.faults import WORKER_LABELS, PodTarget, SelectMode
from models.ledger import TargetRef

NAMESPACE = "bytebot"
LABELS = dict(WORKER_LABELS)


class CgroupView(BaseModel):
    """A replica's cgroups (v1) as the supervisor reports them."""

    model_config = ConfigDict(extra="ignore")

    memory: str | None = None
    cpu: str | None = None
    memory_limit_bytes: int | None = None
    oom_kills: int = 0


class ReplicaView(BaseModel):
    """One replica as the supervisor reports it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    pid: int | None = None
    pid_start_ticks: int | None = None
    ready: bool = False
    phase: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    last_exit_reason: str | None = None
    held_until: float | None = None
    cgroup: CgroupView | None = None

    def ref(self, namespace: str = NAMESPACE) -> TargetRef:
        """This replica as a fault target (uid: its pid)."""
        return TargetRef(
            namespace=namespace,
            name=self.name,
            uid=str(self.pid or ""),
            ready=self.ready,
            restarts=self.restarts,
            last_exit_reason=self.last_exit_reason,
        )


class SupervisorView(BaseModel):
    """The parts of ``state.json`` the backend reads."""

    model_config = ConfigDict(extra="ignore")

    supervisor_pid: int | None = None
    updated_at: float = 0.0
    shutting_down: bool = False
    replicas: list[ReplicaView] = Field(default_factory=list)

    def replica(self, name: str) -> ReplicaView | None:
        """The replica called ``name``, if listed."""
        return next((r for r in self.replicas if r.name == name), None)


class StandinUnavailable(RuntimeError):
    """The supervisor's state cannot be read (not started yet, or not there at all)."""


def read_state(sut_state_dir: Path) -> SupervisorView:
    """Read ``state.json``; raises `StandinUnavailable` if it is missing or unreadable."""
    path = sut_state_dir / "state.json"
    try:
        return SupervisorView.model_validate(json.loads(path.read_text()))
    except FileNotFoundError as e:
        raise StandinUnavailable(f"no supervisor state at {path}: is the stand-in up?") from e
    except (ValueError, ValidationError) as e:
        raise StandinUnavailable(f"unreadable supervisor state at {path}: {e}") from e


def matches(target: PodTarget, namespace: str = NAMESPACE) -> bool:
    """Whether the target's selector matches the local replicas at all."""
    return target.namespace == namespace and all(
        LABELS.get(key) == value for key, value in target.labels.items()
    )


def count_for(mode: SelectMode, value: int | None, available: int, rng: random.Random) -> int:
    """How many of ``available`` matching replicas a mode hits (Chaos Mesh's arithmetic)."""
    if mode is SelectMode.ONE:
        return min(1, available)
    if mode is SelectMode.ALL:
        return available
    if mode is SelectMode.FIXED:
        return min(value or 0, available)
    if mode is SelectMode.FIXED_PERCENT:
        return math.floor(available * (value or 0) / 100)
    # random-max-percent: a percentage drawn in [0, value], then as fixed-percent.
    return math.floor(available * rng.randint(0, value or 0) / 100)


def select(target: PodTarget, replicas: list[ReplicaView], fault_id: str) -> list[ReplicaView]:
    """The replicas a fault hits: matched by selector, then chosen by mode, seeded by fault_id.

    An empty list means nothing matched or the mode chose none.
    """
    if not matches(target):
        return []
    candidates = sorted(replicas, key=lambda r: r.name)
    rng = random.Random(fault_id)
    count = count_for(target.mode, target.value, len(candidates), rng)
    chosen = rng.sample(candidates, count) if count < len(candidates) else candidates
    return sorted(chosen, key=lambda r: r.name)


def no_match_reason(target: PodTarget, available: int) -> str:
    """Why a selection came out empty, in words."""
    if not matches(target):
        labels = ",".join(f"{k}={v}" for k, v in sorted(LABELS.items()))
        return f"no target matched {target.describe()}: the local replicas are {NAMESPACE}/{labels}"
    if available == 0:
        return f"no target matched {target.describe()}: the supervisor lists no replica"
    return f"no target matched {target.describe()}: the mode selects none of {available}"
