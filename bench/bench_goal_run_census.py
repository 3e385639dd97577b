"""Benchmark (verify-scale): the census and goal-run check over goal runs in flight, at scale.

Starts its own Temporal dev server and a worker running a ByteBot-shaped goalRunWorkflow in
ByteBot's namespace (`bytebot`): it upserts PLANNING, runs `planGoal`, upserts EXECUTING and
`ByteBotStepCount`, runs `--steps`-1 `executeStep` activities that heartbeat (one in ten runs
has a step that fails once and is retried), then waits for a `finish` signal before its last
step, so every run is in flight with a real history of ~40 events. For each size (1,000 and
10,000; `--quick`: 200) it starts that many, waits until all wait, then measures, sides
alternating round by round:

- `census`: the real `check_steady_state` (paginated visibility listing + one describe per run
  for its history length, pollers, replicas) against `count` (a bare visibility count of the
  same runs: the floor) and `list` (the listing alone, no describes);
- `open_check`: the real `check_goal_runs` with every run still open at its deadline (one pass
  that describes every run for progress: the slowest final classification);

and once (it consumes the runs): `close_check`, `check_goal_runs` while the runs are told to
finish, against `drain`, a plain watcher polling the count of running runs. Both start before
the first `finish` signal is sent, so both time the same work: the system finishing its runs.
It runs up to `--close-max` runs (default 1,000): above that it times the system, not the
check (1,000 runs drained in ~300 s on 2 cores), and the runs are terminated instead.
Every figure is also given as a share of the settle window (`--settle`, default 2m).

    .venv/bin/python bench/bench_goal_run_census.py --quick   # 200 runs, 3 rounds
    .venv/bin/python bench/bench_goal_run_census.py           # 1,000 and 10,000 runs, 3 rounds

The replicas come from a bench-side stand-in of the fault backend (one ready replica): the
backend is not what is measured here. Exits 1 if a check misses a goal run.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio import activity, workflow  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.common import RetryPolicy, SearchAttributeKey  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.exceptions import ApplicationError  # noqa: E402
from temporalio.testing import ActivityEnvironment  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from activities.verify.census import bounded  # noqa: E402
from activities.verify.clients import TemporalClients, TemporalDefaults  # noqa: E402
from activities.verify.probe import TemporalProbeActivities  # noqa: E402
from bench.common import (  # noqa: E402
    Samples,
    alternate,
    emit,
    figures,
    quiet_logs,
    rounds_of,
    seconds,
    table,
)
from bench.common import parser as bench_parser  # noqa: E402
from devstack.temporal import TemporalDevServer  # noqa: E402
from models.durations import parse_duration  # noqa: E402
from models.ledger import ReplicaQuery, ReplicaSet, TargetRef  # noqa: E402
from models.observations import GoalRunsInput, ProbeContext  # noqa: E402

NAMESPACE, TASK_QUEUE = "bytebot", "bench-goal-runs"
PHASE = SearchAttributeKey.for_keyword("ByteBotPhase")
STEPS = SearchAttributeKey.for_int("ByteBotStepCount")
TENANT = SearchAttributeKey.for_keyword("ByteBotTenantId")
FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)


@workflow.defn(name="goalRunWorkflow", sandboxed=False)
class ShapedGoalRun:
    """ByteBot's goal run in outline: plan, steps that heartbeat, a retry; waits before the last."""

    def __init__(self) -> None:
        self._finish = self._waiting = False

    @workflow.signal(name="finish")
    def finish(self) -> None:
        """Let the run do its last step and complete."""
        self._finish = True

    @workflow.query(name="waitingForFinish")
    def waiting(self) -> bool:
        """True once every step but the last is done."""
        return self._waiting

    @workflow.run
    async def run(self, goal: dict[str, Any]) -> dict[str, Any]:
        workflow.upsert_search_attributes(
            [PHASE.value_set("PLANNING"), TENANT.value_set(goal["tenantId"])]
        )
        steps = await workflow.execute_activity(
            "planGoal", goal, start_to_close_timeout=timedelta(seconds=30), retry_policy=FAST_RETRY
        )
        workflow.upsert_search_attributes([PHASE.value_set("EXECUTING"), STEPS.value_set(steps)])
        for number in range(1, steps + 1):
            if number == steps:
                self._waiting = True
                await workflow.wait_condition(lambda: self._finish)
            await workflow.execute_activity(
                "executeStep",
                {**goal, "stepNumber": number},
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=20),
                retry_policy=FAST_RETRY,
            )
        workflow.upsert_search_attributes([PHASE.value_set("COMPLETED")])
        return {"goalRunId": goal["goalRunId"], "status": "COMPLETED", "stepsCompleted": steps}


@activity.defn(name="planGoal")
async def plan_goal(goal: dict[str, Any]) -> int:
    """The stand-in LLM: the plan's length."""
    return int(goal["steps"])


