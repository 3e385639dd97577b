"""The built-in scenarios are ByteBot's own Chaos Mesh suite: render gives the original specs.

The originals are copies in tests/data/bytebot-suite/ (never ../shared: a clone has none).
Each rendered `spec` must equal the original's field by field, apart from the differences the
README documents as deliberate; `deliberate()` applies exactly those to the original, so a
difference that is not documented fails here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.faults.chaos_mesh.documents import (
    render_objects,
    render_schedule,
    render_workflow,
)
from activities.scenario_files import load_builtin
from models.durations import parse_duration

SUITE = Path(__file__).resolve().parent / "data" / "bytebot-suite"
DURATION_FIELDS = {"duration", "deadline", "latency", "jitter"}


def same_durations(value: Any) -> Any:
    """Duration fields as timedeltas: "60s" and "1m" are the same duration to Chaos Mesh."""
    if isinstance(value, dict):
        return {
            k: parse_duration(v) if k in DURATION_FIELDS else same_durations(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [same_durations(v) for v in value]
    return value


def originals(file: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SUITE / file).read_text()) if d]


def deliberate(obj: dict[str, Any]) -> dict[str, Any]:
    """The original spec with the documented deliberate differences applied."""
    spec = copy.deepcopy(obj["spec"])
    name = obj["metadata"]["name"]
    if obj["kind"] == "PodChaos":
        spec.pop("scheduler", None)  # Chaos Mesh 1.x; 2.x ignores it
        if spec.get("containerNames") == ["temporal-worker"]:
            spec["containerNames"] = ["worker"]  # the container the real pods have
    if obj["kind"] == "StressChaos" and "memory" in spec["stressors"]:
        spec["stressors"]["memory"].setdefault("oomScoreAdj", 0)  # the CRD's default
    workflow = spec if obj["kind"] == "Workflow" else spec.get("workflow")
    if workflow is not None:
        entry = workflow["entry"]
        for template in workflow["templates"]:
            if template["name"] == entry:
                template["name"] = "entry"
            if template["templateType"] == "Suspend":
                template["deadline"] = template.pop("suspend")["duration"]  # 2.x's field
        workflow["entry"] = "entry"
    assert name
    return same_durations(spec)


@pytest.mark.parametrize("file", ["pod-failure.yaml", "network-chaos.yaml", "stress-chaos.yaml"])
def test_each_suite_file_is_one_step_per_object_with_the_same_spec(file: str) -> None:
    scenario = load_builtin(file.removesuffix(".yaml"))
    wanted = originals(file)
    rendered = [obj for _, obj in render_objects(scenario)]
    assert [s.name for s in scenario.steps] == [o["metadata"]["name"] for o in wanted]
    assert len(rendered) == len(wanted)
    for ours, theirs in zip(rendered, wanted, strict=True):
        assert ours["kind"] == theirs["kind"], theirs["metadata"]["name"]
        assert ours["metadata"]["namespace"] == theirs["metadata"]["namespace"]
        assert same_durations(ours["spec"]) == deliberate(theirs), theirs["metadata"]["name"]


def test_the_workflow_is_ported_step_for_step_with_suspends_as_pauses() -> None:
    [workflow, _] = originals("chaos-workflow.yaml")
    scenario = load_builtin("temporal-resilience-test")
    assert [s.pause is not None for s in scenario.steps] == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
    ]
    ours = render_workflow(scenario)
    assert ours["kind"] == "Workflow"
    assert ours["metadata"]["namespace"] == workflow["metadata"]["namespace"]
    assert same_durations(ours["spec"]) == deliberate(workflow)


def test_the_weekly_schedule_is_ported_with_its_cron_policy_and_workflow() -> None:
    [_, schedule] = originals("chaos-workflow.yaml")
    scenario = load_builtin("weekly-resilience-test")
    assert scenario.schedule is not None
    assert scenario.schedule.cron == "0 2 * * 0"
    ours = render_schedule(scenario)
    assert ours["kind"] == "Schedule"
    assert same_durations(ours["spec"]) == deliberate(schedule)


def test_the_deliberate_differences_are_the_only_ones() -> None:
    # Without the documented adjustments the originals differ exactly where the README says.
    pod_kill, _, container_kill, *_ = originals("pod-failure.yaml")
    assert pod_kill["spec"]["scheduler"] == {"cron": "@every 2m"}
    assert container_kill["spec"]["containerNames"] == ["temporal-worker"]
    rendered = dict(render_objects(load_builtin("pod-failure")))
    specs = [obj["spec"] for obj in rendered.values()]
    assert "scheduler" not in specs[0]
    assert specs[2]["containerNames"] == ["worker"]
