"""The trend of a scenario: one digest per past run, and what changed from one to the next.

Pure: digests come from `ScenarioReport`s (archived files or Temporal results); the CLI's
`history` command and the HTML report's trend section both read these.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.base import Frozen
from models.report import ScenarioReport, Verdict

#: A time to recovery changes noticeably when it moves by both this factor and this much.
TTR_FACTOR, TTR_MIN_S = 1.5, 2.0


class RunDigest(Frozen):
    """One past run in a line: verdict, score, each fault's verdict and time to recovery."""

    workflow_id: str
    scenario: str
    started_at: datetime
    verdict: Verdict
    score_pct: float = 0.0
    faults: dict[str, Verdict] = Field(default_factory=dict, description="Label -> verdict.")
    recovery_s: dict[str, float] = Field(
        default_factory=dict, description="Label -> time to recovery, where measured."
    )

    @property
    def slowest_recovery_s(self) -> float | None:
        """The longest time to recovery of the run."""
        return max(self.recovery_s.values(), default=None)


def digest(report: ScenarioReport) -> RunDigest:
    """The digest of one run's report."""
    faults = report.faults()
    return RunDigest(
        workflow_id=report.workflow_id,
        scenario=report.scenario,
        started_at=report.started_at,
        verdict=report.verdict,
        score_pct=report.score_pct,
        faults={f.label: f.verdict for f in faults},
        recovery_s={
            f.label: round(f.time_to_recovery_s, 1)
            for f in faults
            if f.time_to_recovery_s is not None
        },
    )


def changes(previous: RunDigest | None, current: RunDigest) -> list[str]:
    """What changed since the previous run of the same scenario, in words."""
    if previous is None:
        return []
    found = []
    if previous.verdict is not current.verdict:
        found.append(f"verdict {previous.verdict.value} -> {current.verdict.value}")
    if abs(previous.score_pct - current.score_pct) >= 0.5:
        found.append(f"score {previous.score_pct:.0f}% -> {current.score_pct:.0f}%")
    for label, verdict in current.faults.items():
        before = previous.faults.get(label)
        if before is None:
            found.append(f"{label}: new")
        elif before is not verdict:
            found.append(f"{label}: {before.value} -> {verdict.value}")
    found += [f"{label}: gone" for label in previous.faults if label not in current.faults]
    for label, now in current.recovery_s.items():
        then = previous.recovery_s.get(label)
        if then is None:
            continue
        slower, faster = now >= then * TTR_FACTOR, then >= now * TTR_FACTOR
        if (slower or faster) and abs(now - then) >= TTR_MIN_S:
            found.append(f"{label}: recovery {then:.1f}s -> {now:.1f}s")
    return found
