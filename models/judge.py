"""The judge: the verdict as a pure function of what the probes observed.

The same evidence always gives the same verdict, and a person can read why in each criterion's
summary and findings. One rule per success criterion of the seed, then the fact check.
"""

from __future__ import annotations

from models.faults import Symptom
from models.report import (
    Criterion,
    CriterionResult,
    FaultObservations,
    FaultReport,
    StepReport,
    Verdict,
    worst,
)

#: Findings quoted in a fault's reason; the rest are in its criteria.
MAX_FINDINGS_IN_REASON = 3


def _no_data_loss(obs: FaultObservations) -> CriterionResult:
    runs = obs.goal_runs
    if runs is None:
        return CriterionResult(
            criterion=Criterion.NO_DATA_LOSS,
            verdict=Verdict.INCONCLUSIVE,
            summary="goal runs were not checked",
        )
    evidence = [
        f"{runs.checked} goal runs in flight at injection: {runs.completed} completed, "
        f"{runs.progressing} still running and progressing",
        f"canaries: {runs.canaries_ok}/{runs.canaries_started} completed with the expected result"
        + (f", {runs.canaries_progressing} still progressing" if runs.canaries_progressing else ""),
        *runs.evidence,
    ]
    if obs.baseline is not None and obs.baseline.truncated:
        evidence.append("more goal runs were in flight than followed (max_goal_runs)")
    findings = [
        f"{'canary ' if x.canary else ''}{x.workflow_id}: {x.status}: {x.reason}"
        for x in runs.losses
    ]
    # A goal run started during the fault that failed while it held is lost work too.
    lost = {x.workflow_id for x in runs.losses}
    for probe in obs.probes:
        reasons = probe.failed_goal_run_reasons
        for n, workflow_id in enumerate(probe.failed_goal_runs):
            if workflow_id not in lost:
                lost.add(workflow_id)
                said = reasons[n] if len(reasons) == len(probe.failed_goal_runs) else workflow_id
                findings.append(f"{said}: while the fault held")
    if findings:
        return CriterionResult(
            criterion=Criterion.NO_DATA_LOSS,
            verdict=Verdict.FAIL,
            summary=f"{len(findings)} goal run(s) lost",
            findings=findings,
            evidence=evidence,
        )
    if runs.checked == 0 and runs.canaries_started == 0:
        return CriterionResult(
            criterion=Criterion.NO_DATA_LOSS,
            verdict=Verdict.INCONCLUSIVE,
            summary="no goal run was in flight and no canary ran: nothing could be lost",
            evidence=evidence,
        )
    return CriterionResult(
        criterion=Criterion.NO_DATA_LOSS,
        verdict=Verdict.PASS,
        summary="every goal run in flight completed or kept progressing",
        evidence=evidence,
    )


def _automatic_recovery(obs: FaultObservations) -> CriterionResult:
    rec = obs.recovery
    if rec is None:
        return CriterionResult(
            criterion=Criterion.AUTOMATIC_RECOVERY,
            verdict=Verdict.INCONCLUSIVE,
            summary="recovery was not checked",
        )
    findings = list(rec.problems)
    lag = obs.kafka.lag if obs.kafka else None
    evidence = list(rec.evidence)
    if lag is not None:
        evidence.append(
            f"consumer lag: baseline {lag.baseline_lag}, peak {lag.peak_lag}, final {lag.final_lag}"
        )
        if not lag.drained:
            findings.append(f"consumer lag did not drain: {lag.final_lag} messages behind")
    if not rec.recovered or findings:
        return CriterionResult(
            criterion=Criterion.AUTOMATIC_RECOVERY,
            verdict=Verdict.FAIL,
            summary="the system did not recover by itself",
            findings=findings,
            evidence=evidence,
        )
    ttr = f"{rec.time_to_recovery_s:.1f}s" if rec.time_to_recovery_s is not None else "n/a"
    return CriterionResult(
        criterion=Criterion.AUTOMATIC_RECOVERY,
        verdict=Verdict.PASS,
        summary=f"recovered with no manual action in {ttr}",
        evidence=evidence,
    )


