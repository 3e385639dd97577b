"""What the local fault families share: their environment, their interface, and polling.

A family (`pods`, `network`, `stress`) implements the apply / check / undo trio for a few
actions on top of a `LocalEnv`. ``apply`` records in the ledger entry everything ``undo`` needs,
so ``undo`` works from the entry alone (the janitor has no request). Nothing here does I/O
beyond reading the supervisor's state through `LocalEnv.replicas`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from activities.faults.local.ledger import FaultEntry
from activities.faults.local.replicas import ReplicaView, SupervisorView, read_targets
from models.faults import FaultBase


def _no_beat(detail: str) -> None:
    """Heartbeat stand-in outside an activity."""


@dataclass(frozen=True)
class LocalEnv:
    """Where things are, and how a family reports progress and saves its entry."""

    state_dir: Path
    sut_state_dir: Path
    proxy_control_dir: Path
    save: Callable[[FaultEntry], FaultEntry]
    beat: Callable[[str], None] = field(default=_no_beat)
    targets_dir: Path | None = None

    @property
    def log_dir(self) -> Path:
        """Where helper processes write their output."""
        return self.state_dir / "logs"

    def replicas(self) -> SupervisorView:
        """Every local pod's current state: the stand-in's replicas and the supervised
        infrastructure in ``targets_dir`` (raises `StandinUnavailable`)."""
        return read_targets(self.sut_state_dir, self.targets_dir)

    def replica(self, name: str) -> ReplicaView | None:
        """One replica's current state."""
        return self.replicas().replica(name)


class Family(Protocol):
    """One family of faults, as the local backend drives it."""

    actions: tuple[str, ...]

    def problems(self, spec: FaultBase, targets: list[ReplicaView]) -> list[str]:
        """Why this fault cannot be injected here (empty: it can)."""
        ...

    async def apply(self, spec: FaultBase, entry: FaultEntry) -> None:
        """Inject the fault into ``entry.targets``; record what was done in ``entry``."""
        ...

    async def check(self, spec: FaultBase, entry: FaultEntry) -> tuple[bool, list[str]]:
        """Whether the fault is in effect, and the evidence either way."""
        ...

    async def undo(self, entry: FaultEntry) -> tuple[bool, list[str]]:
        """End the fault from its entry alone: whether nothing of it is left, and the evidence."""
        ...


async def poll_until(
    check: Callable[[], bool],
    timeout_s: float,
    beat: Callable[[str], None],
    what: str,
    interval_s: float = 0.1,
) -> bool:
    """Poll ``check`` until it holds or ``timeout_s`` passes; heartbeats about once a second."""
    deadline = time.monotonic() + timeout_s
    next_beat = 0.0
    while True:
        if check():
            return True
        now = time.monotonic()
        if now >= deadline:
            return False
        if now >= next_beat:
            beat(f"waiting: {what}")
            next_beat = now + 1.0
        await asyncio.sleep(interval_s)


def iso(epoch_s: float) -> str:
    """An epoch time as a short UTC ISO string, for evidence."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mib(size_bytes: float) -> str:
    """Bytes as MiB, for evidence."""
    return f"{size_bytes / 1048576:.0f}MiB"
