"""The CLI of the chaos orchestrator: run, report, history, schedule, render, import, schema,
validate, demo.

Parsing only: each command checks its flags, then calls one function in `control/`.
Connection settings come from the same environment as the worker (TEMPORAL_ADDRESS, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client

from control.history import history_table, load_history
from control.progress import RunProgress
from control.reports import print_table, write_report
from control.runs import BadInput, build_input, follow_run, start_run, ui_link
from control.schedule import WEEKLY_SCENARIO, WEEKLY_SCHEDULE_ID, ScheduleOptions
from models.durations import format_duration
from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from settings import Settings
from worker import configure_logging, connect

REPORT_DIR = Path("runs/reports")
EXIT_BY_VERDICT = {
    Verdict.PASS: 0,
    Verdict.DRY_RUN: 0,
    Verdict.FAIL: 1,
    Verdict.INCONCLUSIVE: 2,
    Verdict.ABORTED: 3,
    Verdict.NOT_RUN: 2,
}


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    run_input = build_input(
        args.scenario,
        dry_run=args.dry_run,
        backend=args.backend,
        duration_cap=args.duration_cap,
        settle_cap=args.settle_cap,
    )
    client = await connect(settings)
    handle = await start_run(client, run_input, settings.task_queue, args.id)
    print(f"started {handle.id}\n  {ui_link(args.ui_url, settings.temporal_namespace, handle.id)}")
    if not (args.wait or args.dry_run):
        return 0
    with RunProgress(client, handle.id) as progress:
        report = await follow_run(handle, on_poll=progress.poll)
    return _finish(report, args, settings)


def _finish(report: ScenarioReport, args: argparse.Namespace, settings: Settings) -> int:
    if report.dry_run:
        for fault in report.faults():
            preview = fault.preview
            targets = ", ".join(t.name for t in preview.targets) if preview else ""
            print(
                f"  {fault.label:<22} {fault.verdict.value:<8} {targets}"
                + (f"  ({fault.reason})" if fault.reason else "")
            )
    else:
        print(print_table(report))
    files = write_report(
        report,
        Path(args.report_dir),
        archive=settings.report_archive,
        junit=Path(args.junit) if args.junit else None,
        ui_link=ui_link(args.ui_url, settings.temporal_namespace, report.workflow_id),
    )
    print(f"report: {files.html}\njunit: {files.junit}\njson: {files.json}")
    return EXIT_BY_VERDICT.get(report.verdict, 2)


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect(settings)
    handle = client.get_workflow_handle(args.workflow_id, result_type=ScenarioReport)
    return _finish(await handle.result(), args, settings)


async def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    client = None if args.archive_only else await connect(settings)
    runs = await load_history(client, settings.report_archive, args.scenario, args.last)
    print(history_table(runs))
    return 0


async def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    from control import schedule as sched

    client = await connect(settings)
    handle = client.get_schedule_handle(args.schedule_id)
    if args.action == "apply":
        from activities.scenario import scenario_of

        run_input = (
            build_input(args.scenario) if args.scenario else ScenarioInput(scenario=WEEKLY_SCENARIO)
        )
        options = ScheduleOptions.for_scenario(
            scenario_of(run_input),
            run_input,
            schedule_id=args.schedule_id,
            cron=args.cron,
            task_queue=settings.task_queue,
            pause_on_failure=args.pause_on_failure,
        )
        print(f"schedule {args.schedule_id} {await sched.apply_schedule(client, options)}")
    elif args.action == "describe":
        return await _describe_schedule(client, args.schedule_id)
    elif args.action == "pause":
        await handle.pause(note=args.note or "paused with starter.py")
    elif args.action == "unpause":
        await handle.unpause(note=args.note or "unpaused with starter.py")
    elif args.action == "trigger":
        await handle.trigger()
    elif args.action == "delete":
        await handle.delete()
    if args.action != "apply":
        print(f"schedule {args.schedule_id}: {args.action} done")
    return 0


async def _describe_schedule(client: Client, schedule_id: str) -> int:
    from control.schedule import describe_schedule

    description = await describe_schedule(client, schedule_id)
    if description is None:
        print(f"schedule {schedule_id} does not exist; create it with `schedule apply`")
        return 1
    schedule, info = description.schedule, description.info
    print(
        json.dumps(
            {
                "id": schedule_id,
                "cron": list(schedule.spec.cron_expressions),
                "paused": schedule.state.paused,
                "note": schedule.state.note,
                "overlap": schedule.policy.overlap.name,
                "next_runs": [t.isoformat() for t in info.next_action_times[:3]],
                "recent_runs": [
                    a.action.workflow_id
                    for a in info.recent_actions[-5:]
                    if hasattr(a.action, "workflow_id")
                ],
            },
            indent=2,
        )
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(ScenarioInput.model_json_schema(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from activities.scenario import ScenarioActivities

    run_input = build_input(args.scenario)
    resolved = ScenarioActivities(settings.backend, settings.allowed_namespaces).resolve(run_input)
    scenario = resolved.scenario
    print(f"{scenario.name}: valid, {len(scenario.steps)} steps, {scenario.fault_count} faults")
    for i, step in enumerate(scenario.steps):
        what = ", ".join(
            f"{f.action} {f.target.describe()} for {format_duration(f.duration)}"
            for f in step.faults
        )
        pause = format_duration(step.pause) if step.pause is not None else ""
        print(f"  {i:>2} {step.label:<28} {what or f'pause {pause}'}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from activities.faults.chaos_mesh.documents import render_scenario
    from activities.scenario import scenario_of

    scenario = scenario_of(build_input(args.scenario))
    print(render_scenario(scenario, run_id=args.run_id, form=args.form), end="")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from control.importer.write import import_files
    from models.durations import parse_duration

    result = import_files(
        [Path(f) for f in args.files],
        Path(args.out),
        skip_unsupported=args.skip_unsupported,
        default_duration=parse_duration(args.default_duration),
    )
    for issue in result.issues:
        print(issue, file=sys.stderr)
    for path in result.written:
        print(f"wrote {path}")
    if result.refused:
        print(
            "nothing written: what cannot be carried over is listed above "
            "(--skip-unsupported imports the rest)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from devstack.main_job import MainJobOptions, run_main_job

    options = MainJobOptions(
        scenario=args.scenario,
        duration_cap=args.duration_cap,
        settle_cap=args.settle_cap,
        faulty=args.faulty,
        replicas=args.replicas,
        work_dir=Path(args.work_dir),
        keep_running=args.keep_running,
        worker_command=args.worker_command,
        ready_url=args.ready_url,
        ready_exec=args.ready_exec,
    )
    return run_main_job(options)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starter.py", description=__doc__.splitlines()[0])
    p.add_argument("--address", dest="temporal_address", help="Temporal host:port")
    p.add_argument("--namespace", dest="temporal_namespace")
    p.add_argument("--task-queue", dest="task_queue")
    p.add_argument("--api-key", dest="temporal_api_key")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start a chaos run")
    run.add_argument("scenario", help="built-in scenario name, or a YAML/JSON file")
    run.add_argument("--backend", choices=["local", "chaos-mesh"])
    run.add_argument("--dry-run", action="store_true", help="preview targets; inject nothing")
    run.add_argument("--wait", action="store_true", help="follow the run and print the verdict")
    run.add_argument("--duration-cap", help="shorten every fault to at most this, e.g. 10s")
    run.add_argument("--settle-cap", help="shorten the settle window to at most this")
    run.add_argument("--id", help="workflow id (default: chaos-<scenario>-<random>)")
    run.add_argument("--report-dir", default=str(REPORT_DIR))
    run.add_argument("--junit", metavar="PATH", help="also write the JUnit XML here (for CI)")
    run.add_argument("--ui-url", default="http://localhost:8233", help="Temporal Web UI")

    report = sub.add_parser("report", help="print and write the report of a finished run")
    report.add_argument("workflow_id")
    report.add_argument("--report-dir", default=str(REPORT_DIR))
    report.add_argument("--junit", metavar="PATH", help="also write the JUnit XML here")
    report.add_argument("--ui-url", default="http://localhost:8233", help="Temporal Web UI")

    history = sub.add_parser("history", help="past runs, their verdicts and what changed")
    history.add_argument("--scenario", help="only this scenario's runs")
    history.add_argument("--last", type=int, default=10, help="how many runs (default 10)")
    history.add_argument(
        "--archive-only", action="store_true", help="read only the report archive, not Temporal"
    )

    schedule = sub.add_parser("schedule", help="the weekly Temporal Schedule")
    schedule.add_argument(
        "action", choices=["apply", "describe", "pause", "unpause", "trigger", "delete"]
    )
    schedule.add_argument("--id", dest="schedule_id", default=WEEKLY_SCHEDULE_ID)
    schedule.add_argument("--cron", help="cron in UTC (default: the scenario's, else '0 2 * * 0')")
    schedule.add_argument("--scenario", help=f"scenario or input file (default: {WEEKLY_SCENARIO})")
    schedule.add_argument(
        "--pause-on-failure",
        action="store_true",
        help="pause the schedule after a failed run (a human gate)",
    )
    schedule.add_argument("--note")

    sub.add_parser("schema", help="print the JSON Schema of the run input")
    validate = sub.add_parser("validate", help="validate a scenario; inject nothing")
    validate.add_argument("scenario")
    render = sub.add_parser("render", help="print the Chaos Mesh YAML of a scenario")
    render.add_argument("scenario")
    render.add_argument("--run-id", default="manual")
    render.add_argument(
        "--as",
        dest="form",
        choices=["auto", "objects", "workflow", "schedule"],
        default="auto",
        help="auto: a Schedule if the scenario has one, a Workflow if it pauses, else objects",
    )

    imp = sub.add_parser("import", help="Chaos Mesh YAML files -> scenario files")
    imp.add_argument("files", nargs="+", help="Chaos Mesh YAML files")
    imp.add_argument("--out", default="scenarios/imported", help="default: scenarios/imported")
    imp.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="skip what cannot be carried over (StatusCheck, Task, other kinds) and import "
        "the rest, instead of refusing",
    )
    imp.add_argument(
        "--default-duration", default="60s", help="bound for faults that have no duration"
    )

    demo = sub.add_parser("demo", help="the main job: everything local, one full scenario")
    demo.add_argument("scenario", nargs="?", default="full-resilience")
    demo.add_argument("--duration-cap")
    demo.add_argument("--settle-cap")
    demo.add_argument("--faulty", action="append", default=[], help="stand-in faulty mode")
    demo.add_argument("--replicas", type=int, default=3)
    demo.add_argument("--work-dir", default="runs/main-job")
    demo.add_argument("--keep-running", action="store_true", help="keep services up after")
    demo.add_argument(
        "--worker-command",
        help="run this worker instead of the stand-in, e.g. 'node dist/worker.js' (placeholders "
        "{replica} {temporal} {kafka} {http_port} {metrics_port}; env TEMPORAL_ADDRESS, ...)",
    )
    probe = demo.add_mutually_exclusive_group()
    probe.add_argument(
        "--ready-url",
        help="HTTP readiness probe, e.g. http://127.0.0.1:{http_port}/health/ready (the default)",
    )
    probe.add_argument("--ready-exec", help="exec readiness probe command")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python starter.py` / `bytebot-chaos`."""
    args = parser().parse_args(argv)
    overrides: dict[str, Any] = {
        k: v
        for k in ("temporal_address", "temporal_namespace", "task_queue", "temporal_api_key")
        if (v := getattr(args, k, None)) is not None
    }
    configure_logging("console")
    try:
        settings = Settings(**overrides)
        if args.command == "schema":
            return cmd_schema(args)
        if args.command == "render":
            return cmd_render(args)
        if args.command == "import":
            return cmd_import(args)
        if args.command == "validate":
            return cmd_validate(args, settings)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "run" and args.junit and not (args.wait or args.dry_run):
            print("--junit needs --wait: the verdict is known only at the end", file=sys.stderr)
            return 2
        commands = {
            "run": cmd_run,
            "report": cmd_report,
            "schedule": cmd_schedule,
            "history": cmd_history,
        }
        return asyncio.run(commands[args.command](args, settings))
    except BadInput as err:
        print(f"invalid input:\n{err}", file=sys.stderr)
        return 2
    except Exception as err:
        from temporalio.exceptions import ApplicationError

        if isinstance(err, ApplicationError) and err.non_retryable:
            print(f"invalid input:\n{err.message}", file=sys.stderr)
            return 2
        raise


def run() -> None:
    """Console entry point: exit without interpreter finalization once output is flushed.

    The Temporal SDK's native runtime threads can abort a finalizing interpreter
    ("PyGILState_Release ... must be current"); all work is done by then.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
