"""The local Deployment's settings: what the supervisor runs, and how (a pod template, in short)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_COMMAND = "{python} -m standin.replica"
DEFAULT_READY_URL = "http://127.0.0.1:{http_port}/health/ready"


class DeploymentSettings(BaseModel):
    """What the supervisor runs, and how (a Deployment's pod template, in short)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path
    replicas: int = Field(default=3, ge=1, le=64)
    worker_command: str = Field(
        default=DEFAULT_COMMAND,
        description="argv (shell-quoted, run without a shell) with {replica}, {temporal}, "
        "{kafka}, {http_port}, {metrics_port}, {namespace}, {task_queue}, {python}.",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Added to every replica's.")
    replica_env: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per-replica variables: one value for all, or one per replica (e.g. "
        "ORCHESTRATOR_URL through each replica's own fault proxy route).",
    )
    worker_env: bool = Field(
        default=True,
        description="Give replicas the worker's environment (TEMPORAL_ADDRESS, KAFKA_BROKERS, "
        "HTTP_PORT, ...); off for infrastructure processes, which must not read it.",
    )
    temporal_addresses: list[str] = Field(min_length=1, description="One, or one per replica.")
    kafka_bootstraps: list[str] = Field(min_length=1, description="One, or one per replica.")
    namespace: str = "bytebot"
    task_queue: str = "bytebot-goal-runs"
    ready_url: str | None = Field(default=DEFAULT_READY_URL, description="HTTP readiness probe.")
    ready_exec: str | None = Field(default=None, description="Exec readiness probe (argv).")
    ready_tcp: str | None = Field(
        default=None, description="TCP readiness probe: host:port accepts a connection."
    )
    name_prefix: str = Field(
        default="replica",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Replicas are <prefix>-0 .. <prefix>-N-1 (a StatefulSet's pod names).",
    )
    probe_period_s: float = Field(default=0.5, gt=0)
    probe_timeout_s: float = Field(default=1.0, gt=0)
    failure_threshold: int = Field(default=3, ge=1)
    memory_limit_mb: int = Field(default=512, ge=0, description="0: no memory limit.")
    cpu_limit_cores: float | None = Field(default=None, gt=0)
    use_cgroups: bool = True
    cpu_cgroup: bool = Field(
        default=True,
        description="Also a cpu cgroup. The machine weighs a cgroup v1 group as one task, so "
        "a busy multi-threaded server in one (the dev server, the broker) is starved on a "
        "loaded machine; those get only a memory cgroup (no CPU quota to share anyway).",
    )
    instance: str = Field(default_factory=lambda: str(os.getpid()))
    restart: bool = Field(default=True, description="False: the no-restart defect.")
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    backoff_reset_s: float = Field(default=10.0, ge=0)
    termination_grace_s: float = Field(default=6.0, gt=0, description="SIGTERM to SIGKILL.")
    faulty: list[str] = Field(default_factory=list, description="Published only.")

    @model_validator(mode="after")
    def _one_or_n_addresses(self) -> DeploymentSettings:
        for flag, values in (
            ("temporal_addresses", self.temporal_addresses),
            ("kafka_bootstraps", self.kafka_bootstraps),
            *((f"replica_env.{k}", v) for k, v in self.replica_env.items()),
        ):
            if len(values) not in (1, self.replicas):
                raise ValueError(f"{flag}: give 1 or {self.replicas} values, not {len(values)}")
        if sum(bool(p) for p in (self.ready_url, self.ready_exec, self.ready_tcp)) > 1:
            raise ValueError("give one readiness probe (HTTP, exec or TCP), not several")
        return self

    def pick(self, values: list[str], index: int) -> str:
        """The value for replica ``index`` from a one-or-N list."""
        return values[index] if len(values) > 1 else values[0]

    def probe_text(self) -> str:
        """The readiness probe in words (published in state.json)."""
        if self.ready_url:
            return f"http GET {self.ready_url}"
        if self.ready_tcp:
            return f"tcp {self.ready_tcp}"
        return f"exec {self.ready_exec}" if self.ready_exec else "running"
