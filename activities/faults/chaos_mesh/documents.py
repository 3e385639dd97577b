"""Whole scenarios as Chaos Mesh documents: separate objects, one Workflow, or one Schedule.

`render_scenario` is what `starter.py render` prints and what `manifests/` holds. A scenario
becomes, in its `auto` form:

- a `Schedule` when it carries `schedule` (type `Workflow`, or the kind of its single fault);
- a `Workflow` when it has pauses or parallel steps: a `Serial` entry whose children are one
  template per step, in order (`Suspend` with a `deadline` for a pause, `Parallel` for faults
  held together, the chaos kind with its whole spec for a fault);
- otherwise one object per fault, in step order (what `kubectl apply -f` of a suite file is).

Template names are the step names (else the fault's label, or `pause-<i>`), made unique; the
entry template is `entry`. Pure like `render`: no API, no clock, no files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

import yaml

from activities.faults.chaos_mesh.render import (
    API_VERSION,
    DEFAULT_PEERS,
    LABEL_PART_OF,
    MANUAL_RUN,
    TOOL,
    PeerMap,
    fault_spec,
    kind_of,
    render_fault,
)
from models.durations import format_duration
from models.faults import FaultSpec
from models.scenario import Scenario, Step

Form = Literal["auto", "objects", "workflow", "schedule"]
ENTRY = "entry"
_NOT_NAME = re.compile(r"[^-a-z0-9]+")


def manual_name(scenario: Scenario, step: int, label: str) -> str:
    """Name of a hand-applied object: `<scenario>-<step>-<fault>`."""
    return f"{scenario.name}-{step:02d}-{label}"


def form_of(scenario: Scenario) -> Literal["objects", "workflow", "schedule"]:
    """The form `auto` picks for a scenario."""
    if scenario.schedule is not None:
        return "schedule"
    if any(step.pause is not None or len(step.faults) > 1 for step in scenario.steps):
        return "workflow"
    return "objects"


def embedded_field(fault: FaultSpec) -> str:
    """The field of a template or Schedule that holds a chaos spec, e.g. `networkChaos`."""
    kind = kind_of(fault).kind
    lead = "dns" if kind == "DNSChaos" else kind[0].lower() + kind[1:-5]
    return f"{lead}Chaos"


def chaos_template(name: str, fault: FaultSpec, peers: PeerMap) -> dict[str, Any]:
    """A Workflow template that runs one fault (its spec, `duration` included)."""
    return {
        "name": name,
        "templateType": kind_of(fault).kind,
        embedded_field(fault): fault_spec(fault, peers),
    }


def _step_names(scenario: Scenario) -> Iterator[str]:
    seen: set[str] = set()
    for index, step in enumerate(scenario.steps):
        base = step.name or (f"pause-{index}" if step.pause is not None else step.label)
        name = _NOT_NAME.sub("-", base.lower()).strip("-")[:50] or f"step-{index}"
        if name in seen or name == ENTRY:
            name = f"{name}-{index}"
        seen.add(name)
        yield name


def _step_templates(name: str, step: Step, peers: PeerMap) -> list[dict[str, Any]]:
    if step.pause is not None:
        return [{"name": name, "templateType": "Suspend", "deadline": format_duration(step.pause)}]
    if len(step.faults) == 1:
        return [chaos_template(name, step.faults[0], peers)]
    children = [chaos_template(f"{name}-{fault.label}", fault, peers) for fault in step.faults]
    parallel = {"name": name, "templateType": "Parallel", "children": [c["name"] for c in children]}
    return [parallel, *children]


def workflow_spec(scenario: Scenario, peers: PeerMap = DEFAULT_PEERS) -> dict[str, Any]:
    """The `spec` of a Chaos Mesh Workflow that runs the scenario's steps in series."""
    names = list(_step_names(scenario))
    templates: list[dict[str, Any]] = [{"name": ENTRY, "templateType": "Serial", "children": names}]
    for name, step in zip(names, scenario.steps, strict=True):
        templates += _step_templates(name, step, peers)
    return {"entry": ENTRY, "templates": templates}


