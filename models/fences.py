"""The namespace fence: the one rule for where a fault may reach, used by every layer.

The scenario resolver (before anything runs), both backends' previews and injections apply the
same rule, so a run is refused with the same words wherever it is caught. An empty list allows
nothing: a worker with no allowed namespace injects no fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def outside(namespaces: Iterable[str], allowed: Sequence[str]) -> list[str]:
    """The namespaces among `namespaces` that are not allowed, in order, once each."""
    return [ns for ns in dict.fromkeys(namespaces) if ns not in allowed]


def namespace_refusal(namespaces: Iterable[str], allowed: Sequence[str]) -> str | None:
    """Why a fault reaching these namespaces may not run, or None when it may."""
    refused = outside(namespaces, allowed)
    if not refused:
        return None
    return (
        f"namespace '{refused[0]}' is not allowed for chaos "
        f"(allowed: {', '.join(allowed) or 'none'})"
    )