def _event_ordering(obs: FaultObservations) -> CriterionResult:
    report = obs.kafka
    if report is None:
        verdict = Verdict.INCONCLUSIVE if obs.kafka_expected else Verdict.NOT_RUN
        return CriterionResult(
            criterion=Criterion.EVENT_ORDERING,
            verdict=verdict,
            summary="Kafka events were not checked",
        )
    findings = [f"{v.key}: {v.previous} then {v.event} ({v.reason})" for v in report.violations]
    findings += [f"{gap}: no terminal event by the deadline" for gap in report.gaps]
    if obs.exactly_once and report.duplicates:
        findings.append(f"{report.duplicates} duplicate event(s): {report.duplicate_examples[:5]}")
    evidence = [
        f"{report.events_read} events over {report.keys} keys read",
        f"{report.duplicates} duplicate(s) by eventId (at-least-once)",
    ]
    if findings:
        # The examples are capped; the count is not.
        problems = max(report.violations_total, len(report.violations)) + len(report.gaps)
        return CriterionResult(
            criterion=Criterion.EVENT_ORDERING,
            verdict=Verdict.FAIL,
            summary=f"{problems} ordering problem(s)",
            findings=findings,
            evidence=evidence,
        )
    if not report.complete:
        return CriterionResult(
            criterion=Criterion.EVENT_ORDERING,
            verdict=Verdict.INCONCLUSIVE,
            summary="the fault's window was not read to its end by the deadline",
            evidence=evidence + report.notes,
        )
    return CriterionResult(
        criterion=Criterion.EVENT_ORDERING,
        verdict=Verdict.PASS,
        summary="every key's events kept their lifecycle order",
        evidence=evidence,
    )


def _observed_symptoms(obs: FaultObservations) -> dict[Symptom, int]:
    runs = obs.goal_runs
    if runs is None:
        return {}
    return {
        Symptom.ACTIVITY_RETRIES: runs.activity_retries,
        Symptom.ACTIVITY_TIMEOUTS: runs.activity_timeouts,
        Symptom.OOM_KILL: runs.oom_kills,
        Symptom.REPLICA_RESTART: runs.replica_restarts,
    }


def _graceful_degradation(obs: FaultObservations) -> CriterionResult:
    ok = sum(p.canary_starts_ok for p in obs.probes)
    failed = sum(p.canary_starts_failed for p in obs.probes)
    share = f" ({100 * ok / (ok + failed):.0f}% accepted)" if ok + failed else ""
    evidence = [f"goal run starts during the fault: {ok} ok, {failed} failed{share}"]
    latencies = [p.start_latency_s for p in obs.probes if p.start_latency_s is not None]
    if latencies:
        evidence.append(f"slowest accepted start: {max(latencies):.2f}s")
    if obs.goal_runs is not None and obs.goal_runs.canaries_started:
        runs = obs.goal_runs
        evidence.append(
            f"canaries completed as expected: {runs.canaries_ok}/{runs.canaries_started}"
        )
    no_poller_probes = sum(1 for p in obs.probes if p.pollers == 0)
    if no_poller_probes:
        evidence.append(f"{no_poller_probes} of {len(obs.probes)} checks saw no live poller")
    findings = []
    if failed:
        findings.append(f"{failed} of {ok + failed} goal run starts failed: service unavailable")
    symptoms = _observed_symptoms(obs)
    for symptom, count in symptoms.items():
        if count:
            evidence.append(f"{symptom.value}: {count}")
            if symptom not in obs.expected.tolerated:
                findings.append(f"unexpected {symptom.value} ({count}) for this chaos type")
    if obs.goal_runs is not None and obs.goal_runs.activity_failures:
        evidence.append(f"activity failures: {obs.goal_runs.activity_failures}")
    if not obs.probes:
        return CriterionResult(
            criterion=Criterion.GRACEFUL_DEGRADATION,
            verdict=Verdict.INCONCLUSIVE,
            summary="no check ran during the fault",
            findings=findings,
            evidence=evidence,
        )
    if findings:
        return CriterionResult(
            criterion=Criterion.GRACEFUL_DEGRADATION,
            verdict=Verdict.FAIL,
            summary="the system did not degrade gracefully",
            findings=findings,
            evidence=evidence,
        )
    return CriterionResult(
        criterion=Criterion.GRACEFUL_DEGRADATION,
        verdict=Verdict.PASS,
        summary="the system stayed available while the fault held",
        evidence=evidence,
    )


