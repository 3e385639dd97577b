"""The main job end to end: `starter.py demo` against the real local stand-in of ByteBot.

Everything is real: the Temporal dev server, Kafka, the stand-in's replicas behind the fault
proxy, the chaos worker process with the local backend, and all eleven seed faults (capped to
a few seconds each). The same scenario passes on the healthy stand-in and fails, naming the
cause, when the stand-in has a defect (tests/test_faulty_modes.py, one per defect).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.report import Verdict
from tests.support.main_job import leftover_processes, run_main_job

pytestmark = pytest.mark.timeout(1200)


async def test_the_main_job_passes_on_the_healthy_stand_in(tmp_path: Path) -> None:
    code, output, report = await run_main_job(tmp_path)
    assert code == 0, output[-3000:]
    assert report.verdict is Verdict.PASS, report.reason
    faults = report.faults()
    assert len(faults) == 11
    assert all(f.time_to_recovery_s is not None for f in faults)
    assert all(f.record and f.record.status.value == "recovered" for f in faults)
    assert "verdict: PASS" in output and "report: " in output and "/namespaces/default/" in output
    assert leftover_processes(tmp_path) == []
