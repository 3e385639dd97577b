"""Benchmark (overhead): a scenario's wall time against its configured fault and pause time.

Starts what the main job starts (Temporal dev server, Kafka, the ByteBot stand-in with its
fault proxy and load, the chaos worker with the local backend) and then alternates, round by
round:

- `scenario`: a short scenario (network-delay, a pause, pod-kill; `--quick`: one delay) run to
  its verdict. Its phases come from the fault workflows' histories: steady state (child start
  -> `inject_fault` scheduled), inject (-> `inject_fault` closed), hold (-> `recover_fault`
  scheduled; its excess over the configured duration, counted from injection, is overhead;
  inject -> in effect, the last `confirm_fault` closed, happens inside it), recover -> confirmed
  recovered (-> the last `await_recovery` closed) and verify (-> child closed), plus the
  parent's own time between and around its steps; and the time each activity type took;
- `proxy_rule`: the floor of inject and recover locally: a bare rule written to the fault
  proxy's control dir until the proxy reports it active on a route, then removed until it no
  longer is (the proxy re-reads its rules every ~150 ms);
- `sut_settle`: the floor of verify: with no fault, the time until every goal run in flight
  at a moment has ended (the system's own settle time);
- `canary`: the floor of confirming recovery, whose last condition is a fresh canary goal run
  completed: one canary (the probe's CAPABILITY_PROBE goal run) with no fault, start -> end;
- `abort`: a long network-delay run aborted once in effect: signal -> `recover_fault` closed
  and the proxy applying no rule.

`overhead_beyond_sut_pct` is (wall - configured - waits on the system) / configured, where the
waits on the system are `await_recovery` (its floor: `canary`) and `check_goal_runs` (its
floor: `sut_settle`): what the orchestrator adds beyond the system's own settle time.

Targets (issue 16): overhead beyond the SUT's own settle time <= 2 % of the configured time,
inject -> in effect <= 0.5 s, abort -> everything recovered <= 1 s. The Chaos Mesh side's
phases (inject / confirm / recover beside a bare API round trip) are bench_blast_radius.py's.

    .venv/bin/python bench/bench_overhead.py --quick    # one 5 s delay, 2 rounds: a few minutes
    .venv/bin/python bench/bench_overhead.py            # delay, pause, pod-kill; 3 rounds
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402

from activities.verify.canaries import start_canary  # noqa: E402
from bench.common import (  # noqa: E402
    Samples,
    alternate,
    emit,
    figures,
    quiet_logs,
    rounds_of,
    stats,
    table,
    until,
)
from bench.common import parser as bench_parser  # noqa: E402
from control.runs import build_input, start_run  # noqa: E402
from devstack.kafka import KafkaBroker  # noqa: E402
from devstack.kafka_install import install  # noqa: E402
from devstack.main_job import TASK_QUEUE, TOPICS, chaos_worker  # noqa: E402
from devstack.sut import LocalSut, SutPorts  # noqa: E402
from devstack.temporal import TemporalDevServer  # noqa: E402
from faultproxy.control import Rule, read_status, remove_rule, write_rule  # noqa: E402
from models.scenario import CanarySpec, TemporalTarget  # noqa: E402
from workflows import names  # noqa: E402

QUICK = """\
name: overhead-quick
steps:
  - {name: delay, fault: {action: network-delay, duration: 5s, latency: 100ms}}
verification: {settle: 30s, probe_interval: 2s}
"""
FULL = """\
name: overhead
steps:
  - {name: delay, fault: {action: network-delay, duration: 10s, latency: 100ms}}
  - {name: settle, pause: 5s}
  - {name: pod-kill, fault: {action: pod-kill, duration: 10s}}
verification: {settle: 30s, probe_interval: 2s}
"""
ABORT = """\
name: overhead-abort
steps:
  - {name: delay, fault: {action: network-delay, duration: 60s, latency: 100ms}}
verification: {settle: 30s, probe_interval: 2s}
"""
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
}


def _at(event: Any) -> float:
    return float(event.event_time.ToDatetime().timestamp())


async def activity_times(handle: WorkflowHandle[Any, Any]) -> tuple[float, float, list[Any]]:
    """A run's start and close, and (type, scheduled, closed) of each of its activities."""
    history = await handle.fetch_history()
    events = list(history.events)
    scheduled: dict[int, tuple[str, float]] = {}
    acts: list[tuple[str, float, float]] = []
    for e in events:
        if e.event_type == SCHEDULED:
            scheduled[e.event_id] = (
                e.activity_task_scheduled_event_attributes.activity_type.name,
                _at(e),
            )
        elif e.event_type in CLOSED:
            attrs = next(
                getattr(e, f)
                for f in (
                    "activity_task_completed_event_attributes",
                    "activity_task_failed_event_attributes",
                    "activity_task_timed_out_event_attributes",
                    "activity_task_canceled_event_attributes",
                )
                if e.HasField(f)
            )
            kind, began = scheduled[attrs.scheduled_event_id]
            acts.append((kind, began, _at(e)))
    return _at(events[0]), _at(events[-1]), acts


