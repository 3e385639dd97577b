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
    """Kill the worker once in each phase of each child until the parent closes."""
    log = KillLog()
    seen: set[str] = set()
    while (await parent.describe()).status == WorkflowExecutionStatus.RUNNING:
        children = await children_of(client, parent)
        seen.update(children)
        handles = {c: client.get_workflow_handle(c) for c in children}
        phases = {c: await phase_of(h) for c, h in handles.items()}
        due = [c for c, p in phases.items() if p in PHASES and p not in log.phases_of(c)]
        if not due:
            await asyncio.sleep(0.05)
            continue
        worker.kill()
        at = time.time()
        for child, handle in handles.items():
            phase = await phase_of(handle)  # where the dead worker left it
            if phase in PHASES and phase not in log.phases_of(child):
                log.kills.append(Kill(child, phase, at))
        started = time.monotonic()
        await asyncio.to_thread(worker.start)
        log.restart_s.append(time.monotonic() - started)
    return log
