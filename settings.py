"""Deployment settings of the chaos worker and the CLI, from the environment and flags.

Only `worker.py` and `starter.py` read them; workflows get what they need in their input.
Temporal's own variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
TEMPORAL_TLS_*) are honoured, so the `temporal` CLI and this tool agree on where to go.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Where the chaos worker runs, which backend injects faults, and what it may touch."""

    model_config = SettingsConfigDict(env_prefix="CHAOS_", extra="ignore", populate_by_name=True)

    temporal_address: str = Field(
        "localhost:7233",
        validation_alias=AliasChoices("TEMPORAL_ADDRESS", "CHAOS_TEMPORAL_ADDRESS"),
        description="Temporal frontend host:port.",
    )
    temporal_namespace: str = Field(
        "default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "CHAOS_TEMPORAL_NAMESPACE"),
        description="Temporal namespace of the chaos runs.",
    )
    temporal_api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("TEMPORAL_API_KEY", "CHAOS_TEMPORAL_API_KEY"),
        description="API key (Temporal Cloud); implies TLS.",
    )
    temporal_tls_cert: Path | None = Field(
        None,
        validation_alias=AliasChoices("TEMPORAL_TLS_CLIENT_CERT_PATH", "CHAOS_TLS_CERT"),
        description="Client certificate (mTLS).",
    )
    temporal_tls_key: Path | None = Field(
        None,
        validation_alias=AliasChoices("TEMPORAL_TLS_CLIENT_KEY_PATH", "CHAOS_TLS_KEY"),
        description="Client key (mTLS).",
    )
    temporal_tls_ca: Path | None = Field(
        None,
        validation_alias=AliasChoices("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "CHAOS_TLS_CA"),
        description="CA bundle of the server.",
    )
    task_queue: str = Field("bytebot-chaos", description="Task queue of the chaos worker.")
    backend: Literal["local", "chaos-mesh"] = Field("local", description="Fault backend.")
    allowed_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["bytebot"],
        description="Namespaces faults may target: 'a,b' or a JSON list.",
    )
    max_targets: int = Field(10, ge=1, description="Blast radius: at most this many pods.")
    max_target_pct: int = Field(50, ge=1, le=100, description="...and this share of them.")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Direct Kafka bootstrap.")
    local_state_dir: Path = Field(
        Path("runs/local"), description="Local backend: where the stand-in and faults keep state."
    )
    kubeconfig: Path | None = Field(None, description="Kubeconfig; default: in-cluster config.")
    log_format: Literal["console", "json"] = Field("console", description="Log output.")
    health_port: int | None = Field(
        None, description="Serve /livez and /readyz on this port (for Kubernetes probes)."
    )
    metrics_port: int | None = Field(
        None, description="Serve Prometheus /metrics on this port (the SDK's and the tool's)."
    )
    report_archive: Path = Field(
        Path("runs/archive"), description="Where every finished report is kept (the trend)."
    )

    @field_validator("allowed_namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def tls_enabled(self) -> bool:
        """True when any TLS material or an API key is configured."""
        return bool(self.temporal_api_key or self.temporal_tls_cert or self.temporal_tls_ca)
