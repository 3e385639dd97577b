"""The fault ledger: what was injected, where, until when, and what the backend saw.

These are also the envelopes of the fault backend's activities (inject, confirm, recover),
which both backends implement under the same activity names.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AliasChoices, Field

from models.base import Frozen
from models.faults import FaultSpec, PodTarget


class TargetRef(Frozen):
    """One pod or local replica a fault hits, with what identifies this incarnation of it."""

    namespace: str = ""
    name: str
    uid: str = Field("", description="Pod uid, or the replica's pid locally.")
    ready: bool | None = None
    restarts: int | None = None
    last_exit_reason: str | None = Field(None, description="e.g. OOMKilled, Killed, Error.")


class FaultRequest(Frozen):
    """A fault to preview, inject, confirm or recover; the same request every time."""

    fault_id: str = Field(description="Stable id: a retried activity finds its own fault.")
    scenario_id: str = Field(
        validation_alias=AliasChoices("scenario_id", "run_id"),
        description="Workflow id of the scenario run that owns the fault (`run_id` before).",
    )
    step: int = Field(ge=0)
    fault: FaultSpec
    expires_at: datetime = Field(description="When the backend ends it, even if we are gone.")
    allowed_namespaces: list[str] = Field(default_factory=lambda: ["bytebot"])


class FaultStatus(StrEnum):
    """Where a fault is in its life."""

    PLANNED = "planned"
    INJECTED = "injected"
    RECOVERED = "recovered"
    RECOVERY_FAILED = "recovery-failed"
    NOT_INJECTED = "not-injected"


class Injection(Frozen):
    """What an injection did: the targets hit and the evidence the backend has of it."""

    targets: list[TargetRef] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    in_effect: bool = Field(False, description="True once the backend saw the fault take hold.")


class Recovery(Frozen):
    """What a recovery did."""

    recovered: bool = Field(
        description="Nothing of the fault is left: the Chaos Mesh object is gone, the proxy no "
        "longer applies the rule, every stressor has exited. `recover_fault` retries until so."
    )
    evidence: list[str] = Field(default_factory=list)


class FaultRecord(Frozen):
    """One row of the ledger."""

    fault_id: str
    step: int
    label: str
    action: str
    target: str = Field(description="The selector, in words.")
    status: FaultStatus = FaultStatus.PLANNED
    injected_at: datetime | None = None
    expires_at: datetime | None = None
    recovered_at: datetime | None = None
    targets: list[TargetRef] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)


class ReplicaQuery(Frozen):
    """Which replicas to read (the fault's target, or the whole worker set)."""

    target: PodTarget


class ReplicaSet(Frozen):
    """The worker replicas as the backend sees them (pods in a cluster, processes locally)."""

    replicas: list[TargetRef] = Field(default_factory=list)

    @property
    def ready(self) -> int:
        """How many replicas are ready."""
        return sum(1 for r in self.replicas if r.ready)


class TargetPreview(Frozen):
    """What a fault would hit, and whether the backend accepts it (the dry run)."""

    fault_id: str
    label: str
    action: str
    selector: str
    targets: list[TargetRef] = Field(default_factory=list)
    accepted: bool = True
    problems: list[str] = Field(default_factory=list)
