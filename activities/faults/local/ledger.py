"""The local backend's own state: one file per fault, ``<state>/faults/<fault_id>.json``.

An entry says what was injected where until when, and holds everything needed to undo it
(rule file, hold files, helper pids), so a recovery needs nothing but the entry: the janitor
(`LocalBackend.sweep`) can end a fault whose workflow is gone. Written before the fault is
applied (phase ``injecting``) and again once applied, so a retried injection adopts what the
previous attempt did instead of doing it twice. A recovered entry stays as a tombstone.
Files only: this module never touches a process, a cgroup or the proxy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from faultproxy.control import write_atomic

Phase = Literal["injecting", "injected", "recovered"]


class TargetSnapshot(BaseModel):
    """A selected replica as it was when the fault was injected."""

    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str = "bytebot"
    state_dir: str | None = Field(default=None, description="Its supervisor's (hold files).")
    pid: int | None = None
    pid_start_ticks: int | None = Field(
        default=None, description="The pid's start time: a recycled pid is another process."
    )
    restarts: int = 0
    memory_cgroup: str | None = None
    cpu_cgroup: str | None = None
    memory_bytes: int = Field(default=0, description="Memory cgroup usage before the fault.")
    oom_kills: int = Field(default=0, description="Memory cgroup oom_kill count before it.")


class FaultEntry(BaseModel):
    """One fault of this backend, from injection to its tombstone."""

    model_config = ConfigDict(extra="ignore")

    fault_id: str
    scenario_id: str = Field(
        default="",
        validation_alias=AliasChoices("scenario_id", "run_id"),
        description="Workflow id of the scenario run that owns it.",
    )
    action: str
    expires_at: float = Field(description="Epoch seconds: the fault ends by then, whatever.")
    created_at: float = Field(default_factory=time.time)
    phase: Phase = "injecting"
    targets: list[TargetSnapshot] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, description="What the injection did.")
    rule_file: str | None = Field(default=None, description="Network faults: the proxy rule.")
    traffic_marks: dict[str, float] = Field(
        default_factory=dict,
        description="Network faults: each route's counter of this kind of effect at injection.",
    )
    hold_files: list[str] = Field(default_factory=list, description="pod-failure: hold files.")
    helper_pids: list[int] = Field(
        default_factory=list, description="stress-ng / OOM helper process groups."
    )
    recovered_at: float | None = None
    recovery_evidence: list[str] = Field(default_factory=list)

    def expired(self, now: float | None = None) -> bool:
        """Whether the fault's expiry has passed."""
        return (time.time() if now is None else now) >= self.expires_at

    def target(self, name: str) -> TargetSnapshot | None:
        """The snapshot of the replica called ``name``."""
        return next((t for t in self.targets if t.name == name), None)


class Ledger:
    """The fault entries under a state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "faults"

    def path(self, fault_id: str) -> Path:
        """Where the entry of ``fault_id`` lives."""
        if "/" in fault_id or fault_id.startswith("."):
            raise ValueError(f"fault id {fault_id!r} cannot name a file")
        return self.dir / f"{fault_id}.json"

    def load(self, fault_id: str) -> FaultEntry | None:
        """The entry, or None if this backend never saw the fault."""
        try:
            return FaultEntry.model_validate_json(self.path(fault_id).read_text())
        except FileNotFoundError:
            return None

    def save(self, entry: FaultEntry) -> FaultEntry:
        """Write the entry atomically; returns it."""
        write_atomic(self.path(entry.fault_id), entry.model_dump_json(indent=2))
        return entry

    def all(self) -> list[FaultEntry]:
        """Every readable entry (unreadable files are skipped)."""
        entries = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                entries.append(FaultEntry.model_validate_json(path.read_text()))
            except (FileNotFoundError, ValueError):
                continue
        return entries
