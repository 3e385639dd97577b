"""`starter.py import`: Chaos Mesh suites become scenarios that render back the same specs.

Inputs: the copies of ByteBot's suite (tests/data/bytebot-suite/) and inputs written in Chaos
Mesh's documented format (tests/data/chaos-mesh/); never ../shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.faults.chaos_mesh.documents import render_objects, render_schedule, render_workflow
from activities.scenario_files import load_file
from control.importer.write import import_files
from models.imports import IssueKind
from models.scenario import Scenario
from starter import main
from tests.test_scenarios_fidelity import deliberate, originals, same_durations

DATA = Path(__file__).resolve().parent / "data"
SUITE = DATA / "bytebot-suite"
CHAOS_MESH = DATA / "chaos-mesh"


def imported(out: Path, name: str) -> Scenario:
    return Scenario.model_validate(load_file(out / f"{name}.yaml"))


def spec(obj: dict[str, Any]) -> Any:
    return same_durations(obj["spec"])


def test_bytebot_suite_imports_without_loss_but_the_named_1x_field(tmp_path: Path) -> None:
    result = import_files(sorted(SUITE.glob("*.yaml")), tmp_path)
    assert not result.refused
    assert sorted(Path(p).name for p in result.written) == [
        "network-chaos.yaml",
        "pod-failure.yaml",
        "stress-chaos.yaml",
        "temporal-resilience-test.yaml",
        "weekly-resilience-test.yaml",
    ]
    dropped = [i for i in result.issues if i.kind is IssueKind.DROPPED]
    assert [(Path(i.file).name, i.line, i.where) for i in dropped] == [
        ("pod-failure.yaml", 30, "PodChaos temporal-worker-pod-kill: spec.scheduler")
    ]
    assert "1.x" in dropped[0].message and "ignores" in dropped[0].message
    notes = [i for i in result.issues if i.kind is IssueKind.NOTE]
    assert [i.line for i in notes] == [39, 62, 81, 103]  # the four suspend.duration fields
    assert all("deadline" in i.message for i in notes)

    for file in ("pod-failure", "network-chaos", "stress-chaos"):
        ours = [obj for _, obj in render_objects(imported(tmp_path, file))]
        theirs = originals(f"{file}.yaml")
        for mine, original in zip(ours, theirs, strict=True):
            want = same_durations(dict(original["spec"]))
            want.pop("scheduler", None)
            if original["kind"] == "StressChaos" and "memory" in want["stressors"]:
                want["stressors"]["memory"].setdefault("oomScoreAdj", 0)
            assert mine["metadata"]["namespace"] == original["metadata"]["namespace"]
            assert spec(mine) == want, original["metadata"]["name"]
    # The import keeps the user's container name; the preview is what says no pod has it.
    [kill] = imported(tmp_path, "pod-failure").steps[2].faults
    assert getattr(kill, "container_names") == ["temporal-worker"]  # noqa: B009

    [workflow, schedule] = originals("chaos-workflow.yaml")
    assert spec(render_workflow(imported(tmp_path, "temporal-resilience-test"))) == deliberate(
        workflow
    )
    weekly = imported(tmp_path, "weekly-resilience-test")
    assert weekly.schedule is not None and weekly.schedule.cron == "0 2 * * 0"
    assert spec(render_schedule(weekly)) == deliberate(schedule)


def test_status_checks_and_tasks_are_refused_with_their_lines_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    result = import_files([CHAOS_MESH / "serial-workflow.yaml"], tmp_path / "out")
    assert result.refused and result.written == []
    assert not (tmp_path / "out").exists()
    refused = {
        (i.line, i.where.split(": ")[1]) for i in result.issues if i.kind is IssueKind.REFUSED
    }
    assert refused == {(67, "template check-health"), (78, "template run-task")}
    messages = " ".join(i.message for i in result.issues)
    assert "StatusCheck" in messages and "Task" in messages


def test_skipping_imports_the_rest_of_a_workflow_with_parallel_steps(tmp_path: Path) -> None:
    result = import_files([CHAOS_MESH / "serial-workflow.yaml"], tmp_path, skip_unsupported=True)
    assert not result.refused
    assert {i.kind for i in result.issues} >= {IssueKind.SKIPPED}
    scenario = imported(tmp_path, "try-serial")
    assert [s.label for s in scenario.steps] == ["burn-cpu", "prefix-suspending", "together"]
    together = scenario.steps[2]
    assert [f.action for f in together.faults] == ["network-delay", "pod-kill"]
    # Template deadlines bound the faults; the selector's namespace is the object's.
    assert [f.duration.total_seconds() for f in together.faults] == [20, 30]
    assert together.faults[1].target.namespace == "bytebot"
    templates = {t["name"]: t for t in render_workflow(scenario)["spec"]["templates"]}
    assert templates["together"]["children"] == ["together-slow-kafka", "together-kill-one"]
    assert templates["together-slow-kafka"]["networkChaos"]["delay"] == {
        "latency": "90ms",
        "jitter": "90ms",
        "correlation": "25",
    }
    assert templates["together-kill-one"]["podChaos"]["value"] == "2"
    assert templates["prefix-suspending"]["deadline"] == "10s"


def test_a_schedule_of_one_chaos_object_keeps_its_settings(tmp_path: Path) -> None:
    result = import_files([CHAOS_MESH / "schedule-pod-kill.yaml"], tmp_path)
    assert not result.refused
    [note] = [i for i in result.issues if i.kind is IssueKind.NOTE]
    assert "no duration" in note.message  # Chaos Mesh would hold it until deleted
    scenario = imported(tmp_path, "schedule-pod-kill")
    assert scenario.schedule is not None
    assert scenario.schedule.concurrency_policy.value == "Allow"
    rendered = render_schedule(scenario)["spec"]
    original = yaml.safe_load((CHAOS_MESH / "schedule-pod-kill.yaml").read_text())["spec"]
    original["podChaos"]["selector"]["namespaces"] = ["bytebot"]  # the object's namespace
    original["podChaos"]["duration"] = "1m"  # the default bound, as the note says
    assert rendered == original


def test_other_kinds_fields_it_cannot_express_typos_and_bad_values_are_named_by_line(
    tmp_path: Path,
) -> None:
    result = import_files([CHAOS_MESH / "mixed.yaml"], tmp_path)
    assert result.refused and result.written == []
    by_line = {i.line: i for i in result.issues}
    assert by_line[3].kind is IssueKind.REFUSED and "IOChaos" in by_line[3].message
    assert by_line[32].kind is IssueKind.REFUSED and "peakrate" in by_line[32].where
    assert by_line[46].kind is IssueKind.DROPPED and "durration" in by_line[46].where
    [bad_value] = [i for i in result.issues if "too-many" in i.where]
    assert 52 <= bad_value.line <= 62 and "value" in bad_value.message
    assert "between 1 and 100" in bad_value.message


def test_bad_yaml_is_refused_naming_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: PodChaos\nspec:\n  action: [pod-kill\n  mode: one\n")
    [issue] = import_files([bad], tmp_path / "out").issues
    assert issue.kind is IssueKind.REFUSED and "not valid YAML" in issue.message
    assert f"{bad}:" in issue.message and issue.file == str(bad)


def test_the_import_command_writes_to_out_and_fails_on_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "imported"
    assert main(["import", str(SUITE / "pod-failure.yaml"), "--out", str(out)]) == 0
    assert (out / "pod-failure.yaml").is_file()
    assert "spec.scheduler" in capsys.readouterr().err
    assert main(["import", str(CHAOS_MESH / "mixed.yaml"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{CHAOS_MESH / 'mixed.yaml'}:3: refused" in err and "nothing written" in err
