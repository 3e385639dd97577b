"""The report's plots, drawn with matplotlib and returned as inline SVG text.

One figure per fault, with the fault's window (injected -> recovered) shaded on every panel:
goal-run starts accepted/failed, start and end-to-end latency, consumer lag, live pollers per
replica, replicas ready. Plus the trend of the last runs of a scenario. Figures are built with
the object API (`Figure`, no pyplot), so nothing global is touched and no display is needed.
Text stays text in the SVG (`svg.fonttype: none`): smaller files, and searchable.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.dates import DateFormatter, date2num
from matplotlib.figure import Figure

from models.history import RunDigest
from models.report import FaultReport
from models.timeline import FaultTimeline, PointSource, TimelinePoint

SHADE = "#f4a3a3"
STYLE: Any = {"svg.fonttype": "none", "font.size": 8, "axes.titlesize": 9}


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: drop the XML prolog and DOCTYPE


def _x(at: datetime) -> float:
    """A time in the date axis' unit (matplotlib's date2num is untyped)."""
    return float(date2num(at))  # type: ignore[no-untyped-call]


def _window(ax: Axes, fault: FaultReport, timeline: FaultTimeline) -> None:
    record = fault.record
    if record is not None and record.injected_at is not None:
        end = record.recovered_at or record.expires_at or record.injected_at
        ax.axvspan(
            _x(record.injected_at),
            _x(end),
            color=SHADE,
            alpha=0.35,
            label="fault window",
        )
    if timeline.back_at is not None:
        ax.axvline(_x(timeline.back_at), color="#2a7", linestyle="--", linewidth=1, label="back")


def _times(points: list[TimelinePoint]) -> list[datetime]:
    return [p.at for p in points]


def fault_figure(fault: FaultReport) -> str | None:
    """The fault's five panels as SVG, or None when it has no timeline (not run, dry run)."""
    timeline = fault.timeline
    if timeline is None or not timeline.points:
        return None
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 8), layout="constrained")
        axes = figure.subplots(5, 1, sharex=True)
    points = timeline.points
    ax = axes[0]
    bar = 1.5 / 86400  # 1.5 s wide, in the date axis' unit (days)
    ax.bar(_times(points), [p.starts_ok for p in points], width=bar, color="#2a7", label="accepted")
    ax.bar(
        _times(points),
        [-p.starts_failed for p in points],
        width=bar,
        color="#c33",
        label="failed (below 0)",
    )
    ax.set_title("goal-run starts during the probes")

    ax = axes[1]
    timed = [p for p in points if p.start_latency_s is not None]
    ax.plot(_times(timed), [p.start_latency_s for p in timed], "o-", label="start latency")
    for stats, source, name in (
        (timeline.latency_before, points[0].at, "end-to-end p50 before"),
        (timeline.latency_after, points[-1].at, "end-to-end p50 after"),
    ):
        if stats is not None and stats.p50_s is not None:
            ax.plot([source], [stats.p50_s], "s", markersize=7, label=name)
    ax.set_ylabel("s")
    ax.set_title("start and end-to-end latency")

    ax = axes[2]
    if timeline.lag:
        ax.step([s.at for s in timeline.lag], [s.total_lag for s in timeline.lag], where="post")
        if timeline.lag_baseline is not None:
            ax.axhline(timeline.lag_baseline, color="grey", linewidth=0.8, label="baseline")
    else:
        ax.text(0.5, 0.5, "no Kafka lag samples", transform=ax.transAxes, ha="center")
    ax.set_title("consumer lag (events)")

    ax = axes[3]
    replicas = sorted({name for p in points for name in p.pollers_by_replica})
    for name in replicas:
        ax.step(
            _times(points),
            [p.pollers_by_replica.get(name, 0) for p in points],
            where="post",
            label=name,
        )
    ax.step(_times(points), [p.pollers or 0 for p in points], "k:", where="post", label="all")
    ax.set_title("live pollers per replica")

    ax = axes[4]
    ready = [p for p in points if p.replicas_ready is not None]
    ax.step(_times(ready), [p.replicas_ready for p in ready], "o-", where="post", label="ready")
    if timeline.replicas_total:
        ax.axhline(timeline.replicas_total, color="grey", linewidth=0.8, label="replicas")
    ax.set_title("replicas ready")
    for ax in axes:
        _window(ax, fault, timeline)
        ax.legend(loc="upper right", fontsize=6)
        ax.grid(alpha=0.3)
    for p in points:
        if p.source is PointSource.RECOVERY:
            axes[-1].annotate("recovery check", (p.at, p.replicas_ready or 0), fontsize=6)
    figure.suptitle(f"{fault.label} ({fault.action}): {fault.verdict.value}")
    axes[-1].xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    return _svg(figure)


def trend_figure(runs: list[RunDigest]) -> str | None:
    """Score and the slowest time to recovery of the last runs, oldest first."""
    if len(runs) < 2:
        return None
    runs = sorted(runs, key=lambda r: r.started_at)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 2.5), layout="constrained")
        score, ttr = figure.subplots(1, 2)
    labels = [r.started_at.strftime("%m-%d %H:%M") for r in runs]
    score.plot(labels, [r.score_pct for r in runs], "o-")
    score.set_ylim(0, 105)
    score.set_title("score (% of checks passed)")
    ttr.plot(labels, [r.slowest_recovery_s or 0 for r in runs], "o-", color="#c60")
    ttr.set_title("slowest time to recovery (s)")
    for ax in (score, ttr):
        ax.tick_params(axis="x", labelrotation=30, labelsize=6)
        ax.grid(alpha=0.3)
    return _svg(figure)
