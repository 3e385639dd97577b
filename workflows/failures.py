"""How the orchestration names a failure: which phase failed, and its root cause in words.

Pure functions of Temporal's failure exceptions (no I/O), shared by the scenario and fault
workflows so a report says "a hold probe failed: ..." rather than a wrapper's generic text.
"""

from __future__ import annotations

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    TimeoutError,
)

#: Causes followed at most (a failure chain is short; this only bounds a pathological one).
_MAX_DEPTH = 8


def failure_text(error: BaseException) -> str:
    """The innermost message of an activity or application failure."""
    cause: BaseException | None = error
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    return str(cause)


def root_cause(error: BaseException) -> str:
    """A failure's chain in words, wrappers left out: `RecoveryFailed: recovery of x failed:
    ...`; a timeout names its type; an activity or child names what failed."""
    parts: list[str] = []
    cause: BaseException | None = error
    depth = 0
    while cause is not None and depth < _MAX_DEPTH:
        depth += 1
        text = ""
        if isinstance(cause, ActivityError):
            text = ""  # the activity is named by the phase; its cause says why
        elif isinstance(cause, ChildWorkflowError):
            text = ""  # the child is the fault itself
        elif isinstance(cause, TimeoutError):
            text = f"timed out ({cause.type.name.lower() if cause.type else 'timeout'})"
        elif isinstance(cause, ApplicationError):
            kind = f"{cause.type}: " if cause.type else ""
            text = f"{kind}{cause.message}"
        elif isinstance(cause, FailureError):
            text = cause.message or type(cause).__name__
        else:
            text = str(cause) or type(cause).__name__
        if text and not any(text in p for p in parts):
            parts.append(text)
        cause = cause.__cause__ if not isinstance(cause, FailureError) else cause.cause
    return ": ".join(parts) or type(error).__name__
