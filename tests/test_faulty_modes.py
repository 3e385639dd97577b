"""Every defect of the stand-in, found and named: the main job against a faulty ByteBot.

Each case runs the real main job (dev server, broker, the stand-in's replicas behind the fault
proxy, the chaos worker with the local backend) on a one-fault scenario with the stand-in's
defect switched on, and reads the verdict as ByteBot's on-call engineer would: `fail`, on the
criterion the defect breaks, with a finding that names the cause. The README's table of
faulty modes lists the same rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.report import Criterion, Verdict
from tests.support.main_job import leftover_processes, run_main_job

pytestmark = pytest.mark.timeout(900)

POD_KILL = "steps: [{fault: {action: pod-kill, duration: 8s}}]"
PARTITION = "steps: [{fault: {action: network-partition, duration: 8s, peers: [temporal]}}]"
VERIFY = "verification: {settle: 40s, probe_interval: 3s}"

CASES = [
    # (mode, scenario steps, criterion that fails, what its finding says)
    (
        "lose-events",
        POD_KILL,
        Criterion.NO_DATA_LOSS,
        "GOAL_COMPLETED missing from Kafka: emitGoalEvent completed (attempt 1) but no record",
    ),
    ("reorder-events", POD_KILL, Criterion.EVENT_ORDERING, "with no STEP_STARTED"),
    ("fail-under-stress", POD_KILL, Criterion.NO_DATA_LOSS, "result-failed: status FAILED"),
    ("no-restart", POD_KILL, Criterion.AUTOMATIC_RECOVERY, "not back after"),
    (
        "wrong-result",
        POD_KILL,
        Criterion.NO_DATA_LOSS,
        "wrong-result: status COMPLETED with stepsCompleted=",
    ),
    ("stop-committing", POD_KILL, Criterion.AUTOMATIC_RECOVERY, "consumer lag did not drain"),
    ("stop-polling", PARTITION, Criterion.AUTOMATIC_RECOVERY, "is ready but has not polled"),
]


@pytest.mark.parametrize(("mode", "steps", "broken", "finding"), CASES, ids=[c[0] for c in CASES])
async def test_each_defect_fails_the_criterion_it_breaks_naming_the_cause(
    tmp_path: Path, mode: str, steps: str, broken: Criterion, finding: str
) -> None:
    scenario = tmp_path / f"{mode}.yaml"
    scenario.write_text(f"name: {mode}\n{steps}\n{VERIFY}\n")

    code, output, report = await run_main_job(
        tmp_path / "job", str(scenario), "--faulty", mode, caps=("8s", "40s")
    )

    assert code == 1, output[-3000:]
    assert report.verdict is Verdict.FAIL, report.reason
    (fault,) = report.faults()
    judged = next(c for c in fault.criteria if c.criterion is broken)
    assert judged.verdict is Verdict.FAIL, (judged.summary, fault.reason)
    assert any(finding in f for f in judged.findings), judged.findings
    assert fault.record and fault.record.status.value == "recovered"
    assert leftover_processes(tmp_path) == []
