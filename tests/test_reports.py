"""Reports a platform team reads: the HTML file with its plots, JUnit XML, the trend, the ledger.

Runs go through the real dev server with the stand-in marker backend and healthy probes
(tests/support/standins.py); the report files are read back as a person or CI would.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from control.history import archive_report, load_history
from control.junit import junit_xml
from control.report_html import render_html
from control.reports import print_table, write_report
from devstack.temporal import TemporalDevServer
from models.history import changes, digest
from models.ledger import FaultRecord, FaultStatus, ReplicaSet, TargetRef
from models.observations import Baseline, HoldProbe, RecoveryCheck
from models.report import (
    Criterion,
    CriterionResult,
    FaultReport,
    ScenarioReport,
    StepReport,
    Verdict,
)
from models.scenario import ScenarioInput
from models.timeline import fault_timeline, pollers_by_replica
from tests.support.scenario_runs import Harness, pod_kill, scenario

REPO = Path(__file__).resolve().parent.parent

T0 = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)
REPLICAS = ReplicaSet(
    replicas=[TargetRef(name=f"replica-{i}", uid=str(100 + i), ready=True) for i in range(3)]
)


def _fault(label: str, verdict: Verdict, ttr: float, findings: list[str]) -> FaultReport:
    injected = T0 + timedelta(seconds=10)
    record = FaultRecord(
        fault_id=f"chaos-x-00-{label}",
        step=0,
        label=label,
        action="pod-kill",
        target="app=worker",
        status=FaultStatus.RECOVERED,
        injected_at=injected,
        recovered_at=injected + timedelta(seconds=30),
        targets=[REPLICAS.replicas[0]],
    )
    probes = [
        HoldProbe(
            at=injected + timedelta(seconds=s),
            canary_starts_ok=1 if s != 15 else 0,
            canary_starts_failed=1 if s == 15 else 0,
            pollers=2,
            start_latency_s=0.1 * s,
            replicas_ready=2,
            replicas_total=3,
            live_pollers=["replica-1/101", "replica-2/102"],
        )
        for s in (5, 15, 25)
    ]
    timeline = fault_timeline(
        record,
        Baseline(taken_at=T0, pollers=3, replicas=REPLICAS),
        probes,
        RecoveryCheck(recovered=True, time_to_recovery_s=ttr, pollers=3, replicas=REPLICAS),
    )
    criteria = [
        CriterionResult(
            criterion=Criterion.NO_DATA_LOSS,
            verdict=verdict,
            summary="2 goal runs lost" if findings else "nothing lost",
            findings=findings,
            evidence=["checked 12 goal runs"],
        ),
        CriterionResult(
            criterion=Criterion.AUTOMATIC_RECOVERY, verdict=Verdict.PASS, summary="back"
        ),
    ]
    return FaultReport(
        fault_id=record.fault_id,
        label=label,
        action="pod-kill",
        expected="continues on other workers",
        verdict=verdict,
        criteria=criteria,
        time_to_recovery_s=ttr,
        record=record,
        timeline=timeline,
    )


def _report(workflow_id: str, started: datetime, *faults: FaultReport) -> ScenarioReport:
    verdict = Verdict.FAIL if any(f.verdict is Verdict.FAIL for f in faults) else Verdict.PASS
    return ScenarioReport(
        scenario="weekly",
        workflow_id=workflow_id,
        backend="local",
        started_at=started,
        ended_at=started + timedelta(minutes=2),
        verdict=verdict,
        steps=[StepReport(index=0, label="faults", verdict=verdict, faults=list(faults))],
        criteria=[c for c in faults[0].criteria],
        score_pct=50.0 if verdict is Verdict.FAIL else 100.0,
    )


async def starter(
    server: TemporalDevServer,
    *args: str,
    task_queue: str = "bytebot-chaos",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run starter.py off the event loop (the test's worker runs on it)."""
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": server.address,
        "CHAOS_TASK_QUEUE": task_queue,
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "starter.py"),
        *args,
        env=environment,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    return subprocess.CompletedProcess(list(args), proc.returncode or 0, out.decode(), err.decode())


def test_pollers_are_counted_per_replica_by_name_or_pid_token() -> None:
    counts = pollers_by_replica(["replica-1/555", "102@host", "9@replica-10", "x"], REPLICAS)
    assert counts == {"replica-0": 0, "replica-1": 1, "replica-2": 1, "other": 2}


def test_the_html_report_is_self_contained_with_a_shaded_plot_per_fault() -> None:
    report = _report(
        "run-1",
        T0,
        _fault("settle-after-pod-faults-and-more", Verdict.PASS, 4.0, []),
        _fault("pod-kill", Verdict.FAIL, 9.0, ["gr-7: failed: worker lost"]),
    )
    page = render_html(report, [digest(report)], ui_link="http://127.0.0.1:8233/x")
    # One inline SVG per fault, each with the window shaded and all five panels.
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        assert "fault window" in svg
        for title in ("goal-run starts", "latency", "consumer lag", "pollers per replica"):
            assert title in svg
        assert "replica-1" in svg and "replicas ready" in svg
    assert "gr-7: failed: worker lost" in page and "checked 12 goal runs" in page
    # Nothing to fetch: no script, stylesheet, image or font from anywhere.
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"(src|href)=\"(?!#|http://127\.0\.0\.1:8233/x)", page)
    assert len(page) < 600_000, len(page)