def _namespace(scenario: Scenario) -> str:
    return next((f.target.namespace for s in scenario.steps for f in s.faults), "bytebot")


def _object(kind: str, scenario: Scenario, run_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": scenario.name,
            "namespace": _namespace(scenario),
            "labels": {LABEL_PART_OF: TOOL, "chaos.bytebot.io/run": run_id},
        },
        "spec": spec,
    }


def render_workflow(
    scenario: Scenario, run_id: str = MANUAL_RUN, peers: PeerMap = DEFAULT_PEERS
) -> dict[str, Any]:
    """The scenario as one Chaos Mesh Workflow object."""
    return _object("Workflow", scenario, run_id, workflow_spec(scenario, peers))


def schedule_spec(scenario: Scenario, peers: PeerMap = DEFAULT_PEERS) -> dict[str, Any]:
    """The `spec` of a Chaos Mesh Schedule for a scenario with `schedule` settings."""
    settings = scenario.schedule
    if settings is None:
        raise ValueError(f"scenario {scenario.name} has no schedule settings")
    spec: dict[str, Any] = {"schedule": settings.cron}
    faults = [f for s in scenario.steps for f in s.faults]
    if len(scenario.steps) == 1 and len(faults) == 1:
        spec["type"] = kind_of(faults[0]).kind
        spec[embedded_field(faults[0])] = fault_spec(faults[0], peers)
    else:
        spec["type"] = "Workflow"
        spec["workflow"] = workflow_spec(scenario, peers)
    if settings.history_limit is not None:
        spec["historyLimit"] = settings.history_limit
    spec["concurrencyPolicy"] = settings.concurrency_policy.value
    if settings.starting_deadline is not None:
        spec["startingDeadlineSeconds"] = int(settings.starting_deadline.total_seconds())
    return spec


def render_schedule(
    scenario: Scenario, run_id: str = MANUAL_RUN, peers: PeerMap = DEFAULT_PEERS
) -> dict[str, Any]:
    """The scenario as one Chaos Mesh Schedule object."""
    return _object("Schedule", scenario, run_id, schedule_spec(scenario, peers))


def render_objects(
    scenario: Scenario, run_id: str = MANUAL_RUN, peers: PeerMap = DEFAULT_PEERS
) -> list[tuple[str, dict[str, Any]]]:
    """One (comment, object) per fault, in step order (pauses have no object)."""
    docs = []
    for index, step in enumerate(scenario.steps):
        for fault in step.faults:
            obj = render_fault(
                fault,
                name=manual_name(scenario, index, fault.label),
                scenario_id=run_id,
                step=index,
                managed=False,
                peers=peers,
            )
            docs.append(
                (f"step {index} ({step.label}), {fault.action}: {fault.expected.summary}", obj)
            )
    return docs


def render_scenario(
    scenario: Scenario,
    run_id: str = MANUAL_RUN,
    peers: PeerMap = DEFAULT_PEERS,
    form: Form = "auto",
) -> str:
    """The scenario as multi-document Chaos Mesh YAML in the given form.

    Raises:
        RenderError: a fault cannot be expressed in Chaos Mesh's API.
        ValueError: `schedule` asked of a scenario without schedule settings.
    """
    chosen = form_of(scenario) if form == "auto" else form
    if chosen == "objects":
        docs = render_objects(scenario, run_id, peers)
    elif chosen == "workflow":
        docs = [
            (
                f"{scenario.name}: {len(scenario.steps)} steps in series",
                render_workflow(scenario, run_id, peers),
            )
        ]
    else:
        docs = [
            (
                f"{scenario.name}: {scenario.schedule.cron if scenario.schedule else ''} (UTC)",
                render_schedule(scenario, run_id, peers),
            )
        ]
    return "".join(
        f"---\n# {comment}\n" + yaml.safe_dump(obj, sort_keys=False) for comment, obj in docs
    )
