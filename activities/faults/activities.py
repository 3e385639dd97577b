"""The fault activities: thin adapters from activity calls to the worker's fault backend.

Registered under the names in `workflows.names`, whatever the backend, so workflows never
know which backend runs their faults.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog
from temporalio import activity

from activities.faults.backend import FaultBackend, FaultRejected, NotYet, Pausable
from activities.heartbeats import while_heartbeating
from models.ledger import FaultRequest, Injection, Recovery, TargetPreview
from workflows import names

log = structlog.get_logger(__name__)
#: Pauses between the quick looks of one confirm_fault attempt (about 1 s in all; see
#: bench/bench_overhead.py: inject -> in effect).
CONFIRM_POLL = (0.05, 0.1, 0.15, 0.2, 0.25, 0.25)
#: Seconds kept free before confirm_fault's deadline for its last look and its answer.
CONFIRM_LOOK_ROOM_S = 3.0


def _bound(request: FaultRequest) -> structlog.typing.FilteringBoundLogger:
    info = activity.info()
    return log.bind(  # type: ignore[no-any-return]
        workflow_id=info.workflow_id,
        activity=info.activity_type,
        attempt=info.attempt,
        fault_id=request.fault_id,
        action=request.fault.action,
    )


def check_namespace(request: FaultRequest) -> None:
    """Refuse a target outside the namespaces this deployment allows."""
    allowed = request.allowed_namespaces
    if allowed and request.fault.target.namespace not in allowed:
        raise FaultRejected(
            f"target namespace '{request.fault.target.namespace}' is not allowed "
            f"(allowed: {', '.join(allowed)})"
        )


def _now() -> float:
    return time.time()


def _attempt_deadline() -> float | None:
    """When the server gives up on confirm_fault, minus room for one more look; None if never."""
    if not activity.in_activity():
        return None
    info = activity.info()
    if info.schedule_to_close_timeout is None:
        return None
    end = info.scheduled_time + info.schedule_to_close_timeout
    return end.timestamp() - CONFIRM_LOOK_ROOM_S


class FaultActivities:
    """Binds a backend to the fault activity names.

    Args:
        backend: The worker's fault backend.
        confirm_poll: Pauses between the quick looks of one confirm_fault attempt.
    """

    def __init__(
        self, backend: FaultBackend, *, confirm_poll: Sequence[float] = CONFIRM_POLL
    ) -> None:
        self.backend = backend
        self.confirm_poll = tuple(confirm_poll)

    @activity.defn(name=names.PREVIEW_FAULT)
    async def preview_fault(self, request: FaultRequest) -> TargetPreview:
        """Resolve the targets a fault would hit; inject nothing."""
        check_namespace(request)
        preview = await self.backend.preview(request)
        _bound(request).info("fault_previewed", targets=len(preview.targets))
        return preview

    @activity.defn(name=names.INJECT_FAULT)
    async def inject_fault(self, request: FaultRequest) -> Injection:
        """Inject the fault (idempotent on fault_id)."""
        check_namespace(request)
        injection = await while_heartbeating(self.backend.inject(request), "injecting")
        _bound(request).info("fault_injected", targets=[t.name for t in injection.targets])
        return injection

    @activity.defn(name=names.CONFIRM_FAULT)
    async def confirm_fault(self, request: FaultRequest) -> Injection:
        """Evidence that the fault is in effect; retried by the workflow until it is.

        A fault usually takes effect within a few hundred milliseconds of its injection (the
        proxy re-reads its rules every ~150 ms; the controller reconciles at once), while the
        workflow retries every second: so the activity first looks again itself, quickly
        (`CONFIRM_POLL`), before a NotYet goes back to the workflow's retry policy.
        """
        return await while_heartbeating(self._confirm_soon(request), "confirming")

    async def _confirm_soon(self, request: FaultRequest) -> Injection:
        waits = iter(self.confirm_poll)
        deadline = _attempt_deadline()
        while True:
            try:
                return await self.backend.confirm(request)
            except NotYet:
                wait = next(waits, None)
                # An attempt still looking at its schedule-to-close deadline is timed out by
                # the server, and its NotYet (why the fault is not in effect) is lost.
                if wait is None or (deadline is not None and _now() + wait > deadline):
                    raise
                await asyncio.sleep(wait)

    @activity.defn(name=names.RECOVER_FAULT)
    async def recover_fault(self, request: FaultRequest) -> Recovery:
        """Recover the fault (idempotent: a fault already gone is recovered)."""
        recovery = await while_heartbeating(self.backend.recover(request), "recovering")
        _bound(request).info("fault_recovered", recovered=recovery.recovered)
        if not recovery.recovered:  # e.g. the proxy still applies the rule: poll by retrying
            raise NotYet("not recovered yet: " + "; ".join(recovery.evidence))
        return recovery

    @activity.defn(name=names.PAUSE_FAULT)
    async def pause_fault(self, request: FaultRequest) -> Injection:
        """Pause a running fault (the `pause` signal); see `_set_paused`."""
        return await self._set_paused(request, True)

    @activity.defn(name=names.RESUME_FAULT)
    async def resume_fault(self, request: FaultRequest) -> Injection:
        """Resume a paused fault (the `resume` signal)."""
        return await self._set_paused(request, False)

    async def _set_paused(self, request: FaultRequest, paused: bool) -> Injection:
        # Both backends register these names; one that cannot pause says so and holds on.
        if not isinstance(self.backend, Pausable):
            return Injection(
                in_effect=True,
                evidence=[
                    f"not supported by the {self.backend.name} backend: "
                    f"{request.fault_id} keeps holding until its duration ends"
                ],
            )
        result = await self.backend.set_paused(request, paused)
        _bound(request).info("fault_paused" if paused else "fault_resumed")
        return result

    def all(self) -> list[object]:
        """Every activity of this adapter, for the worker."""
        return [
            self.preview_fault,
            self.inject_fault,
            self.confirm_fault,
            self.recover_fault,
            self.pause_fault,
            self.resume_fault,
        ]
