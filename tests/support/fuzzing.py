"""Hypothesis strategies for malformed input: a valid scenario input with one part broken.

Each example is a well-formed `ScenarioInput` (as JSON) with one mutation at a random path:
the value replaced by any JSON value, the key removed, or an unknown key added. Shared by the
model, `temporal workflow start` and importer fuzz tests (tests/test_fuzz.py).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

#: A valid input touching most of the model: a fault with a target, verification, aborts.
BASE: dict[str, Any] = {
    "scenario": {
        "name": "fuzz",
        "steps": [
            {
                "fault": {
                    "action": "network-delay",
                    "duration": "2s",
                    "latency": "100ms",
                    "target": {"labels": {"app": "bytebot-temporal-worker"}, "mode": "one"},
                }
            },
            {"pause": "1s"},
            {"faults": [{"action": "cpu-stress", "duration": "2s", "cpu": {"workers": 1}}]},
        ],
        "verification": {"settle": "10s", "probe_interval": "1s", "canary": {"count": 1}},
        "abort_conditions": {"max_failed_goal_runs": 3, "max_no_pollers": "30s"},
    },
    "dry_run": False,
    "duration_cap": "5s",
}

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "0s", "-1s", "1e309s", "99999999999h", "2h", "500ms", "1m30s", "all"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `value` (dict keys and list indexes), the root excluded."""
    found: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


PATHS = paths(BASE)


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


@st.composite
def broken_inputs(draw: st.DrawFn, base: dict[str, Any] = BASE) -> tuple[dict[str, Any], str]:
    """(input, what was done): one mutation of `base` at a random path."""
    data = copy.deepcopy(base)
    path = draw(st.sampled_from(paths(base)))
    parent, key = _parent(data, path), path[-1]
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    where = ".".join(str(p) for p in path)
    if how == "replace":
        parent[key] = draw(JSON)
    elif how == "remove":
        del parent[key]
    else:
        target = parent[key] if isinstance(parent[key], dict) else parent
        if not isinstance(target, dict):
            parent[key] = draw(JSON)
            return data, f"replace {where}"
        target[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in target))] = draw(JSON)
    return data, f"{how} {where}"
