"""A retried recovery check does not count the time its dead worker was away against the system.

Found by tests/test_kill_every_phase.py: a chaos worker SIGKILLed during `await_recovery` left
its retry (20 s later, the probes' heartbeat timeout) too little of a 30 s settle window for the
recovery canary it had started, so an orchestrator's death read as "did not recover by itself".
These tests drive the resume arithmetic through a real `ActivityEnvironment`.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from temporalio.testing import ActivityEnvironment

from activities.verify.recovery import BEAT_AT, LOST, POLLERS, resume_point

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def resumed(attempt: int, details: list[object]) -> tuple[dict[str, datetime], timedelta]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        attempt=attempt,
        heartbeat_details=details,
        scheduled_time=NOW - timedelta(seconds=25),
    )
    return env.run(resume_point, NOW)


def test_the_gap_since_the_last_heartbeat_is_added_to_what_earlier_retries_lost() -> None:
    held = (NOW - timedelta(seconds=30)).isoformat()
    beat = {POLLERS: held, BEAT_AT: (NOW - timedelta(seconds=20)).isoformat(), LOST: 5.0}
    first, lost = resumed(3, [beat])
    assert first == {POLLERS: NOW - timedelta(seconds=30)}  # the stamps are not conditions
    assert lost == timedelta(seconds=25)


def test_an_attempt_that_died_before_its_first_heartbeat_lost_all_its_time() -> None:
    assert resumed(2, []) == ({}, timedelta(seconds=25))
    assert resumed(1, []) == ({}, timedelta(0))  # a first attempt lost nothing
