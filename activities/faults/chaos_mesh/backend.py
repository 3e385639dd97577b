"""The Chaos Mesh fault backend: faults are Chaos Mesh objects created through the Kubernetes API.

Implements `activities.faults.backend.FaultBackend`. Every call is keyed on `request.fault_id`,
which is the object's name: a retried inject adopts the object it created before, a repeated
recover finds nothing left. Safety comes before any write: the target namespace must be allowed and
the blast radius (pods the selector and mode would hit) must stay under the cap. Before creating an
object, the pods it may hit are written into an annotation, so that confirming a one-shot fault
(pod-kill, container-kill) can compare pod uids and restart counts with what was there before.

Pausing sets Chaos Mesh's pause annotation (the controller recovers the targets and keeps the
object; its `duration` still counts from creation), resuming removes it.

It never talks to the API server directly (only through `activities.faults.chaos_mesh.client`)
and never forces a finalizer off: a deletion that does not finish is reported, and retried, not
hidden.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from temporalio import activity

from activities.faults.backend import FaultRejected, NotYet
from activities.faults.chaos_mesh.client import (
    KubeAlreadyExists,
    KubeClient,
    KubeConflict,
    KubeRejected,
    pod_ref,
)
from activities.faults.chaos_mesh.client import container_statuses as statuses
from activities.faults.chaos_mesh.render import (
    ANNOTATION_EXPIRES_AT,
    ANNOTATION_RUN_ID,
    DEFAULT_PEERS,
    KINDS,
    LABEL_STEP,
    MANAGED_SELECTOR,
    PAUSE_ANNOTATION,
    PeerMap,
    RenderError,
    kind_of,
    render_request,
)
from activities.faults.preview import preview_problems
from models.faults import PodTarget, SelectMode
from models.fences import namespace_refusal
from models.ledger import (
    FaultRequest,
    Injection,
    Recovery,
    ReplicaQuery,
    ReplicaSet,
    TargetPreview,
)

if TYPE_CHECKING:
    from settings import Settings

log = structlog.get_logger(__name__)
#: Pods (uid, restarts per container) the fault may hit, as they were before it was created.
TARGETS_BEFORE = "chaos.bytebot.io/targets-before"
#: Faults that act once; a changed pod (new uid, higher restart count) proves they took effect.
ONE_SHOT = ("pod-kill", "container-kill")


@dataclass(frozen=True)
class BlastRadius:
    """The most a single fault may hit: `max_pods` pods and `max_percent` of those matched."""

    max_pods: int | None = 10
    max_percent: int | None = 50

    def problems(self, target: PodTarget, matched: int) -> list[str]:
        """Why a fault on `matched` pods is refused (empty when it is within the cap)."""
        if matched == 0:
            return [f"no pod matches {target.describe()}"]
        value = target.value or 0
        hits = {
            SelectMode.ONE: 1,
            SelectMode.ALL: matched,
            SelectMode.FIXED: min(value, matched),
        }.get(target.mode, matched * value // 100)  # Chaos Mesh rounds percentages down
        if hits == 0:
            return [f"{target.describe()} selects no pod out of {matched}"]
        out = []
        if self.max_pods is not None and hits > self.max_pods:
            out.append(f"would hit {hits} pods, more than the cap of {self.max_pods}")
        if self.max_percent is not None and hits * 100 > self.max_percent * matched:
            out.append(
                f"would hit {hits} of {matched} matching pods ({100 * hits // matched}%), "
                f"more than the cap of {self.max_percent}%"
            )
        return out


def conditions(obj: dict[str, Any]) -> dict[str, bool]:
    """Chaos Mesh's conditions (Selected, AllInjected, AllRecovered, Paused) as booleans."""
    found = (obj.get("status") or {}).get("conditions") or []
    return {c["type"]: c.get("status") == "True" for c in found if "type" in c}


