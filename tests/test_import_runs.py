"""An imported Chaos Mesh Workflow runs on the local backend to a verdict, end to end.

Everything is real: `starter.py import` of a Workflow written for this test
(tests/data/chaos-mesh/local-run-workflow.yaml: a Suspend, then in parallel a worker pod kill
and a delay toward the Temporal frontend pods, chosen by a `target` selector in namespace
temporal), then `starter.py demo`
of the imported file (the Temporal dev server, Kafka, the stand-in behind the fault proxy, the
chaos worker with the local backend), its durations capped so the run is short.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.report import Verdict
from starter import main
from tests.support.main_job import leftover_processes, run_main_job

pytestmark = pytest.mark.timeout(600)
WORKFLOW = Path(__file__).resolve().parent / "data" / "chaos-mesh" / "local-run-workflow.yaml"


async def test_an_imported_workflow_runs_on_the_local_backend_to_a_verdict(tmp_path: Path) -> None:
    out = tmp_path / "imported"
    assert main(["import", str(WORKFLOW), "--out", str(out)]) == 0
    scenario = out / "local-run.yaml"
    code, output, report = await run_main_job(tmp_path / "job", str(scenario), caps=("3s", "15s"))
    assert report.scenario == "local-run"
    assert report.verdict is Verdict.PASS, (report.reason, output[-3000:])
    assert code == 0
    [pause, step] = report.steps
    assert pause.label == "settle-first" and pause.verdict is Verdict.PASS
    kill, delay = sorted(step.faults, key=lambda f: f.action, reverse=True)
    assert (kill.action, delay.action) == ("pod-kill", "network-delay")
    for fault in (kill, delay):  # each took effect, held (capped), was recovered, passed
        assert fault.verdict is Verdict.PASS, fault.reason
        assert fault.record is not None and fault.record.status.value == "recovered"
        assert fault.time_to_recovery_s is not None
    # The sibling's pod kill restarts a replica while the delay holds: normal in this step,
    # not "unexpected replica-restart for this chaos type" (the delay alone tolerates none).
    assert delay.record is not None
    evidence = " ".join(delay.record.evidence)
    assert "proxy rule delay 100ms +-20ms (to) on replica-0/temporal" in evidence, evidence
    assert "traffic touched since injection (chunks delayed)" in evidence, evidence
    assert leftover_processes(tmp_path / "job") == []
