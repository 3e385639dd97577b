"""Reports of finished runs: a JSON file (the whole ScenarioReport) and a Markdown summary."""

from __future__ import annotations

from pathlib import Path

from models.report import ScenarioReport
from models.summary import run_summary


def write_report(report: ScenarioReport, directory: Path) -> Path:
    """Write `<workflow id>.json` and `.md` into directory; the Markdown file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = report.workflow_id.replace("/", "_")
    (directory / f"{stem}.json").write_text(report.model_dump_json(indent=2))
    markdown = directory / f"{stem}.md"
    markdown.write_text(render_markdown(report))
    return markdown


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
    """A plain-text table for terminals: per fault and per criterion verdicts, recovery time."""
    rows = [
        f"verdict: {report.verdict.value.upper()}  ({report.scenario}, "
        f"{report.score_pct:.0f}% of checks passed)"
    ]
    if report.reason:
        rows.append(f"why: {report.reason}")
    header = f"{'fault':<22}{'verdict':<14}{'recovery':>10}  " + "  ".join(
        f"{c.criterion.value:<20}" for c in report.criteria
    )
    rows += ["", header, "-" * len(header)]
    for step in report.steps:
        if not step.faults:
            rows.append(f"{step.label:<22}{step.verdict.value:<14}")
        for fault in step.faults:
            ttr = (
                f"{fault.time_to_recovery_s:.1f}s" if fault.time_to_recovery_s is not None else "-"
            )
            by_criterion = {c.criterion: c.verdict.value for c in fault.criteria}
            cells = "  ".join(f"{by_criterion.get(c.criterion, '-'):<20}" for c in report.criteria)
            rows.append(f"{fault.label:<22}{fault.verdict.value:<14}{ttr:>10}  {cells}")
    rows.append("")
    rows += [f"{c.criterion.value:<22}{c.verdict.value:<14}{c.summary}" for c in report.criteria]
    return "\n".join(rows)
