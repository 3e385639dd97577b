"""The judge on hand-built observations: each criterion's rule, its findings, and precedence.

Pure: no server. Each test builds what the probes would have seen around one fault and reads
the verdict as ByteBot's on-call engineer would.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from models.faults import CPU_EXPECTED, POD_EXPECTED
from models.judge import judge_fault
from models.kafka import KafkaOrderReport, LagReport, OrderViolation
from models.ledger import FaultRecord
from models.observations import (
    Baseline,
    GoalRunLoss,
    GoalRunsCheck,
    HoldProbe,
    LatencyStats,
    LostEvent,
    ReconcileCheck,
    RecoveryCheck,
)
from models.report import Criterion, FaultObservations, FaultReport, Verdict
from models.scenario import DegradationLimits

AT = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
RECORD = FaultRecord(
    fault_id="chaos-r-00-pod-kill",
    step=0,
    label="pod-kill",
    action="pod-kill",
    target="bytebot/app=bytebot-temporal-worker (one)",
)


def healthy(**changes: object) -> FaultObservations:
    """What a healthy system under an effective fault shows; `changes` spoil one part."""
    base = FaultObservations(
        record=RECORD,
        expected=POD_EXPECTED,
        in_effect=True,
        baseline=Baseline(taken_at=AT, latency=LatencyStats.of([2.0, 2.1, 2.2, 2.4])),
        probes=[HoldProbe(at=AT, canary_starts_ok=2, pollers=3, start_latency_s=0.05)],
        recovery=RecoveryCheck(recovered=True, time_to_recovery_s=1.4, pollers=3),
        goal_runs=GoalRunsCheck(
            checked=12,
            completed=12,
            canaries_ok=1,
            canaries_started=1,
            results_checked=12,
            latency=LatencyStats.of([2.0, 2.3, 2.5, 2.6]),
        ),
        kafka=KafkaOrderReport(
            events_read=400,
            window_events=380,
            goal_runs=12,
            lag=LagReport(baseline_lag=0, final_lag=0),
        ),
        reconcile=ReconcileCheck(checked=1, still_open=1),
    )
    return base.model_copy(update=changes)


def criterion(report: FaultReport, which: Criterion) -> tuple[Verdict, list[str], str]:
    (found,) = [c for c in report.criteria if c.criterion is which]
    return found.verdict, found.findings, found.summary


def test_a_healthy_system_under_an_effective_fault_passes_every_criterion() -> None:
    report = judge_fault(healthy())

    assert report.verdict is Verdict.PASS and report.reason == ""
    assert {c.verdict for c in report.criteria} == {Verdict.PASS}


def test_a_completed_execution_whose_result_says_failed_is_lost_work() -> None:
    loss = GoalRunLoss(
        workflow_id="gr-7",
        status="result-failed",
        reason="status FAILED: EXECUTION_ERROR: step 2 failed after 3 attempts",
    )
    runs = healthy().goal_runs
    assert runs is not None

    report = judge_fault(healthy(goal_runs=runs.model_copy(update={"losses": [loss]})))

    verdict, findings, summary = criterion(report, Criterion.NO_DATA_LOSS)
    assert report.verdict is Verdict.FAIL and verdict is Verdict.FAIL
    assert findings == [
        "gr-7: result-failed: status FAILED: EXECUTION_ERROR: step 2 failed after 3 attempts"
    ]
    assert summary == "1 goal run(s) lost" and "gr-7" in report.reason


def test_a_terminal_event_lost_by_ByteBots_own_swallowed_emit_is_named_as_its_defect() -> None:
    lost = [
        LostEvent(
            goal_run_id="gr-1",
            event="GOAL_COMPLETED",
            swallowed=True,
            cause="emitGoalEvent failed 3 attempts and the workflow swallowed it",
        ),
        LostEvent(
            goal_run_id="gr-2",
            event="GOAL_COMPLETED",
            cause="emitGoalEvent completed but no record was written",
        ),
    ]

    report = judge_fault(healthy(reconcile=ReconcileCheck(checked=2, lost=lost, lost_total=2)))

    verdict, findings, _ = criterion(report, Criterion.NO_DATA_LOSS)
    assert verdict is Verdict.FAIL
    assert findings == [
        "gr-1: GOAL_COMPLETED missing from Kafka: ByteBot's own defect: emitGoalEvent failed 3 "
        "attempts and the workflow swallowed it",
        "gr-2: GOAL_COMPLETED missing from Kafka: emitGoalEvent completed but no record was "
        "written",
    ]


def test_a_lost_goal_started_is_an_ordering_failure() -> None:
    lost = [LostEvent(goal_run_id="gr-3", event="GOAL_STARTED", cause="started 20:00:01")]

    report = judge_fault(healthy(reconcile=ReconcileCheck(checked=1, lost=lost, lost_total=1)))

    verdict, findings, _ = criterion(report, Criterion.EVENT_ORDERING)
    assert verdict is Verdict.FAIL and findings == [
        "gr-3: GOAL_STARTED missing from Kafka: started 20:00:01"
    ]
    assert criterion(report, Criterion.NO_DATA_LOSS)[0] is Verdict.PASS


def test_a_replica_that_never_came_back_fails_recovery_and_the_fault() -> None:
    recovery = RecoveryCheck(
        recovered=False,
        never_back=["replica-1"],
        problems=["replica-1 never came back: not running (last exit 137 Killed, restarts 0)"],
    )

    report = judge_fault(healthy(recovery=recovery))

    verdict, findings, _ = criterion(report, Criterion.AUTOMATIC_RECOVERY)
    assert report.verdict is Verdict.FAIL and verdict is Verdict.FAIL
    assert findings == ["replica-1 never came back: not running (last exit 137 Killed, restarts 0)"]


def test_an_unknown_time_to_recovery_is_said_to_be_unknown() -> None:
    report = judge_fault(healthy(recovery=RecoveryCheck(recovered=True, time_to_recovery_s=None)))

    assert criterion(report, Criterion.AUTOMATIC_RECOVERY)[2].endswith("time to recovery unknown")


def test_a_consumer_group_without_members_is_reported_never_drained() -> None:
    lag = LagReport(
        baseline_lag=0, final_lag=0, group_problem="group bytebot-consumers does not exist"
    )
    kafka = healthy().kafka
    assert kafka is not None

    report = judge_fault(healthy(kafka=kafka.model_copy(update={"lag": lag})))

    found = next(c for c in report.criteria if c.criterion is Criterion.AUTOMATIC_RECOVERY)
    assert "consumer lag not judged: group bytebot-consumers does not exist" in found.evidence
    assert not any("drain" in e for e in found.evidence)


def test_a_window_with_no_event_of_the_system_is_inconclusive_not_pass() -> None:
    report = judge_fault(healthy(kafka=KafkaOrderReport(events_read=0, window_events=0)))

    verdict, _, summary = criterion(report, Criterion.EVENT_ORDERING)
    assert verdict is Verdict.INCONCLUSIVE and "no event" in summary
    assert report.verdict is Verdict.INCONCLUSIVE


def test_an_order_violation_fails_event_ordering_with_its_key() -> None:
    v = OrderViolation(
        key="gr-1-2",
        topic="bytebot.step.events",
        partition=2,
        offset=41,
        previous="(first on key)",
        event="STEP_COMPLETED",
        reason="STEP_COMPLETED with no STEP_STARTED before it",
    )
    report = judge_fault(
        healthy(kafka=KafkaOrderReport(window_events=3, violations=[v], violations_total=1))
    )

    assert criterion(report, Criterion.EVENT_ORDERING)[1] == [
        "gr-1-2: (first on key) then STEP_COMPLETED (STEP_COMPLETED with no STEP_STARTED before it)"
    ]


def test_starts_refused_beyond_the_limit_fail_graceful_degradation() -> None:
    probes = [HoldProbe(at=AT, canary_starts_ok=1, canary_starts_failed=3, pollers=3)]

    report = judge_fault(healthy(probes=probes))

    verdict, findings, _ = criterion(report, Criterion.GRACEFUL_DEGRADATION)
    assert verdict is Verdict.FAIL
    assert findings == ["only 25% of goal-run starts were accepted (limit 90%)"]


def test_latency_beyond_its_ratio_fails_and_slower_execution_is_measured() -> None:
    runs = healthy().goal_runs
    assert runs is not None
    slow = runs.model_copy(update={"latency": LatencyStats.of([9.0, 12.0, 30.0, 40.0])})

    within = judge_fault(healthy(goal_runs=slow, expected=CPU_EXPECTED))
    beyond = judge_fault(healthy(goal_runs=slow, limits=DegradationLimits(max_latency_ratio=5)))

    verdict, findings, _ = criterion(within, Criterion.GRACEFUL_DEGRADATION)
    evidence = next(c for c in within.criteria if c.criterion is Criterion.GRACEFUL_DEGRADATION)
    assert verdict is Verdict.FAIL  # 16.7x the steady state's p95 is beyond the default 10x
    assert "slower-execution: 1" in evidence.evidence
    assert criterion(beyond, Criterion.GRACEFUL_DEGRADATION)[1] == [
        "p95 goal-run latency 16.7x the steady state (limit 5.0x)"
    ]


def test_a_fault_that_reached_nothing_is_inconclusive_with_its_reason() -> None:
    record = RECORD.model_copy(
        update={"evidence": ["never confirmed: no traffic crossed the rule"]}
    )

    report = judge_fault(healthy(in_effect=False, record=record))

    assert report.verdict is Verdict.INCONCLUSIVE
    assert (
        report.reason
        == "the fault never took effect (never confirmed: no traffic crossed the rule)"
    )


def test_work_lost_while_the_fault_was_not_in_effect_still_fails() -> None:
    runs = healthy().goal_runs
    assert runs is not None
    loss = GoalRunLoss(workflow_id="gr-9", status="failed", reason="boom")

    report = judge_fault(
        healthy(in_effect=False, goal_runs=runs.model_copy(update={"losses": [loss]}))
    )

    assert report.verdict is Verdict.FAIL
    assert "gr-9" in report.reason and "the fault never took effect" in report.reason


OBS = st.builds(
    lambda in_effect, error, aborted, lost, refused, never_back, window: healthy(
        in_effect=in_effect,
        error=error,
        aborted=aborted,
        goal_runs=GoalRunsCheck(
            checked=3,
            completed=3 - lost,
            canaries_started=1,
            canaries_ok=1,
            losses=[
                GoalRunLoss(workflow_id=f"g{i}", status="failed", reason="x") for i in range(lost)
            ],
        ),
        probes=[HoldProbe(at=AT, canary_starts_ok=4 - refused, canary_starts_failed=refused)],
        recovery=RecoveryCheck(recovered=not never_back, problems=["r0 gone"] * never_back),
        kafka=KafkaOrderReport(window_events=window),
    ),
    st.booleans(),
    st.none() | st.just("injection failed: forbidden"),
    st.none() | st.just("too many failed goal runs"),
    st.integers(0, 3),
    st.integers(0, 4),
    st.booleans(),
    st.integers(0, 3),
)


@given(OBS)
def test_pass_is_earned_only_by_an_effective_fault_and_every_criterion_passing(
    obs: FaultObservations,
) -> None:
    report = judge_fault(obs)

    all_pass = all(c.verdict is Verdict.PASS for c in report.criteria)
    earned = obs.in_effect and not obs.error and not obs.aborted and all_pass
    assert (report.verdict is Verdict.PASS) == earned
    if report.verdict is not Verdict.PASS:
        assert report.reason  # anything but a pass says why


@given(OBS)
def test_precedence_error_then_abort_then_any_failure(obs: FaultObservations) -> None:
    report = judge_fault(obs)

    if obs.error:
        assert report.verdict is Verdict.FAIL and report.reason == obs.error
    elif obs.aborted:
        assert report.verdict is Verdict.ABORTED and report.reason == obs.aborted
    elif any(c.verdict is Verdict.FAIL for c in report.criteria):
        assert report.verdict is Verdict.FAIL
    elif not obs.in_effect:
        assert report.verdict is Verdict.INCONCLUSIVE
        assert "never took effect" in report.reason