def _explain(criterion: CriterionResult) -> str:
    """`no-data-loss: 1 goal run(s) lost (gr-7: failed: disk full)`: the why, without logs."""
    text = f"{criterion.criterion.value}: {criterion.summary}"
    if criterion.findings:
        more = len(criterion.findings) - MAX_FINDINGS_IN_REASON
        text += " (" + "; ".join(criterion.findings[:MAX_FINDINGS_IN_REASON])
        text += f"; and {more} more)" if more > 0 else ")"
    return text


def judge_fault(obs: FaultObservations) -> FaultReport:
    """The verdict for one fault: criteria from the evidence, then the fact check.

    Order of precedence: an orchestration error fails the fault; a breached abort condition
    aborts it; a fault that never took effect is inconclusive (its passing criteria too: they
    tested nothing); otherwise the worst criterion decides.
    """
    criteria = [
        _no_data_loss(obs),
        _automatic_recovery(obs),
        _event_ordering(obs),
        _graceful_degradation(obs),
    ]
    if not obs.in_effect and not obs.error:
        criteria = [
            c.model_copy(
                update={
                    "verdict": Verdict.INCONCLUSIVE,
                    "summary": f"{c.summary}, but the fault never took effect",
                }
            )
            if c.verdict is Verdict.PASS
            else c
            for c in criteria
        ]
    verdict = worst([c.verdict for c in criteria])
    # A pass needs no explaining; anything else quotes the criteria that decided it.
    reason = (
        ""
        if verdict is Verdict.PASS
        else "; ".join(_explain(c) for c in criteria if c.verdict == verdict)
    )
    if obs.error:
        verdict, reason = Verdict.FAIL, obs.error
    elif obs.aborted:
        verdict, reason = Verdict.ABORTED, obs.aborted
    elif not obs.in_effect:
        # A fault that never took hold tested nothing: never a pass.
        never = [e for e in obs.record.evidence if "confirm" in e]
        verdict = Verdict.INCONCLUSIVE
        reason = "the fault never took effect" + (f" ({never[-1]})" if never else "")
    return FaultReport(
        fault_id=obs.record.fault_id,
        label=obs.record.label,
        action=obs.record.action,
        expected=obs.expected.summary,
        verdict=verdict,
        reason=reason,
        criteria=criteria,
        time_to_recovery_s=obs.recovery.time_to_recovery_s if obs.recovery else None,
        record=obs.record,
    )


def judge_run(steps: list[StepReport]) -> tuple[Verdict, list[CriterionResult], float]:
    """The run's verdict, one result per criterion over all faults, and the score (0-100)."""
    faults = [f for s in steps for f in s.faults]
    per_criterion = []
    for criterion in Criterion:
        results = [c for f in faults for c in f.criteria if c.criterion is criterion]
        verdict = worst([r.verdict for r in results])
        failing = [
            f"{f.label}: {x}"
            for f in faults
            for c in f.criteria
            if c.criterion is criterion
            for x in c.findings
        ]
        passed = sum(1 for r in results if r.verdict is Verdict.PASS)
        per_criterion.append(
            CriterionResult(
                criterion=criterion,
                verdict=verdict,
                summary=f"{passed}/{len(results)} fault(s) pass",
                findings=failing,
            )
        )
    checks = [c for f in faults for c in f.criteria if c.verdict is not Verdict.NOT_RUN]
    score = (
        100.0 * sum(1 for c in checks if c.verdict is Verdict.PASS) / len(checks) if checks else 0
    )
    verdict = worst([s.verdict for s in steps])
    return verdict, per_criterion, min(100.0, score)
