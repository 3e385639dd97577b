"""The judge: the verdict as a pure function of what the probes observed.

The same evidence always gives the same verdict, and a person can read why in each criterion's
summary and findings. One rule per success criterion of the seed, then the fact check.
"""

from __future__ import annotations

from models.criteria import automatic_recovery, event_ordering, graceful_degradation, no_data_loss
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
        no_data_loss(obs),
        automatic_recovery(obs),
        event_ordering(obs),
        graceful_degradation(obs),
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
        # A fault that never took hold tested nothing: never a pass. What failed anyway (work
        # lost with no fault to blame) still fails, and says the fault was not seen.
        never = [e for e in obs.record.evidence if "confirm" in e]
        why = "the fault never took effect" + (f" ({never[-1]})" if never else "")
        verdict = worst([c.verdict for c in criteria])
        reason = why if verdict is not Verdict.FAIL else f"{reason}; {why}"
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
        # The findings stay with their faults (one copy in the report): counted here.
        findings = sum(len(r.findings) for r in results)
        passed = sum(1 for r in results if r.verdict is Verdict.PASS)
        per_criterion.append(
            CriterionResult(
                criterion=criterion,
                verdict=verdict,
                summary=f"{passed}/{len(results)} fault(s) pass"
                + (f", {findings} finding(s) in the faults" if findings else ""),
            )
        )
    checks = [c for f in faults for c in f.criteria if c.verdict is not Verdict.NOT_RUN]
    score = (
        100.0 * sum(1 for c in checks if c.verdict is Verdict.PASS) / len(checks) if checks else 0
    )
    verdict = worst([s.verdict for s in steps])
    return verdict, per_criterion, min(100.0, score)
