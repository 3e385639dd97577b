"""Pause and resume a running Chaos Mesh fault: the activities only that backend has.

Owns the `pause_fault` and `resume_fault` activities (names in `workflows.names`); the
worker registers them only with the Chaos Mesh backend. The patch itself is
`ChaosMeshBackend.set_paused`: this module never talks to the Kubernetes API on its own and
never deletes a fault (recovery stays with the backend's `recover`).
"""

from __future__ import annotations

from temporalio import activity

from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from models.ledger import FaultRequest, Injection
from workflows import names


class ChaosMeshActivities:
    """Activities only the Chaos Mesh backend has: pause and resume a running fault."""

    def __init__(self, backend: ChaosMeshBackend) -> None:
        self.backend = backend

    @activity.defn(name=names.PAUSE_FAULT)
    async def pause_fault(self, request: FaultRequest) -> Injection:
        """Annotate the object `experiment.chaos-mesh.org/pause: "true"`."""
        return await self.backend.set_paused(request, True)

    @activity.defn(name=names.RESUME_FAULT)
    async def resume_fault(self, request: FaultRequest) -> Injection:
        """Remove the pause annotation: Chaos Mesh injects the fault again."""
        return await self.backend.set_paused(request, False)

    def all(self) -> list[object]:
        """Every activity of this class, for the worker."""
        return [self.pause_fault, self.resume_fault]
