"""Connected Temporal clients for the system under test, one per endpoint, cached.

Owns turning a scenario's `TemporalTarget` plus the worker's defaults into a `Client` with the
pydantic data converter: address, namespace, TLS from files, API key from an environment
variable. It never reads the worker's settings itself (the composition root passes them in)
and never logs a secret.

Rules: a target field left unset takes the worker's default. The worker's TLS and API key
apply only while the target uses the worker's own address; another cluster gets exactly the
TLS and API key its target names. A client is cached per endpoint (address, namespace, TLS
files, API key), so a rotated key gets a fresh connection.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import TLSConfig

from models.scenario import TemporalTarget, TlsFiles

log = structlog.get_logger(__name__)


class TargetMisconfigured(ApplicationError):
    """The target's connection settings cannot work (missing file or variable): no retry."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="TargetMisconfigured", non_retryable=True)


@dataclass(frozen=True)
class TemporalDefaults:
    """The chaos worker's own Temporal endpoint, used where a target leaves a field unset."""

    address: str
    namespace: str = "default"
    tls: TlsFiles | None = None
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint: what a client connects to (the API key is never shown)."""

    address: str
    namespace: str
    tls: TlsFiles | None = None
    api_key: str | None = field(default=None, repr=False)


def resolve_endpoint(
    target: TemporalTarget, defaults: TemporalDefaults, environ: Mapping[str, str] = os.environ
) -> Endpoint:
    """The endpoint a target means, with the worker's defaults filled in."""
    address = target.address or defaults.address
    own_cluster = address == defaults.address
    tls = target.tls or (defaults.tls if own_cluster else None)
    api_key = defaults.api_key if own_cluster else None
    if target.api_key_env:
        api_key = environ.get(target.api_key_env)
        if not api_key:
            raise TargetMisconfigured(
                f"environment variable {target.api_key_env} (the target's API key) is not set "
                "on the chaos worker"
            )
    return Endpoint(
        address=address, namespace=target.namespace or defaults.namespace, tls=tls, api_key=api_key
    )


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TargetMisconfigured(f"cannot read the {what} {path}: {err.strerror}") from err


def tls_config(files: TlsFiles) -> TLSConfig:
    """A TLS configuration from PEM files; a missing file is a configuration error."""
    return TLSConfig(
        server_root_ca_cert=_read(files.server_ca, "server CA"),
        client_cert=_read(files.client_cert, "client certificate"),
        client_private_key=_read(files.client_key, "client key"),
        domain=files.server_name,
    )


Connect = Callable[..., Awaitable[Client]]


class TemporalClients:
    """A cache of connected clients, one per endpoint.

    Args:
        defaults: The worker's own endpoint.
        own: The worker's own client, reused for its own endpoint instead of a second
            connection (it must use the pydantic data converter).
        connect: How to connect; `Client.connect` unless a test passes another.
    """

    def __init__(
        self,
        defaults: TemporalDefaults,
        *,
        own: Client | None = None,
        connect: Connect = Client.connect,
    ) -> None:
        self.defaults = defaults
        self._connect = connect
        self._clients: dict[Endpoint, Client] = {}
        self._lock = asyncio.Lock()
        if own is not None:
            mine = Endpoint(defaults.address, defaults.namespace, defaults.tls, defaults.api_key)
            self._clients[mine] = own

    def endpoint(self, target: TemporalTarget) -> Endpoint:
        """The endpoint a target resolves to."""
        return resolve_endpoint(target, self.defaults)

    async def get(self, target: TemporalTarget) -> Client:
        """A connected client for the target's endpoint (connecting on first use)."""
        endpoint = self.endpoint(target)
        if (client := self._clients.get(endpoint)) is not None:
            return client
        async with self._lock:
            if (client := self._clients.get(endpoint)) is not None:
                return client
            client = await self._connect(
                endpoint.address,
                namespace=endpoint.namespace,
                api_key=endpoint.api_key,
                tls=tls_config(endpoint.tls) if endpoint.tls else None,
                data_converter=pydantic_data_converter,
            )
            self._clients[endpoint] = client
            log.info(
                "temporal_client_connected",
                address=endpoint.address,
                namespace=endpoint.namespace,
                tls=endpoint.tls is not None,
                api_key=endpoint.api_key is not None,
            )
            return client