@activity.defn(name="executeStep")
async def execute_step(step: dict[str, Any]) -> str:
    """One step: heartbeats twice; the flaky step fails on its first attempt."""
    for n in range(2):
        activity.heartbeat({"progress": n})
        await asyncio.sleep(0.005)
    if step.get("flakyStep") == step["stepNumber"] and activity.info().attempt == 1:
        raise ApplicationError("browser session lost", type="StepTransient")
    return f"step {step['stepNumber']} done"


class OneReadyReplica:
    """Stand-in fault backend (bench double): one ready replica, nothing else."""

    name = "bench"

    async def read_replicas(self, query: ReplicaQuery) -> ReplicaSet:
        return ReplicaSet(replicas=[TargetRef(name="bench-worker", uid="1", ready=True)])


def _context(settle: timedelta, limit: int) -> ProbeContext:
    return ProbeContext.model_validate(
        {
            "run_id": "bench",
            "fault_id": "bench",
            "target": {},
            "verification": {
                "temporal": {"task_queue": TASK_QUEUE, "namespace": NAMESPACE},
                "kafka": None,
                "canary": {"count": 0},
                "settle": settle,
                "max_goal_runs": limit,
            },
        }
    )


async def _running(client: Client) -> int:
    query = f"TaskQueue='{TASK_QUEUE}' AND ExecutionStatus='Running'"
    return (await client.count_workflows(query)).count


async def _all_waiting(client: Client, ids: list[str]) -> None:
    """Until every run is in flight at its last step, waiting for `finish`."""
    query = f"TaskQueue='{TASK_QUEUE}' AND ExecutionStatus='Running' AND ByteBotPhase='EXECUTING'"
    while True:
        if (await client.count_workflows(query)).count >= len(ids):
            break
        await asyncio.sleep(0.5)
    # EXECUTING is upserted before the steps: ask the last runs started whether they wait.
    for workflow_id in ids[-20:]:
        while True:
            if await client.get_workflow_handle(workflow_id).query("waitingForFinish"):
                break
            await asyncio.sleep(0.5)


async def one_size(
    client: Client, probe: TemporalProbeActivities, n: int, args: Any, rounds: int
) -> tuple[dict[str, Any], bool]:
    """Every side at one size; its figures and whether every check saw every run."""
    settle: timedelta = args.settle_td
    tag = f"s{n}-{int(time.time())}"
    ids = [f"bench-goal-run-{tag}-{i:05d}" for i in range(n)]

    async def start(i_id: tuple[int, str]) -> None:
        i, workflow_id = i_id
        goal = {
            "goalRunId": workflow_id,
            "tenantId": f"tenant-{i % 7}",
            "goalDescription": "bench",
            "steps": args.steps,
            "flakyStep": 2 if i % 10 == 0 else 0,
        }
        await client.start_workflow("goalRunWorkflow", goal, id=workflow_id, task_queue=TASK_QUEUE)

    began = time.monotonic()
    await bounded(50, start, list(enumerate(ids)))
    await _all_waiting(client, ids)
    ready_s = time.monotonic() - began
    sample = await client.get_workflow_handle(ids[0]).describe()
    print(f"{n:,} goal runs in flight after {ready_s:.1f}s (history ~{sample.history_length})")
    ctx, env, ok = _context(settle, n + 100), ActivityEnvironment(), True
    env.on_heartbeat = lambda *details: None
    seen: dict[str, int] = {}

    async def census() -> float:
        began = time.perf_counter()
        baseline = await env.run(probe.check_steady_state, ctx)
        seen["census"] = len(baseline.goal_runs)
        seen["history_len"] = max(m.history_length for m in baseline.goal_runs)
        return time.perf_counter() - began

    async def count() -> float:
        return await seconds(lambda: _running(client))

    async def listing() -> float:
        query = f"TaskQueue='{TASK_QUEUE}' AND ExecutionStatus='Running'"
        return await seconds(lambda: _drain(client.list_workflows(query, page_size=1000)))

    baseline = await env.run(probe.check_steady_state, ctx)  # warm up, and the baseline below

    async def open_check() -> float:
        now = datetime.now(UTC)
        began = time.perf_counter()
        check = await env.run(
            probe.check_goal_runs,
            GoalRunsInput(context=ctx, baseline=baseline, injected_at=now, deadline=now),
        )
        seen["open"] = check.checked
        return time.perf_counter() - began

    samples = await alternate(
        {"census": census, "count": count, "list": listing, "open_check": open_check},
        rounds,
        Samples(dict.fromkeys(["census", "count", "list", "open_check"], "s")),
    )
    ok &= seen["census"] == n and seen["open"] == n
    if n > args.close_max:
        print(f"{n:>6,}  closing pass skipped (--close-max {args.close_max:,})")
        await bounded(50, lambda i: client.get_workflow_handle(i).terminate("bench size done"), ids)
        return _row(n, samples, settle, seen, ready_s, None), ok

    # The closing pass: both sides start before the first `finish` signal.
    now = datetime.now(UTC)
    watcher_began = time.perf_counter()

    async def drain() -> float:
        while True:
            if not await _running(client):
                break
            await asyncio.sleep(0.2)
        return time.perf_counter() - watcher_began

    async def finish_all() -> None:
        await bounded(50, lambda i: client.get_workflow_handle(i).signal("finish"), ids)

    watcher = asyncio.create_task(drain())
    check_task = asyncio.create_task(
        env.run(
            probe.check_goal_runs,
            GoalRunsInput(context=ctx, baseline=baseline, injected_at=now, deadline=now + settle),
        )
    )
    await finish_all()
    closed = await check_task
    close_s = time.perf_counter() - watcher_began
    drain_s = await watcher
    samples.units |= {"close_check": "s", "drain": "s"}
    samples.add("close_check", close_s)
    samples.add("drain", drain_s)
    ok &= closed.completed == n and not closed.losses
    for loss in closed.losses[:3]:
        print(f"{n:>6,}  loss: {loss.workflow_id} {loss.status}: {loss.reason[:200]}")
    return _row(n, samples, settle, seen, ready_s, closed), ok


