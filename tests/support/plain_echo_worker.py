"""A plain temporalio worker that is not the stand-in: what the local fault catalog runs against.

    python tests/support/plain_echo_worker.py --name {replica} \
        --task-queue {task_queue}-{replica} --ready-file DIR/{replica}.pid

It connects to ``TEMPORAL_ADDRESS`` (its replica's fault proxy route) in ``TEMPORAL_NAMESPACE``,
polls a task queue of its own, and once connected writes its pid to ``--ready-file``: the
Deployment's exec probe (see `deployment`) passes while that pid is alive, so a file left by a
killed incarnation never makes the next one ready. Readiness is not an HTTP probe because the
supervisor picks each replica's ``HTTP_PORT`` by binding port 0 and closing it, which can hand
two replicas the same port. Its one workflow, ``plainEcho``, returns the text it was given with
the replica's name and pid, so a test knows which process did the work, and that the work
crossed that replica's Temporal route. It uses no Kafka and imports nothing of the stand-in's
or the orchestrator's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

WHO: dict[str, str] = {}


@workflow.defn(name="plainEcho")
class PlainEcho:
    @workflow.run
    async def run(self, text: str) -> dict[str, str]:
        return {**WHO, "echo": text}


def deployment(ready_dir: Path) -> dict[str, str]:
    """`devstack.sut.LocalSut`'s ``worker_command`` and ``ready_exec`` for this worker."""
    ready_file = f"{ready_dir}/{{replica}}.pid"
    return {
        "worker_command": f"{{python}} {__file__} --name {{replica}} "
        f"--task-queue {{task_queue}}-{{replica}} --ready-file {ready_file}",
        "ready_exec": f"sh -c 'kill -0 \"$(cat {ready_file})\"'",
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    WHO.update(replica=args.name, pid=str(os.getpid()))
    env = os.environ
    client = await Client.connect(env["TEMPORAL_ADDRESS"], namespace=env["TEMPORAL_NAMESPACE"])
    worker = Worker(
        client,
        task_queue=args.task_queue,
        workflows=[PlainEcho],
        workflow_runner=UnsandboxedWorkflowRunner(),  # PlainEcho reads this process's WHO
    )
    args.ready_file.parent.mkdir(parents=True, exist_ok=True)
    written = args.ready_file.with_suffix(".tmp")
    written.write_text(str(os.getpid()))
    written.replace(args.ready_file)  # the probe never reads half a pid
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
