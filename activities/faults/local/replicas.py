"""The local replicas as pods: read the supervisors' state, match and select targets.

The stand-in's supervisor publishes ``<sut>/state.json``; its replicas stand for the worker
pods: namespace `NAMESPACE`, labels `LABELS`, container ``worker``. Infrastructure run under the
same supervisor (the Temporal dev server, the Kafka broker: `devstack.targets`) publishes
``<targets>/<name>/state.json`` beside a ``target.json`` naming the pods it stands for
(namespace, labels, container). `read_targets` merges them all into one view, each replica
carrying its namespace, labels and state directory (where its hold files go).

This module reads leniently (only the fields the backend needs, unknown ones ignored), so the
supervisor and the backend can evolve apart. A `PodTarget` matches a replica when the namespace
is its one and the target's labels are a subset of its labels; a selection then applies Chaos
Mesh's modes, seeded with the fault id, so a retried injection picks the same replicas. This
module only reads; it never signals a process or writes a file.
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
    namespace: str = Field(default=NAMESPACE, description="Set by `read_targets`.")
    labels: dict[str, str] = Field(default_factory=lambda: dict(LABELS))
    containers: list[str] = Field(default_factory=lambda: ["worker"])
    state_dir: str | None = Field(default=None, description="Its supervisor's state directory.")

    def ref(self, namespace: str | None = None) -> TargetRef:
        """This replica as a fault target (uid: its pid)."""
        return TargetRef(
            namespace=namespace or self.namespace,
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


class TargetGroup(BaseModel):
    """``target.json``: the pods an infrastructure supervisor's replicas stand for."""

    model_config = ConfigDict(extra="ignore")

    namespace: str
    labels: dict[str, str] = Field(default_factory=dict)
    container: str = "main"


class StandinUnavailable(RuntimeError):
    """The supervisor's state cannot be read (not started yet, or not there at all)."""


def read_state(sut_state_dir: Path) -> SupervisorView:
    """Read ``state.json``; raises `StandinUnavailable` if it is missing or unreadable."""
    path = sut_state_dir / "state.json"
    try:
        view = SupervisorView.model_validate(json.loads(path.read_text()))
    except FileNotFoundError as e:
        raise StandinUnavailable(f"no supervisor state at {path}: is the stand-in up?") from e
    except (ValueError, ValidationError) as e:
        raise StandinUnavailable(f"unreadable supervisor state at {path}: {e}") from e
    for replica in view.replicas:
        replica.state_dir = str(sut_state_dir)
    return view


def _read_group(group_dir: Path) -> list[ReplicaView]:
    """One infrastructure supervisor's replicas, tagged with the pods they stand for."""
    try:
        group = TargetGroup.model_validate(json.loads((group_dir / "target.json").read_text()))
        view = read_state(group_dir)
    except (FileNotFoundError, ValueError, ValidationError, StandinUnavailable):
        return []  # not started yet, or being restarted: it simply has no replicas now
    for replica in view.replicas:
        replica.namespace, replica.labels = group.namespace, dict(group.labels)
        replica.containers = [group.container]
    return view.replicas


def read_targets(sut_state_dir: Path, targets_dir: Path | None = None) -> SupervisorView:
    """The stand-in's replicas and every supervised infrastructure replica, in one view.

    Raises `StandinUnavailable` only when the stand-in's state is unreadable and no
    infrastructure is supervised either.
    """
    extra: list[ReplicaView] = []
    if targets_dir is not None and targets_dir.is_dir():
        for group_dir in sorted(p for p in targets_dir.iterdir() if p.is_dir()):
            extra += _read_group(group_dir)
    try:
        view = read_state(sut_state_dir)
    except StandinUnavailable:
        if not extra:
            raise
        view = SupervisorView()
    view.replicas = [*view.replicas, *extra]
    return view


def matches(target: PodTarget, replica: ReplicaView | None = None) -> bool:
    """Whether the target's selector matches the replica (default: the worker replicas)."""
    namespace, labels = (replica.namespace, replica.labels) if replica else (NAMESPACE, LABELS)
    return target.selects(namespace, labels)


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
    candidates = sorted((r for r in replicas if matches(target, r)), key=lambda r: r.name)
    if not candidates:
        return []
    rng = random.Random(fault_id)
    count = count_for(target.mode, target.value, len(candidates), rng)
    chosen = rng.sample(candidates, count) if count < len(candidates) else candidates
    return sorted(chosen, key=lambda r: r.name)


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def no_match_reason(target: PodTarget, replicas: list[ReplicaView]) -> str:
    """Why a selection came out empty, in words."""
    matched = [r for r in replicas if matches(target, r)]
    if matched:
        return f"no target matched {target.describe()}: the mode selects none of {len(matched)}"
    if not replicas:
        return f"no target matched {target.describe()}: the supervisor lists no replica"
    groups = sorted({r.namespace + "/" + _labels(r.labels) for r in replicas})
    return f"no target matched {target.describe()}: the local pods are {'; '.join(groups)}"