def _row(
    n: int,
    samples: Samples,
    settle: timedelta,
    seen: dict[str, int],
    ready_s: float,
    closed: Any,
) -> dict[str, Any]:
    """One size's table printed and its figures (no closing pass: ``closed`` is None)."""
    print(table(samples, ("census", "count"), label=f"{n:>6,}  "))
    pairs = [("list", "count"), ("open_check", "count")]
    pairs += [("close_check", "drain")] if closed is not None else []
    for a, b in pairs:
        r = samples.ratios(a, b)
        print(f"{n:>6,}  ratio {a}/{b:<18} median {sorted(r)[len(r) // 2]:.2f}")
    window = settle.total_seconds()
    shares = {s: round(v["median"] / window, 4) for s, v in samples.sides().items()}
    print(f"{n:>6,}  share of the {window:.0f}s settle window: {shares}")
    extra: dict[str, Any] = {
        "ratios": {
            f"{a}/{b}": round(sorted(r := samples.ratios(a, b))[len(r) // 2], 3) for a, b in pairs
        },
        "share_of_settle": shares,
        "history_length": seen["history_len"],
        "ready_s": round(ready_s, 1),
    }
    if closed is not None:
        extra |= {
            "histories_read": closed.histories_read,
            "closed_completed": closed.completed,
            "losses": closed.losses_total,
            "progressing": closed.progressing,
        }
    return figures(
        f"verify-scale-census-{n}", samples, ("census", "count"), {"goal_runs": n}, extra
    )


async def _drain(items: Any) -> int:
    return len([e async for e in items])


async def bench(args: Any) -> int:
    quiet_logs()
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",")]
    rounds = rounds_of(args)
    with TemporalDevServer() as server:
        client = await Client.connect(
            server.address, namespace=NAMESPACE, data_converter=pydantic_data_converter
        )
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[ShapedGoalRun],
            activities=[plan_goal, execute_step],
            workflow_runner=UnsandboxedWorkflowRunner(),
            max_cached_workflows=2000,
            max_concurrent_activities=200,
        )
        own = await Client.connect(server.address, data_converter=pydantic_data_converter)
        probe = TemporalProbeActivities(
            TemporalClients(TemporalDefaults(address=server.address), own=own),
            OneReadyReplica(),  # type: ignore[arg-type]
            concurrency=args.concurrency,
        )
        rows, ok = [], True
        async with worker:
            for n in sizes:
                row, row_ok = await one_size(client, probe, n, args, rounds)
                rows.append(row)
                ok &= row_ok
    for row in rows[:-1]:
        print(f"# {row['name']}: ratio census/count {row['ratio_median']}")
    last = rows[-1]
    last["name"] = "verify-scale-census"
    last["sizes"] = {
        "goal_runs": sizes,
        "steps": args.steps,
        "rounds": rounds,
        "settle_s": args.settle_td.total_seconds(),
    }
    last["extra"]["by_size"] = {
        str(n): {
            "ratio_median": r["ratio_median"],
            "sides": {k: v["median"] for k, v in r["sides"].items()},
            "ratios": r["extra"]["ratios"],
        }
        for n, r in zip(sizes, rows, strict=True)
    }
    emit(last)
    if not ok:
        print("FAILED: a check missed goal runs", file=sys.stderr)
    return 0 if ok else 1


def main() -> None:
    parser = bench_parser(__doc__.split("\n\n")[0], rounds=3, quick_rounds=3)
    parser.add_argument("--sizes", default="1000,10000", help="goal runs in flight")
    parser.add_argument("--steps", type=int, default=4, help="steps per goal run")
    parser.add_argument("--settle", default="2m", help="the settle window compared against")
    parser.add_argument("--concurrency", type=int, default=32, help="describe calls at once")
    parser.add_argument(
        "--close-max",
        type=int,
        default=1000,
        help="the closing pass (it times the system draining its runs) only up to this size",
    )
    args = parser.parse_args()
    args.settle_td = parse_duration(args.settle)
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
