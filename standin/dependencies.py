"""The worker's other dependencies, played locally: a tiny orchestrator and an LLM proxy.

ByteBot's worker calls the LLM proxy (`LLM_PROXY_URL`) to plan and the workflow orchestrator
(`ORCHESTRATOR_URL`) to execute each step; a failed orchestrator call makes the step report
failure. The stand-in does the same when those variables are set, so a network fault on the
way to either one (a fault proxy route per replica, like Temporal's and Kafka's) has the effect
it has on the real worker: slower planning and steps, retried plans, failed steps and replans.

Both endpoints are JSON over HTTP/1.1 on one small asyncio server each (no framework):

- LLM proxy ``POST /v1/chat/completions`` (an OpenAI-style proxy's path): 200 with one choice;
- orchestrator ``POST /api/v1/steps/execute``: 400 without ``goalRunId`` or ``tenantId`` (as the
  real one answers a malformed call), else 200 ``{"status": "ok"}``.

The paths and bodies are this stand-in's; ByteBot documents only the variables. `post_json` is
the client the worker's activities use: a bounded request that raises `DependencyError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

import structlog

log = structlog.get_logger(__name__)

LLM_PATH = "/v1/chat/completions"
ORCHESTRATOR_PATH = "/api/v1/steps/execute"
MAX_BODY = 1 << 20


class DependencyError(RuntimeError):
    """A call to a dependency failed: refused, timed out, cut or answered with an error."""


async def post_json(url: str, path: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """POST ``body`` to ``url`` + ``path``; the JSON answer of a 2xx, else `DependencyError`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json.dumps(body).encode()
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"POST {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            status, answer = await _read_response(reader)
    except TimeoutError as e:
        raise DependencyError(f"{url}{path}: no answer within {timeout_s:.1f}s") from e
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        raise DependencyError(f"{url}{path}: {e!r}") from e
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    if not 200 <= status < 300:
        raise DependencyError(f"{url}{path} answered {status}: {answer}")
    return answer


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    status_line = await reader.readline()
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
    length = await _headers_length(reader)
    raw = await reader.readexactly(length) if length else b"{}"
    return int(fields[1]), dict(json.loads(raw or b"{}"))


async def _headers_length(reader: asyncio.StreamReader) -> int:
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length > MAX_BODY:
        raise ValueError(f"body of {length} bytes is too large")
    return length


def _llm(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"choices": [{"message": {"role": "assistant", "content": "a plan"}}]}


def _orchestrator(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    missing = [k for k in ("goalRunId", "tenantId") if not body.get(k)]
    if missing:
        return 400, {"error": f"missing {', '.join(missing)}"}
    return 200, {"status": "ok", "goalRunId": body["goalRunId"]}


ROUTES = {LLM_PATH: _llm, ORCHESTRATOR_PATH: _orchestrator}


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request_line = await reader.readline()
        method, path, *_ = request_line.decode("latin-1").split() or ["", ""]
        length = await _headers_length(reader)
        body = json.loads(await reader.readexactly(length)) if length else {}
        handler = ROUTES.get(path)
        if method != "POST" or handler is None:
            status, answer = 404, {"error": f"no {method} {path}"}
        else:
            status, answer = handler(body if isinstance(body, dict) else {})
        payload = json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
    except (OSError, ValueError, asyncio.IncompleteReadError):
        pass  # a cut or garbled connection (a fault on the way): nothing to answer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve_dependencies(ports: dict[str, int], stop: asyncio.Event) -> None:
    """Serve the orchestrator and the LLM proxy on loopback ``ports`` until ``stop`` is set."""
    servers = [await asyncio.start_server(_handle, "127.0.0.1", port) for port in ports.values()]
    log.info("dependencies_serving", **{name: port for name, port in ports.items()})
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