def test_junit_has_a_testcase_per_fault_and_criterion_and_failures_carry_findings() -> None:
    report = _report(
        "run-1",
        T0,
        _fault("a", Verdict.PASS, 1.0, []),
        _fault("b", Verdict.FAIL, 1.0, ["gr-7: failed"]),
    )
    suites = ET.fromstring(junit_xml(report))
    cases = suites.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("weekly.a", "no-data-loss"),
        ("weekly.a", "automatic-recovery"),
        ("weekly.b", "no-data-loss"),
        ("weekly.b", "automatic-recovery"),
    ]
    assert suites.get("tests") == "4" and suites.get("failures") == "1"
    failure = cases[2].find("failure")
    assert failure is not None and "finding: gr-7: failed" in (failure.text or "")


def test_the_terminal_table_keeps_long_step_names_apart_from_their_verdict() -> None:
    report = _report("run-1", T0, _fault("settle-after-pod-faults", Verdict.PASS, 1.0, []))
    assert "settle-after-pod-faults  pass" in print_table(report)


def test_changes_name_the_verdicts_and_recoveries_that_moved() -> None:
    before = digest(_report("r1", T0, _fault("a", Verdict.PASS, 2.0, [])))
    after = digest(_report("r2", T0 + timedelta(days=7), _fault("a", Verdict.FAIL, 9.0, ["x"])))
    assert changes(before, after) == [
        "verdict pass -> fail",
        "score 100% -> 50%",
        "a: pass -> fail",
        "a: recovery 2.0s -> 9.0s",
    ]


async def test_history_lists_archived_and_temporal_runs_and_what_changed(
    harness: Harness, temporal_server: TemporalDevServer, client: Client, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    # An old run whose Temporal history is gone (retention): only the archive knows it.
    old = _report("weekly-old", T0, _fault("pod-kill", Verdict.FAIL, 9.0, ["lost"]))
    name = f"hist-{uuid.uuid4().hex[:6]}"  # the dev server is shared: runs of its own only
    archive_report(old.model_copy(update={"scenario": name}), archive)
    handle = await harness.start(ScenarioInput(scenario=scenario(pod_kill("1s"), name=name)))
    fresh: ScenarioReport = await handle.result()
    runs = await load_history(client, archive, name, 5)
    assert [r.workflow_id for r in runs] == ["weekly-old", fresh.workflow_id]
    assert "verdict fail -> pass" in changes(runs[0], runs[1])
    result = await starter(
        temporal_server,
        "history",
        "--scenario",
        name,
        "--last",
        "5",
        env={"CHAOS_REPORT_ARCHIVE": str(archive)},
    )
    assert result.returncode == 0, result.stderr
    assert "weekly-old" in result.stdout and fresh.workflow_id in result.stdout
    assert "changed: verdict fail -> pass" in result.stdout


async def test_run_wait_junit_writes_every_report_and_prints_their_paths(
    harness: Harness, temporal_server: TemporalDevServer, tmp_path: Path
) -> None:
    scenario_file = tmp_path / "smoke.json"
    scenario_file.write_text(
        ScenarioInput(scenario=scenario(pod_kill("2s"), pod_kill("1s", name="b"))).model_dump_json()
    )
    junit = tmp_path / "ci" / "chaos.xml"
    result = await starter(
        temporal_server,
        "run",
        str(scenario_file),
        "--wait",
        "--junit",
        str(junit),
        "--report-dir",
        str(tmp_path / "reports"),
        task_queue=harness.task_queue,
        env={"CHAOS_REPORT_ARCHIVE": str(tmp_path / "archive")},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    (html,) = (tmp_path / "reports").glob("*.html")
    assert f"report: {html}" in result.stdout and f"junit: {junit}" in result.stdout
    assert ET.parse(junit).getroot().get("tests") == "8"  # 2 faults x 4 criteria
    assert len(re.findall(r"<svg", html.read_text())) == 2
    assert len(list((tmp_path / "archive" / "t").glob("*.json"))) == 1
    # Not a terminal: plain progress lines, one per phase, naming the fault and its probes.
    assert re.search(r"pod-kill \[hold\] on replica-0: \d+s left", result.stdout), result.stdout


async def test_the_parent_hears_once_per_fault_not_at_every_ledger_change(
    harness: Harness, client: Client, tmp_path: Path
) -> None:
    run = ScenarioInput(scenario=scenario(pod_kill("1s"), pod_kill("1s", name="b")))
    handle = await harness.start(run)
    report: ScenarioReport = await handle.result()
    history = await client.get_workflow_handle(handle.id).fetch_history()
    signals = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert len(signals) == 2  # one per fault (was three to four)
    # The final rows still reach the report, through the children's results.
    assert [r.status for r in report.ledger] == [FaultStatus.RECOVERED] * 2
    assert all(r.recovered_at for r in report.ledger)
    files = write_report(report, tmp_path)
    assert files.html.exists() and files.junit.exists()
