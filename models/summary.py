"""The run summary shown in the Temporal Web UI (current details) and printed by the CLI."""

from __future__ import annotations

from datetime import datetime

from models.ledger import FaultRecord, FaultStatus
from models.report import ScenarioReport


def progress_summary(
    scenario: str,
    phase: str,
    ledger: list[FaultRecord],
    *,
    now: datetime | None = None,
    findings: list[str] | None = None,
) -> str:
    """A Markdown view of a run in progress: its phase, the ledger so far, findings so far."""
    lines = [
        f"## {scenario}: {phase}",
        "",
        "| fault | status | targets | until | left |",
        "|---|---|---|---|---|",
    ]
    for row in ledger:
        targets = ", ".join(t.name for t in row.targets)
        until = row.expires_at.strftime("%H:%M:%S") if row.expires_at else ""
        left = ""
        if now is not None and row.expires_at and row.status is FaultStatus.INJECTED:
            left = f"{max(0.0, (row.expires_at - now).total_seconds()):.0f}s"
        lines.append(f"| {row.label} | {row.status.value} | {targets} | {until} | {left} |")
    if findings:
        lines += ["", "Findings so far:", *(f"- {f}" for f in findings[-10:])]
    return "\n".join(lines)


def run_summary(report: ScenarioReport) -> str:
    """A Markdown summary: the verdict, each criterion, each fault with its time to recovery."""
    lines = [
        f"## {report.scenario}: **{report.verdict.value}**"
        + (f" ({report.score_pct:.0f}% of checks passed)" if not report.dry_run else ""),
    ]
    if report.reason:
        lines.append(f"Why: {report.reason}")
    if report.criteria and not report.dry_run:
        lines.append("")
        lines.append("| criterion | verdict | summary |")
        lines.append("|---|---|---|")
        lines += [
            f"| {c.criterion.value} | {c.verdict.value} | {c.summary} |" for c in report.criteria
        ]
    lines.append("")
    lines.append("| step | fault | verdict | recovery | targets / reason |")
    lines.append("|---|---|---|---|---|")
    for step in report.steps:
        if not step.faults:
            lines.append(f"| {step.index} | {step.label} | {step.verdict.value} | | |")
        for fault in step.faults:
            ttr = f"{fault.time_to_recovery_s:.1f}s" if fault.time_to_recovery_s is not None else ""
            if fault.preview is not None:
                detail = ", ".join(t.name for t in fault.preview.targets) or "no target matched"
            else:
                detail = fault.reason
            lines.append(
                f"| {step.index} | {fault.label} | {fault.verdict.value} | {ttr} | {detail} |"
            )
    return "\n".join(lines)
