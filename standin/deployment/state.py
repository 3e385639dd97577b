"""The supervisor's state directory: the local Deployment's "Kubernetes API". Files only.

    <state-dir>/state.json          the replicas as the supervisor sees them (atomically replaced)
    <state-dir>/hold/<replica>      {"until": <epoch s>}: keep that replica down until then
    <state-dir>/logs/<replica>.log  a replica's stdout and stderr, across restarts

Readiness is the supervisor's own verdict from its probes; a replica writes nothing here.

Times are epoch seconds (UTC, float). A hold file is honoured only while ``until`` lies in the
future: the supervisor never waits on a fault's creator to end the fault. Write hold files
atomically (write a temporary file, then rename); an unreadable one counts as a hold only in its
first `UNREADABLE_HOLD_GRACE_S`, so a torn write cannot hold a replica down for good.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

UNREADABLE_HOLD_GRACE_S = 2.0


class ReplicaPhase(StrEnum):
    """Where a replica is in its life, in pod-like words."""

    STARTING = "Starting"
    """The process runs; its readiness probe has not passed (yet, or any more)."""
    READY = "Ready"
    """The process runs and its readiness probe passes."""
    HELD = "Held"
    """A hold file keeps it down (pod-failure)."""
    RESTARTING = "Restarting"
    """It exited and is restarted after a short backoff."""
    DEAD = "Dead"
    """It exited and will not be restarted (the no-restart defect, or shutdown)."""


class CgroupInfo(BaseModel):
    """A replica's cgroups (v1); move a stressor's pid into ``<path>/cgroup.procs`` to share it."""

    model_config = ConfigDict(extra="forbid")

    memory: str | None = Field(default=None, description="Memory cgroup directory.")
    cpu: str | None = Field(default=None, description="CPU cgroup directory.")
    memory_limit_bytes: int | None = None
    cpu_limit_cores: float | None = None
    oom_kills: int = Field(
        default=0, description="OOM kills in the memory cgroup since it was created."
    )


class ReplicaStatus(BaseModel):
    """One replica, as a pod's status would describe it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    index: int
    phase: ReplicaPhase
    pid: int | None = Field(default=None, description="The live process; None while it is down.")
    ready: bool = Field(default=False, description="The process lives and its probe passes.")
    pid_start_ticks: int | None = Field(
        default=None,
        description="The pid's start time (/proc stat field 22): pid + this = one process.",
    )
    identity_hint: str | None = Field(
        default=None,
        description="The SDK's default worker identity for this pid: <pid>@<hostname>.",
    )
    http_port: int = Field(description="The replica's HTTP_PORT ({http_port}).")
    metrics_port: int = Field(description="The replica's METRICS_PORT ({metrics_port}).")
    command: list[str] = Field(default_factory=list, description="The argv it was started with.")
    started_at: float | None = Field(
        default=None, description="When the current process was started."
    )
    ready_at: float | None = Field(default=None, description="When it was first seen ready.")
    ready_since: float | None = Field(
        default=None, description="Since when it is ready without interruption; None if not."
    )
    next_start_at: float | None = Field(
        default=None, description="While Restarting: when the back-off ends."
    )
    consecutive_crashes: int = Field(default=0, description="Drives the restart back-off.")
    restarts: int = Field(
        default=0, description="Starts after the first one (a pod's restartCount)."
    )
    last_exit_code: int | None = Field(
        default=None, description="128+signal when killed (137: SIGKILL)."
    )
    last_exit_reason: str | None = Field(
        default=None, description="OOMKilled, Killed (other SIGKILL), Error or Completed."
    )
    last_exit_at: float | None = None
    held_until: float | None = Field(
        default=None, description="The hold file's until, while it holds."
    )
    temporal_address: str
    kafka_bootstrap: str
    cgroup: CgroupInfo | None = Field(
        default=None, description="None when cgroups are unavailable."
    )
    log_file: str


class SupervisorState(BaseModel):
    """The whole of ``state.json``."""

    model_config = ConfigDict(extra="forbid")

    instance: str
    supervisor_pid: int
    updated_at: float
    namespace: str
    task_queue: str
    faulty: list[str] = Field(default_factory=list, description="Defects asked of the stand-in.")
    termination_grace_s: float = Field(description="SIGTERM to SIGKILL (the pod's grace).")
    readiness_probe: str = Field(description="http GET <url>, exec <argv>, or running.")
    cgroups: bool = Field(description="Whether replicas run in cgroups with limits.")
    shutting_down: bool = False
    replicas: list[ReplicaStatus] = Field(default_factory=list)


class StateDir:
    """Paths in a state directory, and the file operations on them."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.state_file = self.root / "state.json"
        self.hold_dir = self.root / "hold"
        self.log_dir = self.root / "logs"

    def create(self) -> StateDir:
        """Create the directory and its subdirectories."""
        for d in (self.root, self.hold_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def log_file(self, replica: str) -> Path:
        """Where a replica's output goes."""
        return self.log_dir / f"{replica}.log"

    def hold_file(self, replica: str) -> Path:
        """Where a hold-down for a replica is written (by the chaos tool)."""
        return self.hold_dir / replica

    def held_until(self, replica: str, now: float | None = None) -> float | None:
        """The ``until`` of a hold that is in force now, else None (expired, absent, unreadable).

        An unreadable file holds for its first `UNREADABLE_HOLD_GRACE_S` (a write in progress)
        and then not at all; its ``until`` is then reported as that grace's end.
        """
        now = time.time() if now is None else now
        path = self.hold_file(replica)
        try:
            text = path.read_text()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            until = float(json.loads(text)["until"])
        except (ValueError, KeyError, TypeError):
            grace_end = mtime + UNREADABLE_HOLD_GRACE_S
            return grace_end if now < grace_end else None
        return until if until > now else None

    def write_state(self, state: SupervisorState) -> None:
        """Atomically replace ``state.json``."""
        write_atomic(self.state_file, state.model_dump_json(indent=2))

    def read_state(self) -> SupervisorState | None:
        """The last state written, or None before the first."""
        try:
            return SupervisorState.model_validate_json(self.state_file.read_text())
        except FileNotFoundError:
            return None


def write_hold(state_dir: Path, replica: str, until: float) -> Path:
    """Write a hold-down file atomically (what the chaos tool does for pod-failure)."""
    path = StateDir(state_dir).hold_file(replica)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"until": until}))
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
