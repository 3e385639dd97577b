"""Readiness probes as a pod spec's readinessProbe has them: HTTP GET, exec or TCP.

An HTTP probe succeeds on a status from 200 to 399 within its timeout; an exec probe on exit
code 0. A replica is ready after one success and unready after ``failure_threshold``
consecutive failures (Kubernetes' defaults: 1 and 3).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit


class Probe(Protocol):
    """One check of a replica."""

    async def check(self, timeout_s: float) -> bool:
        """True if the replica passes."""


@dataclass(frozen=True)
class HttpProbe:
    """GET ``url``; 2xx/3xx passes."""

    url: str

    async def check(self, timeout_s: float) -> bool:
        """GET the URL with a bare HTTP/1.1 request."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = parts.path or "/"
        writer = None
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status_line = await reader.readline()
        except (OSError, TimeoutError):
            return False
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        fields = status_line.split()
        return len(fields) >= 2 and fields[1].isdigit() and 200 <= int(fields[1]) < 400


@dataclass(frozen=True)
class ExecProbe:
    """Run ``argv``; exit code 0 passes."""

    argv: list[str]

    async def check(self, timeout_s: float) -> bool:
        """Run the command, killed after ``timeout_s``."""
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            return await asyncio.wait_for(proc.wait(), timeout_s) == 0
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return False


@dataclass(frozen=True)
class TcpProbe:
    """Open a TCP connection to ``host:port``; a connection passes (a tcpSocket probe)."""

    host: str
    port: int

    async def check(self, timeout_s: float) -> bool:
        """Connect and close at once."""
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return True


@dataclass(frozen=True)
class Running:
    """No probe configured: a running process counts as ready."""

    async def check(self, timeout_s: float) -> bool:
        """Always passes (the supervisor only probes live processes)."""
        return True
