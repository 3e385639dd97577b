"""When a scenario runs by itself: a Chaos Mesh Schedule's settings, as a scenario carries them.

`starter.py schedule apply` turns them into a Temporal Schedule (cron in UTC; `Forbid` becomes
overlap SKIP, `Allow` ALLOW_ALL; `starting_deadline` the catch-up window), and `starter.py
render` back into a Chaos Mesh `Schedule`. A manual run ignores them.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from models.base import Frozen
from models.durations import Duration


class ConcurrencyPolicy(StrEnum):
    """Chaos Mesh's `concurrencyPolicy`: may a run start while the last one still runs?"""

    FORBID = "Forbid"
    ALLOW = "Allow"


class ScheduleSettings(Frozen):
    """A recurring run of the scenario (Chaos Mesh `Schedule`)."""

    cron: str = Field(
        min_length=1,
        description="Cron expression in UTC (Chaos Mesh `schedule`), e.g. '0 2 * * 0'.",
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        ConcurrencyPolicy.FORBID,
        description="Forbid: never two runs at once (Temporal overlap SKIP); Allow: ALLOW_ALL.",
    )
    history_limit: int | None = Field(
        None,
        ge=1,
        description="Chaos Mesh `historyLimit`, kept so the Schedule renders back the same; a "
        "Temporal Schedule keeps its runs for the namespace's retention instead.",
    )
    starting_deadline: Duration | None = Field(
        None,
        description="Chaos Mesh `startingDeadlineSeconds`: a missed run older than this is "
        "skipped (the Temporal Schedule's catch-up window).",
    )
