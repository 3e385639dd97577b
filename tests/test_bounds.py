"""Bounded payloads: what activity inputs carry, capped lists, and a worst-case report's size.

Plain data through the real models, the real judge and Temporal's real pydantic payload
converter (the one the worker and client use): a payload over 2 MB fails the run in Temporal.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from models.faults import ExpectedBehavior
from models.judge import judge_run
from models.kafka import (
    KafkaCheckInput,
    KafkaOrderReport,
    KafkaPositions,
    LagReport,
    LagSample,
    OrderViolation,
    PartitionLag,
    PartitionOffset,
)
from models.ledger import FaultRecord, ReplicaSet, TargetRef
from models.observations import (
    MAX_EXAMPLES,
    Baseline,
    BaselineMarks,
    GoalRunLoss,
    GoalRunMark,
    GoalRunsCheck,
    HoldProbe,
    LostEvent,
    ReconcileCheck,
    RecoveryCheck,
)
from models.report import FaultObservations, ScenarioReport, StepReport, Verdict
from models.scenario import MAX_FAULTS, MAX_HOLD_PROBES, KafkaTarget, Scenario, Verification
from models.timeline import MAX_HOLD_POINTS
from workflows.fault_calls import with_timeline

T0 = datetime(2026, 12, 1, tzinfo=UTC)
PAYLOAD_LIMIT = 2 * 2**20
WORKFLOWS = Path(__file__).parent.parent / "workflows"


def _size(value: object) -> int:
    (payload,) = pydantic_data_converter.payload_converter.to_payloads([value])
    return payload.ByteSize()


def _replicas(n: int = 3) -> ReplicaSet:
    return ReplicaSet(
        replicas=[TargetRef(namespace="bytebot", name=f"replica-{i}", uid=str(i)) for i in range(n)]
    )


def _marks(n: int) -> list[GoalRunMark]:
    return [
        GoalRunMark(workflow_id=f"goal-run-{i:05d}-{'x' * 24}", run_id="r" * 36, history_length=99)
        for i in range(n)
    ]


def test_probe_interval_below_the_floor_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as error:
        Verification.model_validate({"probe_interval": "500ms"})
    assert error.value.errors()[0]["loc"] == ("probe_interval",)
    assert "probe_interval must be at least 1s" in str(error.value)
    assert Verification.model_validate({"probe_interval": "1s"}).probe_interval.total_seconds() == 1


def test_a_scenario_of_more_faults_than_one_report_can_carry_is_refused() -> None:
    pods = [{"fault": {"action": "pod-kill", "duration": "1s", "name": f"k{i}"}} for i in range(31)]
    with pytest.raises(ValidationError, match="31 faults in one scenario, at most 30"):
        Scenario.model_validate({"name": "big", "steps": pods})


def test_recovery_and_goal_run_inputs_take_only_what_they_read_and_old_inputs_still_load() -> None:
    baseline = Baseline(
        taken_at=T0,
        goal_runs=_marks(2000),
        replicas=_replicas(),
        kafka=KafkaPositions(at=T0, total_lag=3),
        canary_ids=["c1"],
        problems=[],
    )
    marks = BaselineMarks.of(baseline, goal_runs=False)
    assert marks.goal_runs == [] and marks.replicas == baseline.replicas
    assert _size(marks) < 2_000 < _size(baseline) / 50
    # An activity task scheduled by the previous release carries the whole Baseline.
    old = BaselineMarks.model_validate(baseline.model_dump(mode="json"))
    assert len(old.goal_runs) == 2000 and old.replicas == baseline.replicas
    # A direct caller may still pass the whole Baseline.
    assert BaselineMarks.model_validate(baseline).goal_runs == baseline.goal_runs


def test_the_kafka_check_gets_total_lag_per_sample_and_reads_old_whole_positions() -> None:
    wide = KafkaPositions(
        at=T0,
        end_offsets=[PartitionOffset(topic="t", partition=p, offset=9) for p in range(12)],
        committed=[PartitionOffset(topic="t", partition=p, offset=1) for p in range(12)],
        lag=[PartitionLag(topic="t", partition=p, committed=1, end=9, lag=8) for p in range(12)],
        total_lag=96,
    )
    data = {
        "kafka": KafkaTarget().model_dump(mode="json"),
        "start": wide.model_dump(mode="json"),
        "deadline": T0.isoformat(),
        "lag_samples": [wide.model_dump(mode="json")] * 3,
    }
    check = KafkaCheckInput.model_validate(data)
    assert check.lag_samples == [LagSample(at=T0, total_lag=96)] * 3


def test_a_hold_probe_keeps_examples_of_its_failed_goal_runs_and_their_count() -> None:
    ids = [f"goal-{i}" for i in range(2000)]
    probe = HoldProbe.model_validate(
        {
            "at": T0,
            "failed_goal_runs": ids,
            "failed_goal_run_reasons": [f"{i}: failed" for i in ids],
        }
    )
    assert len(probe.failed_goal_runs) == MAX_EXAMPLES == len(probe.failed_goal_run_reasons)
    assert probe.failed_count == 2000
    assert _size(probe) < 4_000


def test_no_assert_in_workflow_code() -> None:
    # An AssertionError in a workflow task is retried for ever; fail explicitly instead.
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted(WORKFLOWS.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert found == []


def _worst_fault(index: int) -> FaultObservations:
    """A fault that went as badly as it can: every list at (or far beyond) its source's cap."""
    many = 1000
    record = FaultRecord(
        fault_id=f"chaos-0f80c2b0-{index:02d}-pod-kill",
        step=index,
        label=f"pod-kill-{index}",
        action="pod-kill",
        target="bytebot: app=bytebot-temporal-worker (all)",
        injected_at=T0,
        expires_at=T0 + timedelta(hours=1, seconds=15),
        recovered_at=T0 + timedelta(hours=1),
        targets=_replicas(3).replicas,
        evidence=[f"replica-{i}: killed (pid {1000 + i})" for i in range(3)],
    )
    failed = [f"goal-run-{i:05d}-{'y' * 30}" for i in range(2000)]
    probes = [
        HoldProbe.model_validate(
            {
                "at": T0 + timedelta(seconds=10 * n),
                "canary_ids": [f"bytebot-chaos-canary-{record.fault_id}-{n}"],
                "failed_goal_runs": failed,
                "failed_goal_run_reasons": [f"{f}: failed: {'z' * 200}" for f in failed],
                "notes": ["canary start rejected: " + "e" * 300],
                "live_pollers": [f"{p}@replica-{p}" for p in range(3)],
            }
        )
        for n in range(MAX_HOLD_PROBES)
    ]
    losses = [
        GoalRunLoss(workflow_id=f"goal-run-{i:05d}", status="result-failed", reason="r" * 300)
        for i in range(many)
    ]
    violation = OrderViolation(
        key="k", topic="t", partition=0, offset=1, previous="A@0", event="B@1", reason="x" * 200
    )
    kafka = KafkaOrderReport(
        events_read=10**6,
        violations=[violation] * many,
        violations_total=many,
        no_terminal=[f"goal-run-{i:05d}" for i in range(many)],
        no_terminal_total=many,
        lost_step_events=[f"goal-run-{i:05d}-3 (last STEP_STARTED)" for i in range(many)],
        duplicates=many,
        duplicate_examples=["d" * 100] * many,
        lag=LagReport(
            baseline_lag=0,
            peak_lag=10**6,
            final_lag=10**6,
            drained=False,
            samples=[LagSample(at=T0, total_lag=n) for n in range(100)],
        ),
    )
    lost = [
        LostEvent(goal_run_id=f"goal-run-{i:05d}", event="GOAL_COMPLETED", cause="c" * 300)
        for i in range(many)
    ]
    return FaultObservations(
        record=record,
        expected=ExpectedBehavior(summary="continues on other workers"),
        in_effect=True,
        baseline=Baseline(taken_at=T0, goal_runs=_marks(2000), replicas=_replicas()),
        probes=probes,
        recovery=RecoveryCheck(
            recovered=False, problems=[f"replica-{i} never back" for i in range(3)]
        ),
        goal_runs=GoalRunsCheck(
            checked=many, losses=losses, losses_total=many, evidence=["e" * 200] * 50
        ),
        kafka=kafka,
        reconcile=ReconcileCheck(checked=many, lost=lost, lost_total=many),
    )


