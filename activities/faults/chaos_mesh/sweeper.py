"""The orphan sweeper's activities (its schedule is `control.schedules`').

List the chaos objects this tool labelled in the allowed namespaces, look up each owning run's
status in Temporal, and delete the orphans the workflow picked (`models.sweep.plan_sweep`).
Together with the mandatory `duration` of every object, this is what guarantees that no fault
outlives its run, even after `temporal workflow terminate` or a lost worker.

It never decides what is an orphan (the workflow does, deterministically) and never removes a
finalizer: a stuck deletion is listed with its finalizers and the state of its target pods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.faults.chaos_mesh.client import KubeClient, KubeRejected
from activities.faults.chaos_mesh.render import (
    ANNOTATION_EXPIRES_AT,
    ANNOTATION_RUN_ID,
    KINDS,
    LABEL_STEP,
    MANAGED_SELECTOR,
)
from models.sweep import (
    NOT_FOUND,
    RUNNING,
    ChaosObjectList,
    ChaosObjectRef,
    DeleteInput,
    DeleteResult,
    RunStates,
    RunStatesInput,
    SweepInput,
)
from workflows import names

log = structlog.get_logger(__name__)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def object_ref(obj: dict[str, Any]) -> ChaosObjectRef:
    """A listed Chaos Mesh object as the sweeper sees it."""
    meta = obj["metadata"]
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    records = ((obj.get("status") or {}).get("experiment") or {}).get("containerRecords") or []
    step = labels.get(LABEL_STEP)
    return ChaosObjectRef(
        kind=obj["kind"],
        namespace=meta["namespace"],
        name=meta["name"],
        scenario_id=annotations.get(ANNOTATION_RUN_ID),
        step=int(step) if step and step.isdigit() else None,
        expires_at=_time(annotations.get(ANNOTATION_EXPIRES_AT)),
        created_at=_time(meta.get("creationTimestamp")),
        deleting_since=_time(meta.get("deletionTimestamp")),
        finalizers=list(meta.get("finalizers") or []),
        targets=sorted({str(r["id"]).split("/")[1] for r in records if "/" in str(r.get("id"))}),
    )


class SweeperActivities:
    """The sweeper's side effects, bound to the worker's Kubernetes and Temporal clients."""

    def __init__(self, kube: KubeClient, temporal: Client, allowed_namespaces: list[str]) -> None:
        """Bind the clients.

        Args:
            kube: the rate-limited Kubernetes client of the Chaos Mesh backend.
            temporal: a client of the namespace the chaos runs live in.
            allowed_namespaces: the namespaces the worker may touch (and sweeps).
        """
        self.kube = kube
        self.temporal = temporal
        self.allowed_namespaces = list(allowed_namespaces)

    @activity.defn(name=names.LIST_CHAOS_OBJECTS)
    async def list_chaos_objects(self, sweep: SweepInput) -> ChaosObjectList:
        """Every object labelled `app.kubernetes.io/managed-by=bytebot-chaos`, per namespace."""
        objects, problems = [], []
        for namespace in sweep.namespaces or self.allowed_namespaces:
            if namespace not in self.allowed_namespaces:
                problems.append(f"namespace '{namespace}' is not allowed; not swept")
                continue
            try:
                found = [
                    object_ref(obj)
                    for kind in KINDS
                    for obj in await self.kube.list_objects(
                        kind.plural, namespace, MANAGED_SELECTOR
                    )
                ]
                objects += await self._with_present_targets(namespace, found)
            except KubeRejected as err:
                problems.append(err.message)  # one namespace we cannot read stops no other
            activity.heartbeat(namespace)
        return ChaosObjectList(objects=objects, problems=problems)

    async def _with_present_targets(
        self, namespace: str, objects: list[ChaosObjectRef]
    ) -> list[ChaosObjectRef]:
        """Note which target pods still exist, for objects whose deletion is pending."""
        if not any(o.deleting_since for o in objects):
            return objects
        pods = {p["metadata"]["name"] for p in await self.kube.list_pods(namespace, {})}
        return [
            o.model_copy(update={"targets_present": [t for t in o.targets if t in pods]})
            if o.deleting_since
            else o
            for o in objects
        ]

    @activity.defn(name=names.CHECK_CHAOS_RUNS)
    async def check_chaos_runs(self, runs: RunStatesInput) -> RunStates:
        """Each run's status in Temporal: `running`, its closed status, or `not-found`."""
        states = {}
        for run_id in runs.scenario_ids:
            try:
                described = await self.temporal.get_workflow_handle(run_id).describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                states[run_id] = NOT_FOUND
                continue
            status = described.status
            states[run_id] = (
                RUNNING
                if status is WorkflowExecutionStatus.RUNNING
                else (status.name.lower() if status else NOT_FOUND)
            )
            activity.heartbeat(run_id)
        return RunStates(states=states)

    @activity.defn(name=names.DELETE_CHAOS_OBJECTS)
    async def delete_chaos_objects(self, delete: DeleteInput) -> DeleteResult:
        """Delete each orphan (Chaos Mesh recovers its targets before the object goes)."""
        deleted, gone = [], []
        for orphan in delete.orphans:
            obj = orphan.object
            if obj.namespace not in self.allowed_namespaces:
                continue  # never touch what the worker is not allowed to
            plural = obj.kind.lower()
            if await self.kube.delete(plural, obj.namespace, obj.name):
                deleted.append(obj.ref)
                log.warning("orphan_deleted", object=obj.ref, reason=orphan.reason)
            else:
                gone.append(obj.ref)
            activity.heartbeat(obj.ref)
        return DeleteResult(deleted=deleted, already_gone=gone)

    def all(self) -> list[object]:
        """Every activity of this class, for the worker."""
        return [self.list_chaos_objects, self.check_chaos_runs, self.delete_chaos_objects]
