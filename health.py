"""The chaos worker's health endpoints for Kubernetes probes: GET /livez and /readyz.

A few lines on asyncio's own server: /livez answers while the event loop runs; /readyz
answers 200 only while the Temporal worker is polling (not before start, not while draining).
"""

from __future__ import annotations

import asyncio


class HealthServer:
    """Serves /livez and /readyz on a port; `ready` is flipped by the worker."""

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - probes come from the kubelet
        self.port = port
        self.host = host
        self.ready = False
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; idempotent."""
        if self._server is None:
            self._server = await asyncio.start_server(self._answer, self.host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            path = request.split()[1].decode() if len(request.split()) > 1 else ""
            ok = path == "/livez" or (path == "/readyz" and self.ready)
            status = (
                "200 OK"
                if ok
                else ("503 Service Unavailable" if path == "/readyz" else "404 Not Found")
            )
            body = status.split(" ", 1)[1].encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                "Content-Type: text/plain\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
