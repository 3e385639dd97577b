"""The main job end to end: `starter.py demo` against the real local stand-in of ByteBot.

Everything is real: the Temporal dev server, Kafka, the stand-in's replicas behind the fault
proxy, the chaos worker process with the local backend, and all eleven seed faults (capped to
a few seconds each). The same scenario passes on the healthy stand-in and fails, naming the
cause, when the stand-in loses events.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from models.report import Criterion, ScenarioReport, Verdict

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(1200)


async def run_main_job(work_dir: Path, *extra: str) -> tuple[int, str, ScenarioReport]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "starter.py"),
        "demo",
        "--duration-cap",
        "3s",
        "--settle-cap",
        "20s",
        "--work-dir",
        str(work_dir),
        *extra,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=1100)
    output = out.decode()
    report = await asyncio.to_thread(read_report, work_dir)
    return proc.returncode or 0, output, report


def read_report(work_dir: Path) -> ScenarioReport:
    (report_file,) = work_dir.glob("*/reports/*.json")
    return ScenarioReport.model_validate_json(report_file.read_text())


def leftover_processes(work_dir: Path) -> list[str]:
    """Processes still running whose command line mentions the job's work dir."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(work_dir) in text:
            found.append(text)
    return found


async def test_the_main_job_passes_on_the_healthy_stand_in(tmp_path: Path) -> None:
    code, output, report = await run_main_job(tmp_path)
    assert code == 0, output[-3000:]
    assert report.verdict is Verdict.PASS, report.reason
    faults = report.faults()
    assert len(faults) == 11
    assert all(f.time_to_recovery_s is not None for f in faults)
    assert all(f.record and f.record.status.value == "recovered" for f in faults)
    assert "verdict: PASS" in output and "report: " in output and "/namespaces/default/" in output
    assert leftover_processes(tmp_path) == []


async def test_the_same_scenario_fails_naming_the_cause_when_events_are_lost(
    tmp_path: Path,
) -> None:
    code, output, report = await run_main_job(tmp_path, "--faulty", "lose-events")
    assert code == 1
    assert report.verdict is Verdict.FAIL
    ordering = next(c for c in report.criteria if c.criterion is Criterion.EVENT_ORDERING)
    assert ordering.verdict is Verdict.FAIL
    assert any("no terminal event" in finding for finding in ordering.findings)
    assert all(f.record and f.record.status.value == "recovered" for f in report.faults())
    assert leftover_processes(tmp_path) == []