def test_a_badly_failing_runs_report_stays_under_the_payload_limit() -> None:
    faults = [with_timeline(_worst_fault(i)) for i in range(MAX_FAULTS)]
    worst = max(_size(f) for f in faults)
    assert all(f.verdict is Verdict.FAIL for f in faults)
    assert faults[0].timeline and len(faults[0].timeline.points) <= MAX_HOLD_POINTS + 2
    assert worst < PAYLOAD_LIMIT / 20, f"one fault's result: {worst} bytes"
    steps = [
        StepReport(index=i, label=f.label, verdict=f.verdict, faults=[f])
        for i, f in enumerate(faults)
    ]
    verdict, criteria, score = judge_run(steps)
    report = ScenarioReport(
        scenario="full-resilience",
        workflow_id="chaos-weekly",
        backend="local",
        started_at=T0,
        ended_at=T0 + timedelta(hours=12),
        verdict=verdict,
        criteria=criteria,
        steps=steps,
        score_pct=score,
    )
    size = _size(report)
    print(f"\nworst fault {worst / 1024:.0f} KiB; {MAX_FAULTS} faults {size / 1024:.0f} KiB")
    assert size < PAYLOAD_LIMIT * 0.9, f"the report: {size} bytes"
    # The ledger is not serialized twice: it is rebuilt from the fault records on load.
    (payload,) = pydantic_data_converter.payload_converter.to_payloads([report])
    assert b'"ledger"' not in payload.data
    (loaded,) = pydantic_data_converter.payload_converter.from_payloads([payload], [ScenarioReport])
    assert [r.fault_id for r in loaded.ledger] == [f.fault_id for f in faults]
    # Run-level criteria count the findings; the findings themselves stay with their faults.
    assert loaded.criteria and all(not c.findings for c in loaded.criteria)
    assert "finding(s) in the faults" in loaded.criteria[0].summary
