"""A minimal worker that is not the stand-in: a plain temporalio worker for the deployment tests.

    python tests/support/standin_plain_worker.py --name {replica} --marker-dir DIR

It reads the real worker's environment (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_TASK_QUEUE``, ``KAFKA_BROKERS``, ``HTTP_PORT``) and serves ``/health/ready`` on
``HTTP_PORT`` only while ``<marker-dir>/<name>.serve`` exists (checked at start and every
0.1 s), so a test controls whether its HTTP server is up. Its one workflow, ``plainEcho``,
returns what the process was given. ``--ignore-sigterm`` makes it ignore SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

GIVEN: dict[str, str] = {}


@workflow.defn(name="plainEcho")
class PlainEcho:
    @workflow.run
    async def run(self) -> dict[str, str]:
        return GIVEN


async def serve_while_marked(marker: Path, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server: asyncio.Server | None = None
    while True:
        marked = await asyncio.to_thread(marker.exists)
        if marked and server is None:
            server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
        elif not marked and server is not None:
            server.close()
            server = None
        await asyncio.sleep(0.1)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--marker-dir", type=Path, required=True)
    p.add_argument("--ignore-sigterm", action="store_true")
    args = p.parse_args()
    env = os.environ
    GIVEN.update(
        name=args.name,
        pid=str(os.getpid()),
        hostname=socket.gethostname(),
        **{
            k: env.get(k, "")
            for k in (
                "TEMPORAL_ADDRESS",
                "TEMPORAL_NAMESPACE",
                "TEMPORAL_TASK_QUEUE",
                "KAFKA_BROKERS",
                "HTTP_PORT",
                "METRICS_PORT",
            )
        },
    )
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    client = await Client.connect(env["TEMPORAL_ADDRESS"], namespace=env["TEMPORAL_NAMESPACE"])
    worker = Worker(
        client,
        task_queue=env["TEMPORAL_TASK_QUEUE"],
        workflows=[PlainEcho],
        workflow_runner=UnsandboxedWorkflowRunner(),  # PlainEcho reads this process's GIVEN
    )
    marker = args.marker_dir / f"{args.name}.serve"
    await asyncio.gather(worker.run(), serve_while_marked(marker, int(env["HTTP_PORT"])))


if __name__ == "__main__":
    asyncio.run(main())
