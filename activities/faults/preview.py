"""Backend-neutral dry-run checks: what would make a fault silently do nothing.

Chaos Mesh accepts all of these and then injects nothing (or less than asked): a
`containerNames` entry no target pod has, a `fixed` count larger than the pods that match, a
percentage that rounds to no pod, a DNS pattern no dependency of the worker matches. Both
backends add these to their preview, so a dry run (and the injection, which previews first)
says so before anything is injected. Pure: the caller passes what it found.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.faults import ContainerKill, DnsFaultBase, FaultBase
from models.peers import PEER_CATALOG, peers_matching_pattern
from models.targets import PodTarget, SelectMode


def container_problems(fault: FaultBase, containers: Sequence[set[str]]) -> list[str]:
    """container-kill names that none of the selected pods (their container names) has."""
    if not isinstance(fault, ContainerKill) or not containers:
        return []
    present = set().union(*containers)
    missing = [c for c in fault.container_names if c not in present]
    if not missing:
        return []
    return [
        f"containerNames {', '.join(missing)}: no target pod has such a container (they have "
        f"{', '.join(sorted(present)) or 'none'}); Chaos Mesh would kill nothing"
    ]


def mode_problems(target: PodTarget, matched: int) -> list[str]:
    """A mode value the matching pods cannot satisfy."""
    if matched == 0 or target.value is None:
        return []
    if target.mode is SelectMode.FIXED and target.value > matched:
        return [
            f"mode fixed {target.value} asks for more pods than the {matched} that match "
            f"{target.describe()}"
        ]
    if target.mode is SelectMode.FIXED_PERCENT and matched * target.value // 100 == 0:
        return [f"fixed-percent {target.value} of {matched} matching pods rounds down to none"]
    return []


def dns_problems(fault: FaultBase) -> list[str]:
    """DNS patterns that match none of the worker's dependencies."""
    if not isinstance(fault, DnsFaultBase):
        return []
    hosts = ", ".join(p.host for p in PEER_CATALOG.values())
    return [
        f"DNS pattern '{pattern}' matches none of the worker's dependencies ({hosts})"
        for pattern in fault.patterns
        if not peers_matching_pattern(pattern)
    ]


def preview_problems(
    fault: FaultBase, matched: int, containers: Sequence[set[str]] = ()
) -> list[str]:
    """Every check above for one fault on ``matched`` pods with these containers."""
    return [
        *mode_problems(fault.target, matched),
        *container_problems(fault, containers),
        *dns_problems(fault),
    ]
