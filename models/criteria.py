"""The four success criteria of the seed, each a pure rule over what the probes observed.

Each rule returns a `CriterionResult` whose findings name the cause by id, so an on-call engineer
can follow it without logs, and whose evidence says what was measured. A rule gives `pass` only
on evidence that the thing it judges was there to judge; with nothing to judge it says
`inconclusive`, never `pass`.
"""

from __future__ import annotations

from models.faults import Symptom
from models.kafka import KafkaOrderReport
from models.observations import LatencyStats
from models.report import Criterion, CriterionResult, FaultObservations, Verdict


def _result(
    criterion: Criterion,
    verdict: Verdict,
    summary: str,
    findings: list[str] | None = None,
    evidence: list[str] | None = None,
) -> CriterionResult:
    return CriterionResult(
        criterion=criterion,
        verdict=verdict,
        summary=summary,
        findings=capped(findings or []),
        evidence=capped(evidence or []),
    )


#: Findings (and evidence lines) kept per criterion of a fault; the rest are counted. A badly
#: failing run must still fit in one Temporal payload (2 MB).
MAX_FINDINGS = 20


#: Characters kept of one finding: a long failure message is cut, its start names the cause.
MAX_FINDING_CHARS = 400


def capped(lines: list[str], cap: int = MAX_FINDINGS) -> list[str]:
    """The first `cap` lines (each cut at `MAX_FINDING_CHARS`), and how many more there were."""
    kept = [x if len(x) <= MAX_FINDING_CHARS else x[: MAX_FINDING_CHARS - 3] + "..." for x in lines]
    if len(kept) <= cap:
        return kept
    return [*kept[:cap], f"... and {len(kept) - cap} more"]


