"""Driving a chaos run while its worker is SIGKILLed in every phase of every fault.

`kill_in_every_phase` watches the run's fault children (their `ChaosPhase`, read from the
server, so it needs no worker) and kills the chaos worker process the moment a child shows a
phase that child has not been killed in yet, then starts a new worker. What it records per kill
is the phase the child was in once the worker was dead (a dead worker moves nothing on).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from tests.support.kill_stack import ChaosWorkerProcess, phase_of

#: The fault workflow's phases in order (workflows/fault.py).
PHASES = ("steady-state", "inject", "confirm", "hold", "recover", "confirm-recovery", "verify")


@dataclass
class Kill:
    child: str
    phase: str
    at: float  # epoch seconds of the SIGKILL


@dataclass
class KillLog:
    kills: list[Kill] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)

    def phases_of(self, child: str) -> set[str]:
        return {k.phase for k in self.kills if k.child == child}


async def children_of(client: Client, parent: WorkflowHandle[Any, Any]) -> list[str]:
    """Workflow ids of the parent's running children."""
    description = await parent.describe()
    return [c.workflow_id for c in description.raw_description.pending_children]


async def kill_in_every_phase(
    client: Client, parent: WorkflowHandle[Any, Any], worker: ChaosWorkerProcess
) -> KillLog:
    """Kill the worker once in each phase of each child until the parent closes.

    Polls fast (one parent read, the children's read at once): some phases last well under a
    second.
    """
    log = KillLog()
    while True:
        description = await parent.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return log
        children = [c.workflow_id for c in description.raw_description.pending_children]
        handles = {c: client.get_workflow_handle(c) for c in children}
        now = await asyncio.gather(*map(phase_of, handles.values()))
        phases = dict(zip(handles, now, strict=True))
        due = [c for c, p in phases.items() if p in PHASES and p not in log.phases_of(c)]
        if not due:
            await asyncio.sleep(0.02)
            continue
        worker.kill()
        at = time.time()
        after = await asyncio.gather(*map(phase_of, handles.values()))
        for child, phase in zip(
            handles, after, strict=True
        ):  # where the dead worker left each child
            if phase in PHASES and phase not in log.phases_of(child):
                log.kills.append(Kill(child, phase, at))
        started = time.monotonic()
        await asyncio.to_thread(worker.start)
        log.restart_s.append(time.monotonic() - started)


async def wait_for_phase(
    client: Client, parent: WorkflowHandle[Any, Any], phase: str, timeout_s: float = 120
) -> tuple[str, list[str]]:
    """Wait until a child of ``parent`` is in ``phase`` or later: that phase, and the children."""
    order = PHASES.index(phase)
    deadline = time.monotonic() + timeout_s
    seen_by_child: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        children = await children_of(client, parent)
        for child in children:
            seen = seen_by_child[child] = await phase_of(client.get_workflow_handle(child))
            if seen in PHASES and PHASES.index(seen) >= order:
                return seen, children
        if children and all(seen_by_child.get(c) == "done" for c in children):
            raise EndedEarly(f"every child of {parent.id} ended before {phase}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"no child of {parent.id} reached {phase}: {seen_by_child}")


class EndedEarly(AssertionError):
    """Every fault of the run ended before the phase (e.g. the system was not steady yet)."""


async def all_closed(client: Client, workflow_ids: list[str]) -> bool:
    """Whether every one of these workflows has closed."""
    for workflow_id in workflow_ids:
        description = await client.get_workflow_handle(workflow_id).describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            return False
    return True
