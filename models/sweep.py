"""The orphan sweeper's envelopes and its decision, a pure function of what it listed.

A chaos object is an orphan when the run that created it is no longer running (closed,
terminated, or unknown to Temporal) or when its expiry has passed. `plan_sweep` decides; the
activities only list, look up and delete. An object whose deletion is held by a finalizer for
too long is reported as stuck, never forced: forcing it off could leave a fault in a pod.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from models.base import Frozen
from models.durations import Duration

RUNNING = "running"
NOT_FOUND = "not-found"


class SweepInput(Frozen):
    """The input of `ChaosOrphanSweeperWorkflow` (its schedule passes the defaults)."""

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to sweep; empty: all allowed ones."
    )
    stuck_after: Duration = Field(
        default=timedelta(minutes=2),
        description="A deletion held longer than this is reported stuck.",
    )


class ChaosObjectRef(Frozen):
    """A chaos object labelled by this tool, with what the sweeper needs to judge it."""

    kind: str
    namespace: str
    name: str
    scenario_id: str | None = Field(
        None, description="Workflow id of the scenario run that created it."
    )
    step: int | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    deleting_since: datetime | None = Field(None, description="Its deletionTimestamp, if any.")
    finalizers: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list, description="Pods in its records.")
    targets_present: list[str] = Field(
        default_factory=list, description="Those of its target pods that still exist."
    )

    @property
    def ref(self) -> str:
        """`Kind namespace/name`."""
        return f"{self.kind} {self.namespace}/{self.name}"


class ChaosObjectList(Frozen):
    """What the list activity found, and namespaces it could not read."""

    objects: list[ChaosObjectRef] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class RunStatesInput(Frozen):
    """Workflow ids of the scenario runs whose status the sweeper needs."""

    scenario_ids: list[str] = Field(default_factory=list)


class RunStates(Frozen):
    """Status per run id: `running`, a closed status (`completed`, `terminated`...), `not-found`."""

    states: dict[str, str] = Field(default_factory=dict)


class Orphan(Frozen):
    """An object to delete, and why."""

    object: ChaosObjectRef
    reason: str


class StuckObject(Frozen):
    """An object whose deletion a finalizer holds: reported for a person to act on."""

    object: ChaosObjectRef
    reason: str


class DeleteInput(Frozen):
    """Orphans to delete."""

    orphans: list[Orphan] = Field(default_factory=list)


class DeleteResult(Frozen):
    """What the delete activity did."""

    deleted: list[str] = Field(default_factory=list)
    already_gone: list[str] = Field(default_factory=list)


class SweepPlan(Frozen):
    """The sweeper's decision for every object it listed."""

    orphans: list[Orphan] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    stuck: list[StuckObject] = Field(default_factory=list)


class SweepReport(Frozen):
    """The result of one sweep."""

    checked: int = 0
    deleted: list[Orphan] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    stuck: list[StuckObject] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def _stuck_reason(obj: ChaosObjectRef, now: datetime) -> str:
    assert obj.deleting_since is not None
    held = int((now - obj.deleting_since).total_seconds())
    gone = sorted(set(obj.targets) - set(obj.targets_present))
    targets = f"; target pods gone: {', '.join(gone)}" if gone else ""
    return (
        f"deletion held for {held}s by finalizers {obj.finalizers}{targets}. Check the Chaos "
        f"Mesh controller; once the targets are recovered or gone, remove the finalizers by "
        f"hand: kubectl -n {obj.namespace} patch {obj.kind.lower()} {obj.name} --type=merge "
        """-p '{"metadata":{"finalizers":null}}'"""
    )


def plan_sweep(
    objects: list[ChaosObjectRef], runs: RunStates, now: datetime, stuck_after: timedelta
) -> SweepPlan:
    """Decide, for each object, whether to delete it, keep it, or report it stuck."""
    orphans, kept, stuck = [], [], []
    for obj in objects:
        state = runs.states.get(obj.scenario_id or "", NOT_FOUND)
        if obj.deleting_since is not None:
            if obj.finalizers and now - obj.deleting_since >= stuck_after:
                stuck.append(StuckObject(object=obj, reason=_stuck_reason(obj, now)))
            else:
                kept.append(f"{obj.ref}: being deleted")
        elif obj.expires_at is not None and obj.expires_at <= now:
            orphans.append(Orphan(object=obj, reason=f"expired at {obj.expires_at.isoformat()}"))
        elif obj.scenario_id is None:
            orphans.append(Orphan(object=obj, reason="no owning run recorded"))
        elif state != RUNNING:
            orphans.append(Orphan(object=obj, reason=f"its run {obj.scenario_id} is {state}"))
        else:
            kept.append(f"{obj.ref}: run {obj.scenario_id} is running")
    return SweepPlan(orphans=orphans, kept=kept, stuck=stuck)