def no_data_loss(obs: FaultObservations) -> CriterionResult:
    """Every goal run in flight or started during the fault ended well, its events in Kafka."""
    runs, name = obs.goal_runs, Criterion.NO_DATA_LOSS
    if runs is None:
        return _result(name, Verdict.INCONCLUSIVE, "goal runs were not checked")
    evidence = [
        f"{runs.checked} goal runs followed ({runs.started_during} started while the fault held):"
        f" {runs.completed} ended well, {runs.progressing} still progressing, {runs.idle} idle"
        " by design",
        f"{runs.results_checked} results judged by the contract",
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
    lost = {x.workflow_id for x in runs.losses}
    for probe in obs.probes:
        reasons = probe.failed_goal_run_reasons
        for n, workflow_id in enumerate(probe.failed_goal_runs):
            if workflow_id not in lost:
                lost.add(workflow_id)
                said = reasons[n] if len(reasons) == len(probe.failed_goal_runs) else workflow_id
                findings.append(f"{said}: while the fault held")
    if obs.reconcile is not None:
        evidence += obs.reconcile.evidence
        for event in obs.reconcile.lost:
            if event.event != "GOAL_STARTED":
                owner = "ByteBot's own defect: " if event.swallowed else ""
                findings.append(
                    f"{event.goal_run_id}: {event.event} missing from Kafka: {owner}{event.cause}"
                )
    elif obs.kafka is not None and obs.kafka.no_terminal_total:
        evidence.append(
            f"{obs.kafka.no_terminal_total} goal run(s) with no terminal event in Kafka were not"
            " reconciled with Temporal"
        )
    total = len(findings) + max(0, runs.losses_total - len(runs.losses))
    if findings:
        return _result(name, Verdict.FAIL, f"{total} goal run(s) lost", findings, evidence)
    if runs.checked == 0 and runs.canaries_started == 0:
        return _result(
            name,
            Verdict.INCONCLUSIVE,
            "no goal run was in flight and no canary ran: nothing could be lost",
            evidence=evidence,
        )
    return _result(
        name, Verdict.PASS, "every goal run ended well or kept progressing", evidence=evidence
    )


def automatic_recovery(obs: FaultObservations) -> CriterionResult:
    """Targets back, ready and polling, the consumer group committing, a fresh canary done."""
    rec, name = obs.recovery, Criterion.AUTOMATIC_RECOVERY
    if rec is None:
        return _result(name, Verdict.INCONCLUSIVE, "recovery was not checked")
    findings = list(rec.problems)
    evidence = list(rec.evidence)
    lag = obs.kafka.lag if obs.kafka else None
    if lag is not None:
        if lag.group_lost:
            findings.append(f"{lag.group_problem}: its consumers did not come back")
        elif lag.group_problem:
            # The group is another service's: say so, and judge its lag only when it has members.
            evidence.append(f"consumer lag not judged: {lag.group_problem}")
        else:
            evidence.append(
                f"consumer lag: baseline {lag.baseline_lag}, peak {lag.peak_lag}, final "
                f"{lag.final_lag} (tolerance {lag.tolerance})"
            )
            if not lag.drained:
                findings.append(
                    f"consumer lag did not drain: {lag.final_lag} behind, baseline "
                    f"{lag.baseline_lag}"
                )
    if not rec.recovered or findings:
        return _result(
            name, Verdict.FAIL, "the system did not recover by itself", findings, evidence
        )
    ttr = f"{rec.time_to_recovery_s:.1f}s" if rec.time_to_recovery_s is not None else "unknown"
    return _result(
        name,
        Verdict.PASS,
        f"recovered with no manual action; time to recovery {ttr}",
        evidence=evidence,
    )


def _ordering_evidence(report: KafkaOrderReport) -> list[str]:
    turns = report.lifecycle
    evidence = [
        f"{report.events_read} events over {report.keys} keys read, {report.window_events} in the"
        f" fault's window, {report.goal_runs} goal runs",
        f"{report.duplicates} re-sent event(s) (same id or same content: at-least-once)",
        f"legitimate turns: {turns.step_retries} step retries, {turns.replans} replans, "
        f"{turns.approvals} approvals, {turns.skips} skips, {turns.pauses} pauses, "
        f"{turns.cancels} cancels",
    ]
    if report.cross_topic:
        evidence.append(
            f"{report.cross_topic} step event(s) stamped outside their goal's start and end"
            " (across topics; Kafka orders per key only, so reported, not failed): "
            + "; ".join(report.cross_topic_examples[:3])
        )
    return evidence


def event_ordering(obs: FaultObservations) -> CriterionResult:
    """Per key, the lifecycle order of the real event types; lost starts and step events."""
    report, name = obs.kafka, Criterion.EVENT_ORDERING
    if report is None:
        verdict = Verdict.INCONCLUSIVE if obs.kafka_expected else Verdict.NOT_RUN
        return _result(name, verdict, "Kafka events were not checked")
    evidence = _ordering_evidence(report)
    findings = [f"{v.key}: {v.previous} then {v.event} ({v.reason})" for v in report.violations]
    findings += [
        f"{step}: its goal run ended but the step's terminal event is missing"
        for step in report.lost_step_events
    ]
    if obs.reconcile is not None:
        findings += [
            f"{e.goal_run_id}: {e.event} missing from Kafka: {e.cause}"
            for e in obs.reconcile.lost
            if e.event == "GOAL_STARTED"
        ]
    if obs.exactly_once and report.duplicates:
        findings.append(
            f"{report.duplicates} duplicate event(s) under exactly-once: "
            + "; ".join(report.duplicate_examples[:5])
        )
    if findings:
        problems = (
            max(report.violations_total, len(report.violations))
            + max(report.lost_step_events_total, len(report.lost_step_events))
            + (len(findings) - len(report.violations) - len(report.lost_step_events))
        )
        return _result(name, Verdict.FAIL, f"{problems} ordering problem(s)", findings, evidence)
    if not report.complete:
        return _result(
            name,
            Verdict.INCONCLUSIVE,
            "the fault's window was not read to its end by the deadline",
            evidence=evidence + report.notes,
        )
    if report.window_events == 0:
        return _result(
            name,
            Verdict.INCONCLUSIVE,
            "no event of the system under test was written in the fault's window",
            evidence=evidence + report.notes,
        )
    return _result(
        name, Verdict.PASS, "every key's events kept their lifecycle order", evidence=evidence
    )


def _ratio(during: LatencyStats | None, before: LatencyStats | None, pct: str) -> float | None:
    a = getattr(during, pct) if during else None
    b = getattr(before, pct) if before else None
    if a is None or b is None or b <= 0:
        return None
    return float(a) / float(b)


def _observed_symptoms(obs: FaultObservations, slower: bool) -> dict[Symptom, int]:
    runs = obs.goal_runs
    counts = {Symptom.SLOWER_EXECUTION: int(slower)}
    if runs is not None:
        counts |= {
            Symptom.ACTIVITY_RETRIES: runs.activity_retries,
            Symptom.ACTIVITY_TIMEOUTS: runs.activity_timeouts,
            Symptom.OOM_KILL: runs.oom_kills,
            Symptom.REPLICA_RESTART: runs.replica_restarts,
        }
    return counts


def graceful_degradation(obs: FaultObservations) -> CriterionResult:
    """Starts accepted and latency against the steady state, within the scenario's limits."""
    name, limits = Criterion.GRACEFUL_DEGRADATION, obs.limits
    ok = sum(p.canary_starts_ok for p in obs.probes)
    failed = sum(p.canary_starts_failed for p in obs.probes)
    findings: list[str] = []
    evidence = [f"goal-run starts during the fault: {ok} accepted, {failed} refused"]
    if ok + failed and limits.min_starts_accepted_pct is not None:
        share = 100 * ok / (ok + failed)
        evidence[0] += f" ({share:.0f}%, limit {limits.min_starts_accepted_pct:.0f}%)"
        if share < limits.min_starts_accepted_pct:
            findings.append(
                f"only {share:.0f}% of goal-run starts were accepted (limit "
                f"{limits.min_starts_accepted_pct:.0f}%)"
            )
    base = obs.baseline
    starts = LatencyStats.of([p.start_latency_s for p in obs.probes if p.start_latency_s])
    if starts.count:
        before = base.start_latency if base else None
        evidence.append(f"start latency: {starts}; before the fault: {before or 'no samples'}")
        ratio = _ratio(starts, before, "p95_s")
        limit = limits.max_start_latency_ratio
        if limit is not None and ratio is not None and ratio > limit:
            findings.append(f"p95 start latency {ratio:.1f}x the steady state (limit {limit}x)")
    slower = False
    during = obs.goal_runs.latency if obs.goal_runs else None
    before = base.latency if base else None
    if during is not None:
        evidence.append(
            f"end-to-end goal-run latency: {during}; before the fault: {before or 'no samples'}"
        )
        enough = min(during.count, before.count if before else 0) >= limits.min_latency_samples
        p95 = _ratio(during, before, "p95_s") if enough else None
        p50 = _ratio(during, before, "p50_s") if enough else None
        if p95 is not None and limits.max_latency_ratio is not None:
            evidence.append(f"p95 latency {p95:.1f}x the steady state")
            if p95 > limits.max_latency_ratio:
                findings.append(
                    f"p95 goal-run latency {p95:.1f}x the steady state "
                    f"(limit {limits.max_latency_ratio}x)"
                )
        slower = p50 is not None and p50 > limits.slower_ratio
    for symptom, count in _observed_symptoms(obs, slower).items():
        if count:
            evidence.append(f"{symptom.value}: {count}")
            if symptom not in obs.expected.tolerated:
                findings.append(f"unexpected {symptom.value} ({count}) for this chaos type")
    runs = obs.goal_runs
    if runs is not None and runs.checked:
        evidence.append(
            f"activity failures {runs.activity_failures}, retries {runs.activity_retries} over "
            f"{runs.histories_read} histories read"
        )
    no_poller_probes = sum(1 for p in obs.probes if p.pollers == 0)
    if no_poller_probes:
        evidence.append(f"{no_poller_probes} of {len(obs.probes)} checks saw no live poller")
    if not obs.probes:
        return _result(
            name, Verdict.INCONCLUSIVE, "no check ran during the fault", findings, evidence
        )
    if findings:
        return _result(
            name, Verdict.FAIL, "the system did not degrade gracefully", findings, evidence
        )
    return _result(
        name,
        Verdict.PASS,
        "the system stayed within its limits while the fault held",
        evidence=evidence,
    )
