"""The product as people use it: `temporal workflow start`, `starter.py`, a worker process.

Real dev server, real `temporal` CLI, real worker processes (one is SIGKILLed mid-step).
The fault backend is the stand-in marker backend (see tests/support/standins.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio.client import Client

from devstack.temporal import TemporalDevServer, temporal_cli
from models.report import ScenarioReport, Verdict
from models.scenario import ScenarioInput
from tests.conftest import assert_eventually
from tests.support.scenario_runs import Harness, pod_kill, scenario
from tests.support.standins import MarkerBackend
from workflows.scenario import ChaosScenarioWorkflow

REPO = Path(__file__).resolve().parent.parent


def start_worker_process(address: str, task_queue: str, marker_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_proc", address, task_queue, str(marker_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


async def starter(
    server: TemporalDevServer, *args: str, task_queue: str = "bytebot-chaos", cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run starter.py without blocking the event loop (the test's worker runs on it)."""
    env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "CHAOS_TASK_QUEUE": task_queue}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "starter.py"),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return subprocess.CompletedProcess(list(args), proc.returncode or 0, out.decode(), err.decode())


async def test_a_dry_run_from_the_temporal_cli_lists_all_eleven_seed_faults(
    harness: Harness, temporal_server: TemporalDevServer, client: Client
) -> None:
    workflow_id = f"dry-{uuid.uuid4()}"
    # Exactly what a person types; run off the event loop, which carries the test's worker.
    await asyncio.to_thread(
        subprocess.run,
        [
            str(temporal_cli()),
            "workflow",
            "start",
            "--address",
            temporal_server.address,
            "--task-queue",
            harness.task_queue,
            "--type",
            "ChaosScenarioWorkflow",
            "--workflow-id",
            workflow_id,
            "--input",
            '{"scenario": "full-resilience", "dry_run": true}',
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    report = await client.get_workflow_handle(workflow_id, result_type=ScenarioReport).result()
    assert report.verdict is Verdict.DRY_RUN
    faults = report.faults()
    assert [f.action for f in faults] == [
        "pod-kill",
        "pod-failure",
        "container-kill",
        "network-delay",
        "network-loss",
        "network-partition",
        "network-bandwidth",
        "dns-error",
        "cpu-stress",
        "memory-stress",
        "combined-stress",
    ]
    assert all(f.preview and [t.name for t in f.preview.targets] == ["replica-0"] for f in faults)
    assert harness.backend.injected() == [] and report.ledger == []


async def test_starter_run_waits_prints_the_verdict_and_writes_a_report(
    harness: Harness, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    scenario_file = tmp_path / "smoke.json"
    scenario_file.write_text(
        json.dumps({"scenario": scenario(pod_kill("1s")).model_dump(mode="json")})
    )
    result = await starter(
        temporal_server,
        "run",
        str(scenario_file),
        "--wait",
        "--report-dir",
        str(tmp_path / "reports"),
        task_queue=harness.task_queue,
    )
    assert result.returncode == 0, result.stderr
    assert "verdict: PASS" in result.stdout
    reports = list((tmp_path / "reports").glob("*.json"))
    assert len(reports) == 1
    assert ScenarioReport.model_validate_json(reports[0].read_text()).verdict is Verdict.PASS


async def test_starter_rejects_bad_input_before_starting_anything(
    temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - fault: {action: pod-kill, duration: forever}\n")
    result = await starter(temporal_server, "run", str(bad))
    assert result.returncode == 2
    assert "steps.0.faults.0.pod-kill.duration" in result.stderr
    assert "not a duration" in result.stderr


async def test_schedule_apply_twice_leaves_one_weekly_schedule(
    temporal_server: TemporalDevServer, client: Client
) -> None:
    schedule_id = f"weekly-{uuid.uuid4().hex[:6]}"
    first = await starter(temporal_server, "schedule", "apply", "--id", schedule_id)
    second = await starter(
        temporal_server, "schedule", "apply", "--id", schedule_id, "--pause-on-failure"
    )
    assert first.returncode == 0 and "created" in first.stdout, first.stderr
    assert second.returncode == 0 and "updated" in second.stdout, second.stderr
    ids = [s.id async for s in await client.list_schedules() if s.id == schedule_id]
    assert ids == [schedule_id]
    description = await client.get_schedule_handle(schedule_id).describe()
    # The server stores the cron as a calendar: ByteBot's Sundays at 02:00 UTC, a week apart.
    (calendar,) = description.schedule.spec.calendars
    assert (calendar.day_of_week[0].start, calendar.hour[0].start) == (0, 2)
    assert description.schedule.spec.time_zone_name == "UTC"
    first_run, second_run = description.info.next_action_times[:2]
    assert (second_run - first_run).days == 7
    assert description.schedule.policy.pause_on_failure
    assert description.schedule.policy.overlap.name == "SKIP"
    described = await starter(temporal_server, "schedule", "describe", "--id", schedule_id)
    assert '"paused": false' in described.stdout
    assert (
        await starter(temporal_server, "schedule", "pause", "--id", schedule_id)
    ).returncode == 0
    assert (await client.get_schedule_handle(schedule_id).describe()).schedule.state.paused
    assert (
        await starter(temporal_server, "schedule", "delete", "--id", schedule_id)
    ).returncode == 0


async def test_a_worker_killed_mid_step_is_replaced_and_the_run_completes(
    client: Client, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    marker_dir, task_queue = tmp_path / "faults", f"chaos-{uuid.uuid4()}"
    backend = MarkerBackend(marker_dir)
    first = start_worker_process(temporal_server.address, task_queue, marker_dir)
    handle = await client.start_workflow(
        ChaosScenarioWorkflow.run,
        ScenarioInput(scenario=scenario(pod_kill("15s"), pod_kill("1s", name="b"))),  # noqa: E501
        id=f"t-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await assert_eventually(lambda: backend.injected(), timeout_s=20)
    # No graceful shutdown: the worker just dies. Its sticky queue times out after ~10s, so
    # the 15s hold still leaves the new worker time for the checks during the fault.
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = start_worker_process(temporal_server.address, task_queue, marker_dir)
    try:
        report: ScenarioReport = await handle.result()
    finally:
        os.killpg(second.pid, signal.SIGTERM)
    assert report.verdict is Verdict.PASS, report.reason
    assert [r.status.value for r in report.ledger] == ["recovered", "recovered"]
    assert backend.injected() == []
