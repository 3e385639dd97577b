"""Running the main job (`starter.py demo`) from tests, and reading what it left."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from models.report import ScenarioReport

REPO = Path(__file__).resolve().parent.parent.parent


async def run_main_job(
    work_dir: Path, *extra: str, caps: tuple[str, str] = ("5s", "40s")
) -> tuple[int, str, ScenarioReport]:
    """`starter.py demo` with short caps: its exit code, its output and its report."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "starter.py"),
        "demo",
        "--duration-cap",
        caps[0],
        "--settle-cap",
        caps[1],
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
