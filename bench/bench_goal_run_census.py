"""Benchmark: verifying ``--goal-runs`` goal runs in flight against a fault's settle window.

Starts its own Temporal dev server (devstack.temporal) and a worker running a trivial
goalRunWorkflow (it waits for a ``finish`` signal, then returns), starts ``--goal-runs`` of
them and waits until all are in flight. Then, in the same run, it times the real
verification activities (run in an ActivityEnvironment, heartbeats captured):

1. ``check_steady_state``: the census (paginated visibility listing, one describe per run
   for its history length), the task queue's pollers, the worker replicas;
2. ``check_goal_runs`` with every run still open and the deadline already reached: one pass
   that describes every run for progress (the slowest case of the final classification);
3. ``check_goal_runs`` after every run was signalled to finish: waits until visibility shows
   them all closed, classifies them and reads up to ``max_histories`` histories; side by side,
   a plain watcher polls the count of running goal runs until it reaches 0. Their ratio is
   the check's overhead over the time the system itself takes to finish its runs.

It prints each time next to the settle window (``--settle``, the scenario default 2m) as a
ratio (lower is better; below 1.0 means the check fits in the window), and exits 1 if a check
misses a goal run or any check takes longer than the window.

    .venv/bin/python bench/bench_goal_run_census.py                  # 1,000 goal runs
    .venv/bin/python bench/bench_goal_run_census.py --goal-runs 200  # a quick run (CI)

The replicas come from a bench-side stand-in of the fault backend (one ready replica): the
backend is not what is measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.verify.census import bounded
from activities.verify.clients import TemporalClients, TemporalDefaults
from activities.verify.probe import TemporalProbeActivities
from devstack.temporal import TemporalDevServer
from models.durations import parse_duration
from models.ledger import ReplicaQuery, ReplicaSet, TargetRef
from models.observations import GoalRunsInput, ProbeContext

TASK_QUEUE = "bench-goal-runs"
T = TypeVar("T")


@workflow.defn(name="goalRunWorkflow", sandboxed=False)
class WaitingGoalRun:
    """A goal run that stays in flight until it is told to finish."""

    def __init__(self) -> None:
        self._finish = False

    @workflow.signal(name="finish")
    def finish(self) -> None:
        """Let the run complete."""
        self._finish = True

    @workflow.run
    async def run(self, goal: dict[str, Any]) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self._finish)
        return {"goal_run_id": goal["goal_run_id"], "status": "COMPLETED"}


class OneReadyReplica:
    """Stand-in fault backend (bench double): one ready replica, nothing else."""

    name = "bench"

    async def read_replicas(self, query: ReplicaQuery) -> ReplicaSet:
        return ReplicaSet(replicas=[TargetRef(name="bench-worker", uid="1", ready=True)])


async def timed(label: str, call: Callable[[], Awaitable[T]], settle: timedelta) -> tuple[T, float]:
    began = time.monotonic()
    result = await call()
    took = time.monotonic() - began
    print(f"{label:<46} {took:8.2f}s   ratio to settle {took / settle.total_seconds():.3f}")
    return result, took


async def bench(goal_runs: int, settle: timedelta, concurrency: int) -> int:
    with TemporalDevServer() as server:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[WaitingGoalRun],
            workflow_runner=UnsandboxedWorkflowRunner(),
            max_cached_workflows=goal_runs + 100,
        )
        async with worker:
            ids = [f"bench-goal-run-{i:05d}" for i in range(goal_runs)]

            async def start(workflow_id: str) -> None:
                await client.start_workflow(
                    "goalRunWorkflow",
                    {"goal_run_id": workflow_id},
                    id=workflow_id,
                    task_queue=TASK_QUEUE,
                )

            began = time.monotonic()
            await bounded(50, start, ids)
            query = f"TaskQueue='{TASK_QUEUE}' AND ExecutionStatus='Running'"
            while (running := (await client.count_workflows(query)).count) < goal_runs:
                print(f"  {running} in flight", end="\r")
                await asyncio.sleep(0.2)
            print(f"{goal_runs} goal runs in flight after {time.monotonic() - began:.1f}s")

            probe = TemporalProbeActivities(
                TemporalClients(TemporalDefaults(address=server.address), own=client),
                OneReadyReplica(),  # type: ignore[arg-type]
                concurrency=concurrency,
            )
            ctx = ProbeContext.model_validate(
                {
                    "run_id": "bench",
                    "fault_id": "bench",
                    "target": {},
                    "verification": {
                        "temporal": {"task_queue": TASK_QUEUE},
                        "kafka": None,
                        "canary": {"count": 0},
                        "settle": settle,
                        "max_goal_runs": goal_runs + 100,
                    },
                }
            )
            env = ActivityEnvironment()
            beats: list[Any] = []
            env.on_heartbeat = lambda *details: beats.append(details)
            print(f"settle window {settle.total_seconds():.0f}s, concurrency {concurrency}")
            baseline, t_census = await timed(
                "check_steady_state (census + describe each)",
                lambda: env.run(probe.check_steady_state, ctx),
                settle,
            )
            now = datetime.now(UTC)
            open_check, t_open = await timed(
                "check_goal_runs, all open at the deadline",
                lambda: env.run(
                    probe.check_goal_runs,
                    GoalRunsInput(
                        context=ctx,
                        baseline=baseline,
                        injected_at=now,
                        deadline=now,
                    ),
                ),
                settle,
            )

            async def finish(workflow_id: str) -> None:
                await client.get_workflow_handle(workflow_id).signal("finish")

            async def drained() -> float:
                """The plain way to see every run close: poll the count of running ones."""
                began = time.monotonic()
                while True:
                    if not (await client.count_workflows(query)).count:
                        return time.monotonic() - began
                    await asyncio.sleep(0.2)

            await bounded(50, finish, ids)
            now = datetime.now(UTC)
            watcher = asyncio.create_task(drained())
            closed_check, t_closed = await timed(
                "check_goal_runs, all finishing (wait + classify)",
                lambda: env.run(
                    probe.check_goal_runs,
                    GoalRunsInput(
                        context=ctx,
                        baseline=baseline,
                        injected_at=now,
                        deadline=now + settle,
                    ),
                ),
                settle,
            )
            t_plain = await watcher
            print(
                f"{'  of which the system draining (plain watcher)':<46} {t_plain:8.2f}s   "
                f"check / plain {t_closed / t_plain:.2f}"
            )
    print(
        f"census: {len(baseline.goal_runs)} runs, truncated={baseline.truncated}; "
        f"open pass: checked {open_check.checked}; closed pass: {closed_check.completed} "
        f"completed, {len(closed_check.losses)} lost, {closed_check.histories_read} histories "
        f"read, waited {closed_check.waited_s:.1f}s; heartbeats {len(beats)}"
    )
    ok = (
        len(baseline.goal_runs) == goal_runs
        and open_check.checked == goal_runs
        and closed_check.completed == goal_runs
        and not closed_check.losses
        and max(t_census, t_open, t_closed) < settle.total_seconds()
    )
    print("OK" if ok else "FAILED: a check missed goal runs or took longer than the window")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goal-runs", type=int, default=1000, help="goal runs in flight")
    parser.add_argument("--settle", default="2m", help="the settle window compared against")
    parser.add_argument("--concurrency", type=int, default=32, help="describe calls at once")
    args = parser.parse_args()
    sys.exit(asyncio.run(bench(args.goal_runs, parse_duration(args.settle), args.concurrency)))


if __name__ == "__main__":
    main()
