"""The fault backend interface: one implementation per backend (local, Chaos Mesh).

A backend turns a `FaultRequest` into a real fault and back. Every method is idempotent and
keyed on `request.fault_id`: a retried or repeated call finds the fault it made before.
Errors a retry cannot fix raise `FaultRejected` (non-retryable); anything else is retried.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from temporalio.exceptions import ApplicationError

from models.ledger import FaultRequest, Injection, Recovery, ReplicaQuery, ReplicaSet, TargetPreview


class FaultRejected(ApplicationError):
    """The backend refuses the fault (bad target, forbidden, invalid); retrying cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="FaultRejected", non_retryable=True)


class NotYet(ApplicationError):
    """The fault is not in effect (or not recovered) yet; the caller's retry policy polls."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="NotYet")


class FaultBackend(Protocol):
    """What a fault backend does; the activities in `activities.faults.activities` adapt it."""

    name: str

    async def preview(self, request: FaultRequest) -> TargetPreview:
        """The targets the fault would hit, and whether the backend accepts it (dry run)."""
        ...

    async def inject(self, request: FaultRequest) -> Injection:
        """Start the fault (or adopt the one already started for this fault_id)."""
        ...

    async def confirm(self, request: FaultRequest) -> Injection:
        """Evidence the fault is in effect; raise `NotYet` while it is not."""
        ...

    async def recover(self, request: FaultRequest) -> Recovery:
        """End the fault; a fault that is already gone counts as recovered."""
        ...

    async def read_replicas(self, query: ReplicaQuery) -> ReplicaSet:
        """The worker replicas matching the query's target (all of them, not a selection)."""
        ...

    async def sweep(self) -> list[str]:
        """End every fault of this tool whose expiry passed; the fault ids swept."""
        ...


@runtime_checkable
class Pausable(Protocol):
    """A backend that can pause a running fault and resume it (Chaos Mesh can; local cannot)."""

    async def set_paused(self, request: FaultRequest, paused: bool) -> Injection:
        """Pause (`paused`) or resume the fault; a fault that is gone is left alone."""
        ...
