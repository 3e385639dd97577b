"""The HTML report of a run: one self-contained file (inline CSS and SVG, no script, no fetch).

It shows the verdict per fault and criterion with findings and evidence, a plot per fault with
the fault's window shaded (`control.plots`), and the trend of the last runs of the scenario.
Opens offline: nothing in it refers to another file or host but the optional Web UI link.
"""

from __future__ import annotations

from html import escape

from control.plots import fault_figure, trend_figure
from models.history import RunDigest, changes
from models.report import FaultReport, ScenarioReport, Verdict

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.verdict { font-weight: bold; padding: 0 .4em; border-radius: 3px; white-space: nowrap; }
.pass { background: #d7f5dd; } .fail { background: #f9d0d0; }
.inconclusive, .aborted { background: #fbe7c0; } .not-run, .dry-run { background: #eee; }
section.fault { border-top: 2px solid #ddd; margin-top: 2em; }
.plot svg { max-width: 100%; height: auto; }
ul.findings li { color: #a00; } ul.evidence li { color: #555; }
"""


def _badge(verdict: Verdict) -> str:
    return f'<span class="verdict {verdict.value}">{escape(verdict.value)}</span>'


def _list(items: list[str], css: str) -> str:
    if not items:
        return ""
    return f'<ul class="{css}">' + "".join(f"<li>{escape(x)}</li>" for x in items) + "</ul>"


def _ttr(fault: FaultReport) -> str:
    return f"{fault.time_to_recovery_s:.1f}s" if fault.time_to_recovery_s is not None else "-"


def _overview(report: ScenarioReport) -> str:
    """One row per fault, one column per criterion."""
    criteria = [c.criterion for c in report.criteria]
    head = "".join(f"<th>{escape(c.value)}</th>" for c in criteria)
    rows = []
    for step in report.steps:
        if not step.faults:
            rows.append(
                f"<tr><td>{step.index}</td><td>{escape(step.label)}</td>"
                f"<td>{_badge(step.verdict)}</td><td></td>" + "<td></td>" * len(criteria) + "</tr>"
            )
        for fault in step.faults:
            verdicts = {c.criterion: c.verdict for c in fault.criteria}
            cells = "".join(
                f"<td>{_badge(verdicts[c]) if c in verdicts else '-'}</td>" for c in criteria
            )
            rows.append(
                f'<tr class="fault-row"><td>{step.index}</td>'
                f'<td><a href="#{escape(fault.fault_id)}">{escape(fault.label)}</a></td>'
                f"<td>{_badge(fault.verdict)}</td><td>{_ttr(fault)}</td>{cells}</tr>"
            )
    return (
        "<table><tr><th>step</th><th>fault</th><th>verdict</th><th>recovery</th>"
        + head
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def _fault_section(fault: FaultReport) -> str:
    parts = [
        f'<section class="fault" id="{escape(fault.fault_id)}">',
        f"<h3>{escape(fault.label)} ({escape(fault.action)}) {_badge(fault.verdict)}</h3>",
        f"<p>Expected: {escape(fault.expected)}</p>",
    ]
    if fault.reason:
        parts.append(f"<p>Why: {escape(fault.reason)}</p>")
    record = fault.record
    if record is not None:
        targets = ", ".join(f"{t.name} ({t.uid})" for t in record.targets) or "none"
        window = ""
        if record.injected_at:
            end = f"{record.recovered_at:%H:%M:%S}" if record.recovered_at else "?"
            window = f"; injected {record.injected_at:%H:%M:%S}, recovered {end}"
        parts.append(
            f"<p>Target: {escape(record.target)}; hit: {escape(targets)}{escape(window)}; "
            f"time to recovery {_ttr(fault)}</p>"
        )
        parts.append(_list(record.evidence, "evidence"))
    plot = fault_figure(fault)
    if plot is not None:
        parts.append(f'<div class="plot">{plot}</div>')
    rows = [
        f"<tr><td>{escape(c.criterion.value)}</td><td>{_badge(c.verdict)}</td>"
        f"<td>{escape(c.summary)}{_list(c.findings, 'findings')}{_list(c.evidence, 'evidence')}"
        "</td></tr>"
        for c in fault.criteria
    ]
    if rows:
        parts.append(
            "<table><tr><th>criterion</th><th>verdict</th><th>summary, findings, evidence</th>"
            "</tr>" + "".join(rows) + "</table>"
        )
    parts.append("</section>")
    return "".join(parts)


def _trend(report: ScenarioReport, runs: list[RunDigest]) -> str:
    """The last runs of the same scenario, oldest first, with what changed."""
    runs = sorted((r for r in runs if r.scenario == report.scenario), key=lambda r: r.started_at)
    if not runs:
        return ""
    rows, previous = [], None
    for run in runs:
        mark = " (this run)" if run.workflow_id == report.workflow_id else ""
        what = "; ".join(changes(previous, run)) or ("-" if previous else "first run")
        rows.append(
            f"<tr><td>{run.started_at:%Y-%m-%d %H:%M}</td>"
            f"<td>{escape(run.workflow_id)}{mark}</td><td>{_badge(run.verdict)}</td>"
            f"<td>{run.score_pct:.0f}%</td><td>{escape(what)}</td></tr>"
        )
        previous = run
    plot = trend_figure(runs)
    return (
        '<h2 id="trend">Trend: the last runs of this scenario</h2>'
        + (f'<div class="plot">{plot}</div>' if plot else "")
        + "<table><tr><th>started (UTC)</th><th>run</th><th>verdict</th><th>score</th>"
        "<th>changed since the run before</th></tr>" + "".join(rows) + "</table>"
    )


def render_html(
    report: ScenarioReport, runs: list[RunDigest] | None = None, ui_link: str | None = None
) -> str:
    """The whole report as one HTML document."""
    title = f"{report.scenario}: {report.verdict.value}"
    link = f' &middot; <a href="{escape(ui_link)}">Temporal Web UI</a>' if ui_link else ""
    criteria = "".join(
        f"<tr><td>{escape(c.criterion.value)}</td><td>{_badge(c.verdict)}</td>"
        f"<td>{escape(c.summary)}</td></tr>"
        for c in report.criteria
    )
    body = [
        f"<h1>Chaos run {escape(report.scenario)} {_badge(report.verdict)}</h1>",
        f"<p>{escape(report.workflow_id)} &middot; backend {escape(report.backend)} &middot; "
        f"{report.started_at:%Y-%m-%d %H:%M:%S} to {report.ended_at:%H:%M:%S} UTC{link}</p>",
        f'<p class="score">{report.score_pct:.0f}% of checks passed</p>',
    ]
    if report.reason:
        body.append(f'<p class="reason">Why: {escape(report.reason)}</p>')
    if criteria:
        body.append(
            "<h2>Criteria</h2><table><tr><th>criterion</th><th>verdict</th><th>summary</th></tr>"
            + criteria
            + "</table>"
        )
    body += ["<h2>Faults</h2>", _overview(report), _trend(report, runs or [])]
    body += [_fault_section(f) for f in report.faults()]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
