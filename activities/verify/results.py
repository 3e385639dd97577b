"""A goal run's result judged by the contract: did it do the work it says it did?

ByteBot's workflow completes with `status: FAILED` (and `errorDetails`) when its body failed,
so an execution's status says little; its result, against the run's own search attributes
(the plan's step count, the goal run id), says the rest. Pure reading of values: no I/O.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecution

from activities.verify.census import attribute
from models.contract import GoalRunContract


def result_failure(contract: GoalRunContract, result: Any) -> str | None:
    """Why a completed execution's result says the work was not done; None if it was.

    ByteBot's workflow completes with `status: FAILED` (and `errorDetails`) when its body
    failed: the execution status alone would count that as done.
    """
    if not isinstance(result, dict) or contract.status_field not in result:
        return f"result has no '{contract.status_field}': {str(result)[:120]}"
    status = result[contract.status_field]
    if status in contract.ok_statuses or status in contract.accepted_statuses:
        return None
    error = result.get(contract.error_field)
    if isinstance(error, dict):
        parts = [str(error[k]) for k in ("errorType", "errorMessage") if error.get(k)]
        if error.get("failedStep") is not None:
            parts.append(f"failed step {error['failedStep']}")
        detail = ": ".join(parts)
    else:
        detail = str(error or "no error details")
    return f"{contract.status_field} {status}: {detail}"[:300]


def wrong_result(
    contract: GoalRunContract, result: Any, execution: WorkflowExecution | None
) -> str | None:
    """Why a result that says the work was done contradicts the run's own record, if it does."""
    if (
        not isinstance(result, dict)
        or result.get(contract.status_field) not in contract.ok_statuses
    ):
        return None
    if execution is None:
        return None
    plan = attribute(execution, contract.plan_steps_attribute)
    done = result.get(contract.steps_field)
    if isinstance(plan, int) and done != plan:
        return (
            f"{contract.status_field} {result[contract.status_field]} with "
            f"{contract.steps_field}={done!r}, but the final plan has {plan} step(s)"
            f" ({contract.plan_steps_attribute})"
        )
    owner = attribute(execution, "ByteBotGoalRunId")
    said = result.get(contract.id_field)
    if isinstance(owner, str) and said is not None and said != owner:
        return f"{contract.id_field}={said!r} in the result of goal run {owner!r}"
    return None
