"""Fault requests for the local backend's tests, waiting for them to take effect, their helpers.

Builds `FaultRequest`s as a scenario run would, polls `confirm` as the workflow's retry policy
does, and reads which stress helper processes the backend's ledger recorded for a fault. It
never injects or recovers a fault itself: the tests do, through the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from pydantic import TypeAdapter

from activities.faults.backend import NotYet
from activities.faults.local.backend import LocalBackend
from models.faults import FaultSpec
from models.ledger import FaultRequest, Injection

SPEC: TypeAdapter[Any] = TypeAdapter(FaultSpec)


def request(
    fault: dict[str, Any], seconds: float = 30, fault_id: str | None = None
) -> FaultRequest:
    """A request for `fault` lasting (and expiring after) `seconds`."""
    return FaultRequest(
        fault_id=fault_id or f"t-{fault['action']}-{uuid4().hex[:8]}",
        scenario_id="test-run",
        step=0,
        fault=SPEC.validate_python({"duration": f"{seconds:g}s", **fault}),
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
    )


async def confirmed(
    backend: LocalBackend,
    req: FaultRequest,
    timeout_s: float = 20,
    traffic: Callable[[], Awaitable[object]] | None = None,
) -> Injection:
    """Poll confirm until the fault is in effect (as the workflow's retry policy does).

    A network fault is in effect only once it met the target's traffic: `traffic` makes some
    (these tests have no load generator) between two polls.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await backend.confirm(req)
        except NotYet:
            if time.monotonic() > deadline:
                raise
            if traffic is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(traffic(), timeout=3)
            await asyncio.sleep(0.2)


def stress_pids(backend: LocalBackend, req: FaultRequest) -> list[int]:
    """The stress helpers' process ids the backend recorded for the fault."""
    entry = backend.ledger.load(req.fault_id)
    assert entry is not None
    return entry.helper_pids
