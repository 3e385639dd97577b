"""The shapes the importer reads, checked before it reads them: a wrong shape names its line.

Fuzzing the importer (tests/test_fuzz.py) found documents that crashed it with a TypeError or
AttributeError (a selector that is a list, a `loss` that is a number, `metadata` a string).
Each field the importer reads is checked here first against the type Chaos Mesh's CRDs give
it; a mismatch becomes a `refused` issue naming the file's line and the field's path. Fields
not listed are not read, and the importer's own field checks report them.
"""

from __future__ import annotations

from typing import Any

from control.importer.lines import Located

Shape = str | tuple[str, Any] | dict[str, Any]
SCALAR = "scalar"

_SELECTOR: dict[str, Shape] = {
    "namespaces": ("list", SCALAR),
    "labelSelectors": ("map", SCALAR),
}
_TARGET: dict[str, Shape] = {"selector": _SELECTOR, "mode": SCALAR, "value": SCALAR}
#: A chaos object's spec (PodChaos, NetworkChaos, StressChaos, DNSChaos).
CHAOS_SPEC: dict[str, Shape] = {
    **_TARGET,
    "duration": SCALAR,
    "action": SCALAR,
    "containerNames": ("list", SCALAR),
    "gracePeriod": SCALAR,
    "direction": SCALAR,
    "delay": ("map", SCALAR),
    "loss": ("map", SCALAR),
    "bandwidth": ("map", SCALAR),
    "target": _TARGET,
    "externalTargets": ("list", SCALAR),
    "stressors": ("map", ("map", "any")),
    "stressngStressors": SCALAR,
    "patterns": ("list", SCALAR),
}
_EMBEDDED = ("podChaos", "networkChaos", "stressChaos", "dnsChaos")
_TEMPLATE: dict[str, Shape] = {
    "name": SCALAR,
    "templateType": SCALAR,
    "deadline": SCALAR,
    "children": ("list", SCALAR),
    "suspend": ("map", "any"),
    **dict.fromkeys(_EMBEDDED, CHAOS_SPEC),
}
WORKFLOW_SPEC: dict[str, Shape] = {"entry": SCALAR, "templates": ("list", _TEMPLATE)}
SCHEDULE_SPEC: dict[str, Shape] = {
    "schedule": SCALAR,
    "type": SCALAR,
    "concurrencyPolicy": SCALAR,
    "historyLimit": SCALAR,
    "startingDeadlineSeconds": SCALAR,
    "workflow": WORKFLOW_SPEC,
    **dict.fromkeys(_EMBEDDED, CHAOS_SPEC),
}
_META: dict[str, Shape] = {"name": SCALAR, "namespace": SCALAR, "labels": ("map", "any")}


def document_shape(kind: str) -> dict[str, Shape]:
    """The shape of a whole document of `kind`."""
    known = {"Workflow": WORKFLOW_SPEC, "Schedule": SCHEDULE_SPEC}
    known |= dict.fromkeys(("PodChaos", "NetworkChaos", "StressChaos", "DNSChaos"), CHAOS_SPEC)
    top: dict[str, Shape] = {"kind": SCALAR, "apiVersion": SCALAR, "metadata": _META}
    # Another kind is refused as a whole; its spec is not read.
    return {**top, "spec": known[kind]} if kind in known else top


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"[:60]


def problems(value: Any, shape: Shape, path: str, line: int) -> list[tuple[int, str, str]]:
    """(line, path, message) for each part of `value` not of `shape`; `None` counts as absent."""
    if value is None or shape == "any":
        return []
    if shape == SCALAR:
        if isinstance(value, dict | list):
            return [(line, path, f"must be a single value, not {_kind_of(value)}")]
        return []
    if isinstance(shape, tuple):
        container, inner = shape
        if container == "list":
            if not isinstance(value, list):
                return [(line, path, f"must be a list, not {_kind_of(value)}")]
            return [
                p for i, v in enumerate(value) for p in problems(v, inner, f"{path}[{i}]", line)
            ]
        if not isinstance(value, dict):
            return [(line, path, f"must be a mapping, not {_kind_of(value)}")]
        return [
            p
            for k, v in value.items()
            for p in problems(v, inner, f"{path}.{k}", _line(value, k, line))
        ]
    if isinstance(shape, str):  # "any", or a name this table does not use
        return []
    if not isinstance(value, dict):
        return [(line, path, f"must be a mapping, not {_kind_of(value)}")]
    found = []
    for key, inner_shape in shape.items():
        if key in value:
            where = f"{path}.{key}" if path else key
            found += problems(value[key], inner_shape, where, _line(value, key, line))
    return found


def _line(mapping: dict[str, Any], key: str, default: int) -> int:
    return mapping.line_of(key) if isinstance(mapping, Located) else default
