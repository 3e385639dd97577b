"""Heartbeats for activities that wait on one call: the backend's inject and recover.

A heartbeat is how Temporal notices a worker died mid-call (within the heartbeat timeout,
not the start-to-close timeout) and how a cancellation reaches the activity. A cancelled call
is let finish before the cancellation is raised, so a recovery never overtakes a half-done
injection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")
X = TypeVar("X")

#: Seconds between heartbeats (the SDK throttles them further to its own interval).
EVERY_S = 2.0


async def while_heartbeating(call: Awaitable[T], what: str, every_s: float = EVERY_S) -> T:
    """Await `call`, heartbeating `what` meanwhile; on cancellation, finish `call`, then raise."""
    if not activity.in_activity():
        return await call
    task = asyncio.ensure_future(call)

    async def beat() -> None:
        while True:
            activity.heartbeat(what)
            await asyncio.sleep(every_s)

    beater = asyncio.create_task(beat())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Let the backend finish what it began (its own timeouts bound it), so the recovery
        # that follows a cancel finds the whole fault, then report the cancellation.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await task
        raise
    finally:
        beater.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beater


def beating(
    call: Callable[[X], Awaitable[T]], what: str, total: int
) -> Callable[[X], Awaitable[T]]:
    """`call`, heartbeating `{what, done, of}` as each item of a fan-out finishes.

    A fan-out over thousands of goal runs takes minutes; without a beat per item the probe's
    heartbeat timeout would expire during it (and a cancellation would not be heard).
    """
    done = 0

    async def one(item: X) -> T:
        nonlocal done
        try:
            return await call(item)
        finally:
            done += 1
            if activity.in_activity():
                activity.heartbeat({"fan_out": what, "done": done, "of": total})

    return one
