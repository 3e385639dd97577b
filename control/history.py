"""Past runs of a scenario: the report archive and Temporal visibility, merged.

Every finished report is archived as `<archive>/<scenario>/<started>-<workflow id>.json`, so the
trend outlives Temporal's retention; visibility adds runs whose report was never written here
(started elsewhere, or by the schedule). Reads only: it never starts or changes a run.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from models.history import RunDigest, changes, digest
from models.report import ScenarioReport, Verdict
from workflows import names

DEFAULT_ARCHIVE = Path("runs/archive")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def archive_report(report: ScenarioReport, archive: Path) -> Path:
    """Keep the report in the archive; its path there."""
    directory = archive / _safe(report.scenario)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = report.started_at.strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}-{_safe(report.workflow_id)}.json"
    path.write_text(report.model_dump_json())
    return path


def archived_reports(archive: Path, scenario: str | None = None) -> list[ScenarioReport]:
    """The archived reports (of one scenario), unreadable files skipped."""
    pattern = f"{_safe(scenario)}/*.json" if scenario else "*/*.json"
    reports = []
    for path in sorted(archive.glob(pattern)):
        try:
            reports.append(ScenarioReport.model_validate_json(path.read_text()))
        except (OSError, ValidationError):
            continue  # a file from an older schema or a half-written one: not a run to compare
    return reports


async def temporal_reports(client: Client, scenario: str | None, last: int) -> list[ScenarioReport]:
    """Reports of the last completed runs in Temporal visibility (newest first)."""
    query = f"WorkflowType='{names.SCENARIO_WORKFLOW}' AND ExecutionStatus='Completed'"
    if scenario:
        if "'" in scenario:
            raise ValueError(f"not a scenario name: {scenario!r}")
        query += f" AND ChaosScenario='{scenario}'"
    reports = []
    async for execution in client.list_workflows(query, limit=last * 2):
        handle = client.get_workflow_handle(
            execution.id, run_id=execution.run_id, result_type=ScenarioReport
        )
        try:
            reports.append(await handle.result())
        except (WorkflowFailureError, RPCError, ValueError):
            continue  # an older result schema, or the history is gone: the archive may have it
    return reports


def past_runs(reports: list[ScenarioReport], last: int) -> list[RunDigest]:
    """Digests of the last `last` real runs (no dry runs), one per workflow id, oldest first."""
    by_id = {
        r.workflow_id: digest(r) for r in reports if not r.dry_run and r.verdict != Verdict.DRY_RUN
    }
    runs = sorted(by_id.values(), key=lambda d: d.started_at)
    return runs[-last:] if last > 0 else runs


async def load_history(
    client: Client | None, archive: Path, scenario: str | None, last: int
) -> list[RunDigest]:
    """The last runs from the archive and (when connected) Temporal, oldest first."""
    reports = archived_reports(archive, scenario)
    if client is not None:
        reports += await temporal_reports(client, scenario, last)
    return past_runs(reports, last)


def history_table(runs: list[RunDigest]) -> str:
    """One line per run, oldest first, with what changed since the run before it."""
    if not runs:
        return "no finished runs found"
    id_width = max(len("workflow id"), *(len(r.workflow_id) for r in runs))
    head = f"{'started (UTC)':<17}  {'scenario':<18} {'workflow id':<{id_width}}  "
    lines = [head + f"{'verdict':<13}{'score':>6}  {'slowest':>8}  faults / changes"]
    previous: dict[str, RunDigest] = {}
    for run in runs:
        slowest = f"{run.slowest_recovery_s:.1f}s" if run.slowest_recovery_s is not None else "-"
        bad = [f"{label}={v.value}" for label, v in run.faults.items() if v is not Verdict.PASS]
        passed = sum(1 for v in run.faults.values() if v is Verdict.PASS)
        what = f"{passed}/{len(run.faults)} pass" + (f" ({', '.join(bad)})" if bad else "")
        lines.append(
            f"{run.started_at:%Y-%m-%d %H:%M}  {run.scenario:<18} {run.workflow_id:<{id_width}}  "
            f"{run.verdict.value:<13}{run.score_pct:>5.0f}%  {slowest:>8}  {what}"
        )
        lines += [f"{'':<19}changed: {c}" for c in changes(previous.get(run.scenario), run)]
        previous[run.scenario] = run
    return "\n".join(lines)