def fault_phases(start: float, end: float, acts: list[Any], duration_s: float) -> dict[str, float]:
    """The phases of one fault workflow, from its activities' times."""

    def first(kind: str) -> float:
        return min(b for k, b, _ in acts if k == kind)

    def last(kind: str) -> float:
        return max(c for k, _, c in acts if k == kind)

    inject = first(names.INJECT_FAULT)
    injected = last(names.INJECT_FAULT)
    effect = last(names.CONFIRM_FAULT)
    recover = first(names.RECOVER_FAULT)
    recovered = last(names.AWAIT_RECOVERY)
    # The hold runs from injection to injection + duration; confirming happens inside it.
    return {
        "steady": inject - start,
        "inject": injected - inject,
        "inject_to_effect": effect - inject,
        "hold_excess": recover - injected - duration_s,
        "recover_to_recovered": recovered - recover,
        "verify": end - recovered,
    }


class Stack:
    """The main job's services, started once for every round."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.client: Client | None = None

    def __enter__(self) -> Stack:
        self.stack = contextlib.ExitStack()
        install()
        self.temporal = self.stack.enter_context(TemporalDevServer(db_file=self.root / "t.db"))
        ports = SutPorts.pick(3)
        broker = self.stack.enter_context(
            KafkaBroker(self.root / "kafka", chaos_advertised=ports.kafka_advertised)
        )
        asyncio.run(broker.create_topics(TOPICS))
        self.sut = self.stack.enter_context(
            LocalSut.for_broker(self.root / "local", broker, ports, self.temporal.address)
        )
        self.stack.enter_context(
            chaos_worker(
                self.temporal.address, broker.bootstrap_direct, self.sut.root, self.root / "w.log"
            )
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


async def run_scenario(client: Client, path: Path, out: dict[str, list[float]]) -> float:
    """Run the scenario to its end; wall seconds; phases appended to `out`."""
    run_input = build_input(str(path))
    steps = run_input.scenario.steps  # type: ignore[union-attr]
    durations = [max(f.duration.total_seconds() for f in s.faults) for s in steps if s.faults]
    pauses = sum(s.pause.total_seconds() for s in steps if s.pause)
    configured = sum(durations) + pauses
    handle = await start_run(client, run_input, TASK_QUEUE)
    began = time.perf_counter()
    report = await handle.result()
    wall = time.perf_counter() - began
    p_start, p_end, _ = await activity_times(handle)
    faults = [f for step in report.steps for f in step.faults]
    inside = on_sut = 0.0
    for f, duration in zip(faults, durations, strict=True):
        child = client.get_workflow_handle(f"{handle.id}.{f.fault_id}")
        start, end, acts = await activity_times(child)
        for k, v in fault_phases(start, end, acts, duration).items():
            out.setdefault(k, []).append(v)
        spent: dict[str, float] = {}
        for kind, began_at, closed_at in acts:  # where each phase's time goes
            spent[kind] = spent.get(kind, 0.0) + closed_at - began_at
        for kind, took in spent.items():
            out.setdefault(f"activity {kind}", []).append(took)
        on_sut += sum(spent.get(k, 0.0) for k in (names.AWAIT_RECOVERY, names.CHECK_GOAL_RUNS))
        inside += end - start
    out.setdefault("parent_other", []).append((p_end - p_start) - inside - pauses)
    out.setdefault("configured", []).append(configured)
    out.setdefault("overhead", []).append(wall - configured)
    # What waits on the system itself (its floors: `canary`, `sut_settle`) is not overhead.
    out.setdefault("waits_on_sut", []).append(on_sut)
    out.setdefault("overhead_beyond_sut_pct", []).append(
        100 * (wall - configured - on_sut) / configured
    )
    out.setdefault("verdict", []).append(float(report.verdict.value == "pass"))
    return wall


async def proxy_round(control: Path, out: dict[str, list[float]]) -> float:
    """A bare rule: written -> reported active on a route -> removed -> no longer active."""
    fault_id = f"bench-{time.time_ns()}"
    route = "replica-0/temporal"
    rule = Rule(
        fault_id=fault_id,
        kind="delay",
        replicas=["replica-0"],
        peers=["temporal"],
        expires_at=time.time() + 30,
    )
    began = time.perf_counter()
    write_rule(control, rule)
    await until(lambda: _active(control, route, fault_id), 0.01, 30)
    applied = time.perf_counter()
    remove_rule(control, fault_id)
    await until(lambda: not _active(control, route, fault_id), 0.01, 30)
    out.setdefault("proxy_apply", []).append(applied - began)
    out.setdefault("proxy_remove", []).append(time.perf_counter() - applied)
    return time.perf_counter() - began


def _active(control: Path, route: str, fault_id: str) -> bool:
    status = read_status(control)
    route_stats = status.routes.get(route) if status else None
    return route_stats is not None and fault_id in route_stats.active_rules


async def canary_round(sut: Client) -> float:
    """With no fault: one canary goal run, started -> completed."""
    canary = f"bench-canary-{time.time_ns()}"
    began = time.perf_counter()
    started = await start_canary(sut, TemporalTarget(), CanarySpec(), canary)
    if not started.ok:
        raise RuntimeError(f"canary not started: {started.error}")
    await sut.get_workflow_handle(canary).result()
    return time.perf_counter() - began


async def settle_round(sut: Client) -> float:
    """With no fault: until every goal run in flight now has ended."""
    query = "WorkflowType='goalRunWorkflow' AND ExecutionStatus='Running'"
    ids = [e.id async for e in sut.list_workflows(query, limit=2000)]
    began = time.perf_counter()
    if not ids:
        return 0.0
    quoted = ", ".join(f"'{i}'" for i in ids)
    still = f"WorkflowId IN ({quoted}) AND ExecutionStatus='Running'"

    async def ended() -> bool:
        return not (await sut.count_workflows(still)).count

    await until(ended, 0.2, 120)
    return time.perf_counter() - began


async def abort_round(client: Client, path: Path, control: Path) -> float:
    """Abort a held fault: signal -> recovered and no rule applied (seconds)."""
    handle = await start_run(client, build_input(str(path)), TASK_QUEUE)
    child: WorkflowHandle[Any, Any] | None = None
    while True:  # until the fault is confirmed in effect
        with contextlib.suppress(Exception):
            status = await handle.query(names.STATUS_QUERY)
            ledger = status.get("ledger", []) if isinstance(status, dict) else []
            if ledger and ledger[0].get("status") == "injected":
                child = client.get_workflow_handle(f"{handle.id}.{ledger[0]['fault_id']}")
                _, _, acts = await activity_times(child)
                if any(k == names.CONFIRM_FAULT for k, _, _ in acts):
                    break
        await asyncio.sleep(0.1)
    signalled = time.time()
    began = time.perf_counter()
    await handle.signal(names.ABORT_SIGNAL, "bench")
    await until(lambda: not getattr(read_status(control), "live_rules", None), 0.01, 60)
    proxy_clear = time.perf_counter() - began
    with contextlib.suppress(Exception):
        await handle.result()
    assert child is not None
    _, _, acts = await activity_times(child)
    recovered = max(c for k, _, c in acts if k == names.RECOVER_FAULT)
    return max(proxy_clear, recovered - signalled)


async def bench(stack: Stack, args: Any, scenario: Path, abort: Path) -> dict[str, Any]:
    client = await Client.connect(stack.temporal.address, data_converter=pydantic_data_converter)
    sut = await Client.connect(
        stack.temporal.address, namespace="bytebot", data_converter=pydantic_data_converter
    )
    control = stack.sut.control_dir
    phases: dict[str, list[float]] = {}

    async def scenario_side() -> float:
        return await run_scenario(client, scenario, phases)

    async def settle_side() -> float:
        took = await settle_round(sut)
        phases.setdefault("_settle_floor", []).append(took)
        return took

    async def canary_side() -> float:
        took = await canary_round(sut)
        phases.setdefault("_canary_floor", []).append(took)
        return took

    sides = {
        "sut_settle": settle_side,
        "canary": canary_side,
        "scenario": scenario_side,
        "proxy_rule": lambda: proxy_round(control, phases),
        "abort": lambda: abort_round(client, abort, control),
    }
    samples = await alternate(sides, rounds_of(args), Samples(dict.fromkeys(sides, "s")))
    print(table(samples))
    phase_stats = {k: stats(v) for k, v in phases.items() if not k.startswith("_")}
    for k, v in phase_stats.items():
        print(f"  phase {k:<28} median {v['median']:8.3f}  (min {v['min']}, max {v['max']})")
    samples.units["overhead"] = "s"
    for v in phases["overhead"]:
        samples.add("overhead", v)
    out = figures(
        "overhead",
        samples,
        ("scenario", "sut_settle"),
        {
            "scenario": scenario.name,
            "configured_s": phases["configured"][0],
            "rounds": rounds_of(args),
            "at": datetime.now().isoformat(timespec="seconds"),
        },
        {
            "phases": phase_stats,
            "targets": {"overhead_beyond_sut_pct": 2, "inject_to_effect_s": 0.5, "abort_s": 1},
        },
    )
    return out


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=3, quick_rounds=2)
    args = parser.parse_args()
    quiet_logs()
    root = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    scenario, abort = root / "scenario.yaml", root / "abort.yaml"
    scenario.write_text(QUICK if args.quick else FULL)
    abort.write_text(ABORT)
    with Stack(root) as stack:
        result = asyncio.run(bench(stack, args, scenario, abort))
    emit(result)


if __name__ == "__main__":
    main()
