"""Readable forms of validation errors: one line per problem, naming the field."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError) -> str:
    """`steps.0.faults.0.duration: Field required` lines, one per problem."""
    lines = []
    for problem in error.errors():
        # Discriminated unions put the tag in the path (`pod-kill`); keep it, it names the kind.
        where = ".".join(str(part) for part in problem["loc"]) or "input"
        lines.append(f"{where}: {problem['msg']}")
    return "\n".join(lines)
