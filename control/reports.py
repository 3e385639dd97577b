"""Reports of finished runs: JSON (the whole ScenarioReport), Markdown, HTML and JUnit XML.

The run's files go next to each other in one directory; the JSON is also archived (see
`control.history`) so the HTML report's trend and `starter.py history` outlive Temporal's
retention.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from control.history import archive_report, archived_reports, past_runs
from control.junit import write_junit
from control.report_html import render_html
from models.report import ScenarioReport
from models.summary import run_summary

#: Runs of the same scenario the HTML report's trend shows.
TREND_RUNS = 10


class ReportFiles(NamedTuple):
    """Where a run's report went."""

    json: Path
    markdown: Path
    html: Path
    junit: Path
    archived: Path | None


def write_report(
    report: ScenarioReport,
    directory: Path,
    *,
    archive: Path | None = None,
    junit: Path | None = None,
    ui_link: str | None = None,
) -> ReportFiles:
    """Write `<workflow id>.{json,md,html,junit.xml}` into directory and archive the JSON.

    Args:
        report: The finished run's report.
        directory: Where the run's files go.
        archive: The report archive; the trend is read from it, and the report kept there.
        junit: Where the JUnit XML goes (default: beside the others).
        ui_link: The run's page in the Temporal Web UI, linked from the HTML report.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = report.workflow_id.replace("/", "_")
    json_path = directory / f"{stem}.json"
    json_path.write_text(report.model_dump_json(indent=2))
    markdown = directory / f"{stem}.md"
    markdown.write_text(render_markdown(report))
    archived = (
        archive_report(report, archive) if archive is not None and not report.dry_run else None
    )
    trend = past_runs(archived_reports(archive, report.scenario), TREND_RUNS) if archive else []
    html = directory / f"{stem}.html"
    html.write_text(render_html(report, trend, ui_link))
    junit_path = write_junit(report, junit or directory / f"{stem}.junit.xml")
    return ReportFiles(json_path, markdown, html, junit_path, archived)


def render_markdown(report: ScenarioReport) -> str:
    """The summary, then each fault's criteria with findings and evidence."""
    lines = [run_summary(report), ""]
    for fault in report.faults():
        lines.append(f"### {fault.label} ({fault.action}): {fault.verdict.value}")
        lines.append(f"Expected: {fault.expected}")
        if fault.reason:
            lines.append(f"Why: {fault.reason}")
        if fault.record is not None:
            targets = ", ".join(f"{t.name}({t.uid})" for t in fault.record.targets) or "none"
            lines.append(f"Targets: {targets}")
            lines += [f"- evidence: {e}" for e in fault.record.evidence]
        for criterion in fault.criteria:
            lines.append(
                f"- **{criterion.criterion.value}**: {criterion.verdict.value}: {criterion.summary}"
            )
            lines += [f"  - finding: {x}" for x in criterion.findings]
            lines += [f"  - {x}" for x in criterion.evidence]
        lines.append("")
    return "\n".join(lines)


def print_table(report: ScenarioReport) -> str:
    """A plain-text table for terminals: per fault and per criterion verdicts, recovery time.

    Columns are as wide as their longest cell, so long step names never run into the verdict.
    """
    rows = [
        f"verdict: {report.verdict.value.upper()}  ({report.scenario}, "
        f"{report.score_pct:.0f}% of checks passed)"
    ]
    if report.reason:
        rows.append(f"why: {report.reason}")
    labels = [f.label for f in report.faults()] + [s.label for s in report.steps if not s.faults]
    width = max([len("fault"), *(len(x) for x in labels)]) + 2
    cols = [max(len(c.criterion.value), 13) + 2 for c in report.criteria]
    header = f"{'fault':<{width}}{'verdict':<14}{'recovery':>10}  " + "".join(
        f"{c.criterion.value:<{w}}" for c, w in zip(report.criteria, cols, strict=True)
    )
    rows += ["", header, "-" * len(header)]
    for step in report.steps:
        if not step.faults:
            rows.append(f"{step.label:<{width}}{step.verdict.value:<14}")
        for fault in step.faults:
            ttr = (
                f"{fault.time_to_recovery_s:.1f}s" if fault.time_to_recovery_s is not None else "-"
            )
            by_criterion = {c.criterion: c.verdict.value for c in fault.criteria}
            cells = "".join(
                f"{by_criterion.get(c.criterion, '-'):<{w}}"
                for c, w in zip(report.criteria, cols, strict=True)
            )
            rows.append(f"{fault.label:<{width}}{fault.verdict.value:<14}{ttr:>10}  {cells}")
    rows.append("")
    crit_width = max([len(c.criterion.value) for c in report.criteria], default=0) + 2
    rows += [
        f"{c.criterion.value:<{crit_width}}{c.verdict.value:<14}{c.summary}"
        for c in report.criteria
    ]
    return "\n".join(rows)
