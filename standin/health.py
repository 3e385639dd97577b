"""The replica's HTTP endpoints, as ByteBot's NestJS worker serves them. Minimal HTTP/1.1.

``/health/startup`` and ``/health/ready`` answer 200 once `Health.started` is set at start-up
(503 before); like the real worker, readiness is a flag set at start-up and does not follow the
Temporal connection, so a worker that stops polling stays "ready". ``/health/ready`` goes 503
again once shutdown begins. ``/health/live`` answers 200 while the process serves. The metrics
port serves ``/metrics`` in Prometheus' text format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


@dataclass
class Health:
    """What the endpoints report."""

    started: bool = False
    ready: bool = False
    polling: bool = False
    activities_completed: int = 0

    def answer(self, path: str) -> tuple[int, str, str]:
        """Status, content type and body for a GET of ``path``."""
        flags = {
            "/health/startup": self.started,
            "/health/ready": self.ready,
            "/health/live": True,
        }
        if path in flags:
            ok = flags[path]
            body = json.dumps({"status": "ok" if ok else "unavailable"})
            return (200 if ok else 503), "application/json", body
        if path == "/metrics":
            body = (
                f"bytebot_worker_ready {int(self.ready)}\n"
                f"bytebot_worker_polling {int(self.polling)}\n"
            )
            return 200, "text/plain; version=0.0.4", body
        return 404, "application/json", json.dumps({"status": "not found"})


async def serve(health: Health, host: str, port: int) -> asyncio.Server:
    """Serve `health` on ``host:port`` until the returned server is closed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):  # a probe that hangs up early is not our problem
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            parts = request.split(b" ", 2)
            path = parts[1].decode() if len(parts) > 1 else "/"
            status, ctype, body = health.answer(path.split("?", 1)[0])
            data = body.encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)