def records(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """`status.experiment.containerRecords`: one per target with its phase and counts."""
    return list(((obj.get("status") or {}).get("experiment") or {}).get("containerRecords") or [])


def _record_lines(obj: dict[str, Any]) -> list[str]:
    return [
        f"{r.get('id')}: {r.get('phase')} (injected {r.get('injectedCount', 0)}x, "
        f"recovered {r.get('recoveredCount', 0)}x)"
        for r in records(obj)
    ]


def failures(obj: dict[str, Any]) -> list[str]:
    """The controller's latest failed apply/recover per target (why a fault is not in effect)."""
    out = []
    for record in records(obj):
        failed = [e for e in record.get("events") or [] if e.get("type") == "Failed"]
        if failed and record.get("phase") != "Injected":
            event = failed[-1]
            out.append(
                f"{record.get('id')}: {event.get('operation')} failed: {event.get('message')}"
            )
    return out


def _heartbeat(*details: Any) -> None:
    if activity.in_activity():
        activity.heartbeat(*details)


class ChaosMeshBackend:
    """Injects faults as Chaos Mesh objects; see the module docstring for the guarantees."""

    name = "chaos-mesh"

    def __init__(
        self,
        kube: KubeClient,
        *,
        allowed_namespaces: list[str],
        blast_radius: BlastRadius | None = None,
        peers: PeerMap = DEFAULT_PEERS,
        poll_s: float = 0.5,
        recover_wait_s: float = 30.0,
    ) -> None:
        """Bind the backend to a client and this deployment's limits.

        Args:
            kube: the rate-limited Kubernetes client.
            allowed_namespaces: the only namespaces faults may target.
            blast_radius: the cap on pods one fault may hit.
            peers: where network faults' peers (temporal, kafka) are.
            poll_s: interval of the wait for a deletion to finish.
            recover_wait_s: how long one recover call waits before the retry policy takes over.
        """
        self.kube = kube
        self.allowed_namespaces = list(allowed_namespaces)
        self.blast_radius = blast_radius or BlastRadius()
        self.peers = peers
        self.poll_s = poll_s
        self.recover_wait_s = recover_wait_s

    @classmethod
    def from_settings(cls, settings: Settings) -> ChaosMeshBackend:
        """The backend of a deployment: kubeconfig (or in-cluster), namespaces and caps."""
        return cls(
            KubeClient.from_config(settings.kubeconfig),
            allowed_namespaces=settings.allowed_namespaces,
            blast_radius=BlastRadius(settings.max_targets, settings.max_target_pct),
        )

    # -- safety -------------------------------------------------------------------------

    def _check_namespace(self, namespace: str) -> None:
        if (refusal := namespace_refusal([namespace], self.allowed_namespaces)) is not None:
            raise FaultRejected(refusal)

    def _render(self, request: FaultRequest) -> dict[str, Any]:
        try:
            return render_request(request, self.peers)
        except RenderError as err:
            raise FaultRejected(str(err)) from err

    async def _pods(self, target: PodTarget) -> list[dict[str, Any]]:
        pods = await self.kube.list_pods(target.namespace, target.labels)
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    # -- FaultBackend -------------------------------------------------------------------

    async def preview(self, request: FaultRequest) -> TargetPreview:
        """Pods each selector matches, the blast-radius check and a server-side dry run."""
        fault, problems, pods = request.fault, [], []
        try:
            self._check_namespace(fault.target.namespace)
        except FaultRejected as err:  # never call the API where we may not go
            return TargetPreview(
                fault_id=request.fault_id,
                label=fault.label,
                action=fault.action,
                selector=fault.target.describe(),
                accepted=False,
                problems=[err.message],
            )
        pods = await self._pods(fault.target)
        problems += self.blast_radius.problems(fault.target, len(pods))
        containers = [
            {c["name"] for c in (p.get("spec") or {}).get("containers", [])} for p in pods
        ]
        problems += preview_problems(fault, len(pods), containers)
        try:
            await self.kube.create(render_request(request, self.peers), dry_run=True)
        except RenderError as err:
            problems.append(str(err))
        except KubeAlreadyExists:
            pass  # the run's own object from an earlier attempt: valid by construction
        except KubeRejected as err:
            problems.append(err.message)
        return TargetPreview(
            fault_id=request.fault_id,
            label=fault.label,
            action=fault.action,
            selector=fault.target.describe(),
            targets=[pod_ref(p) for p in pods],
            accepted=not problems,
            problems=problems,
        )

    async def inject(self, request: FaultRequest) -> Injection:
        """Create the object, or adopt the one this run and step created before."""
        fault = request.fault
        self._check_namespace(fault.target.namespace)
        obj = self._render(request)
        pods = await self._pods(fault.target)
        if problems := self.blast_radius.problems(fault.target, len(pods)):
            raise FaultRejected("blast radius: " + "; ".join(problems))
        if fault.action in ONE_SHOT:  # their evidence is a changed pod: note how they were
            before = [
                {
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                    "restarts": {s["name"]: s.get("restartCount", 0) for s in statuses(p)},
                }
                for p in pods
            ]
            obj["metadata"]["annotations"][TARGETS_BEFORE] = json.dumps(before, sort_keys=True)
        kind, where = obj["kind"], f"{fault.target.namespace}/{request.fault_id}"
        try:
            created = await self.kube.create(obj)
            verb = "created"
        except KubeAlreadyExists:
            created = await self._adopt(request, obj)
            verb = "adopted"
        except KubeRejected as err:
            raise FaultRejected(err.message) from err
        log.info("chaos_object_" + verb, kind=kind, name=where, matched=len(pods))
        return Injection(
            targets=[pod_ref(p) for p in pods],
            in_effect=False,
            evidence=[
                f"{verb} {kind} {where} (uid {created['metadata'].get('uid', '?')}); "
                f"{len(pods)} pod(s) match, mode {fault.target.mode.value}"
            ],
        )

    async def _adopt(self, request: FaultRequest, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        existing = await self.kube.get(
            kind_of(request.fault).plural, meta["namespace"], meta["name"]
        )
        if existing is None:
            raise KubeConflict(f"{meta['name']} existed a moment ago and is gone; retry")
        theirs = existing["metadata"]
        owner = (theirs.get("annotations") or {}).get(ANNOTATION_RUN_ID)
        step = (theirs.get("labels") or {}).get(LABEL_STEP)
        if (
            existing["kind"] != obj["kind"]
            or owner != request.scenario_id
            or step != str(request.step)
        ):
            raise FaultRejected(
                f"{existing['kind']} {meta['namespace']}/{meta['name']} already exists and "
                f"belongs to run {owner!r} step {step!r}, not to this run"
            )
        if theirs.get("deletionTimestamp"):
            raise KubeConflict(f"{meta['name']} is still being deleted; retry")
        return existing

    async def _get(self, request: FaultRequest) -> dict[str, Any] | None:
        fault = request.fault
        return await self.kube.get(kind_of(fault).plural, fault.target.namespace, request.fault_id)

    async def confirm(self, request: FaultRequest) -> Injection:
        """AllInjected plus evidence; for pod-kill and container-kill, changed pods."""
        obj = await self._get(request)
        if obj is None:
            raise NotYet(f"{request.fault_id} does not exist (not injected, or already deleted)")
        state, done = conditions(obj), records(obj)
        # A short fault may have run its whole `duration` before we look: records that were
        # all injected (and not merely paused) are evidence that it took effect.
        ran = bool(done) and all(r.get("injectedCount", 0) > 0 for r in done)
        if state.get("Paused") or not (state.get("AllInjected") or ran):
            why = "; ".join(failures(obj)) or str(state or "no status")
            if state and not state.get("Selected"):
                why = await self._unselected(request) + f" ({why})"
            raise NotYet(f"{obj['kind']} {request.fault_id} not in effect: {why}")
        seen = "AllInjected" if state.get("AllInjected") else "injected, then ended by its duration"
        evidence = [f"{obj['kind']} {request.fault_id}: {seen}", *_record_lines(obj)]
        hit = {str(r.get("id", "")).split("/")[1] for r in done if "/" in str(r.get("id"))}
        pods = await self._pods(request.fault.target)
        action = request.fault.action
        if action in ONE_SHOT:
            changes = self._pod_changes(request, obj, pods)
            if not changes:
                raise NotYet(f"{action}: no target pod was killed or restarted yet")
            evidence += changes
        targets = [pod_ref(p) for p in pods if p["metadata"]["name"] in hit]
        return Injection(targets=targets, evidence=evidence, in_effect=True)

    async def _unselected(self, request: FaultRequest) -> str:
        """Why the controller selected nothing: no pod left, or no container by that name."""
        pods = await self._pods(request.fault.target)
        wanted = list(getattr(request.fault, "container_names", []))
        names = {c["name"] for p in pods for c in p["spec"].get("containers") or []}
        if missing := [c for c in wanted if c not in names]:
            return f"Chaos Mesh selected no target: no container {missing} in the matched pods"
        return f"Chaos Mesh selected no target ({len(pods)} pod(s) match now)"

    @staticmethod
    def _pod_changes(
        request: FaultRequest, obj: dict[str, Any], pods: list[dict[str, Any]]
    ) -> list[str]:
        """Pods killed (uid gone) or containers restarted since the object was created."""
        before = json.loads(obj["metadata"].get("annotations", {}).get(TARGETS_BEFORE, "[]"))
        now = {p["metadata"]["uid"]: p for p in pods}
        if request.fault.action == "pod-kill":
            return [
                f"pod {b['name']} (uid {b['uid']}) was killed; now running: "
                f"{', '.join(sorted(p['metadata']['name'] for p in now.values()))}"
                for b in before
                if b["uid"] not in now
            ]
        wanted = set(getattr(request.fault, "container_names", []))
        changes = []
        for b in before:
            for status in statuses(now.get(b["uid"], {})):
                old = b["restarts"].get(status["name"], 0)
                if status["name"] in wanted and status.get("restartCount", 0) > old:
                    changes.append(
                        f"container {b['name']}/{status['name']} restarted "
                        f"({old} -> {status['restartCount']} restarts)"
                    )
        return changes

    async def recover(self, request: FaultRequest) -> Recovery:
        """Delete the object and wait until it is gone (Chaos Mesh recovers the targets first)."""
        fault = request.fault
        plural, namespace = kind_of(fault).plural, fault.target.namespace
        if not await self.kube.delete(plural, namespace, request.fault_id):
            return Recovery(recovered=True, evidence=[f"{request.fault_id}: nothing to delete"])
        evidence, deadline = [f"deleted {request.fault_id}"], time.monotonic() + self.recover_wait_s
        # The first looks come soon: one target's recovery takes the controller well under
        # `poll_s` (bench/bench_blast_radius.py), and every look past it is time lost.
        pause = min(0.05, self.poll_s)
        while (obj := await self.kube.get(plural, namespace, request.fault_id)) is not None:
            state = conditions(obj)
            if state.get("AllRecovered") and "AllRecovered" not in " ".join(evidence):
                evidence += [f"{obj['kind']} {request.fault_id}: AllRecovered", *_record_lines(obj)]
            _heartbeat({"waiting_for": request.fault_id, "conditions": state})
            if time.monotonic() > deadline:
                raise NotYet(
                    f"{obj['kind']} {namespace}/{request.fault_id} is still being deleted: "
                    f"finalizers {obj['metadata'].get('finalizers')}, conditions {state}"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.poll_s)
        evidence.append(f"{request.fault_id} is gone")
        return Recovery(recovered=True, evidence=evidence)

    async def set_paused(self, request: FaultRequest, paused: bool) -> Injection:
        """Pause (the controller recovers the targets, keeping the object) or resume a fault."""
        fault = request.fault
        self._check_namespace(fault.target.namespace)
        patch = {"metadata": {"annotations": {PAUSE_ANNOTATION: "true" if paused else None}}}
        plural = kind_of(fault).plural
        try:
            obj = await self.kube.merge_patch(
                plural, fault.target.namespace, request.fault_id, patch
            )
        except KubeRejected as err:
            raise FaultRejected(err.message) from err
        if obj is None:
            return Injection(evidence=[f"{request.fault_id}: not there (not injected, or gone)"])
        verb = "paused" if paused else "resumed"
        return Injection(
            evidence=[f"{obj['kind']} {request.fault_id} {verb}"], in_effect=not paused
        )

    async def read_replicas(self, query: ReplicaQuery) -> ReplicaSet:
        """Every pod matching the target (ready, restarts, last exit reason, uid)."""
        self._check_namespace(query.target.namespace)
        pods = await self.kube.list_pods(query.target.namespace, query.target.labels)
        return ReplicaSet(replicas=[pod_ref(p) for p in pods])

    async def sweep(self) -> list[str]:
        """Delete this tool's objects whose expiry passed (the janitor run at worker start)."""
        swept, now = [], datetime.now(UTC)
        for namespace in self.allowed_namespaces:
            for kind in KINDS:
                for obj in await self.kube.list_objects(kind.plural, namespace, MANAGED_SELECTOR):
                    meta = obj["metadata"]
                    expires = (meta.get("annotations") or {}).get(ANNOTATION_EXPIRES_AT)
                    if expires and datetime.fromisoformat(expires) <= now:
                        await self.kube.delete(kind.plural, namespace, meta["name"])
                        swept.append(meta["name"])
        if swept:
            log.warning("expired_chaos_objects_deleted", names=swept)
        return swept
