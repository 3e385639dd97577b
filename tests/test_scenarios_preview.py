"""Dry-run checks for what would silently do nothing (`activities.faults.preview`).

Pure tests on the imported ByteBot suite and small faults; the backends add these to their
preview (the Chaos Mesh backend with the containers of the pods it lists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from activities.faults.preview import container_problems, dns_problems, preview_problems
from activities.scenario_files import load_builtin, load_file
from control.importer.write import import_files
from models.faults import FaultSpec
from models.scenario import Scenario

SUITE = Path(__file__).resolve().parent / "data" / "bytebot-suite"
FAULT: TypeAdapter[Any] = TypeAdapter(FaultSpec)


def test_the_seeds_container_kill_names_a_container_the_real_pods_do_not_have(
    tmp_path: Path,
) -> None:
    import_files([SUITE / "pod-failure.yaml"], tmp_path)
    imported = Scenario.model_validate(load_file(tmp_path / "pod-failure.yaml"))
    kill = imported.steps[2].faults[0]
    [problem] = container_problems(kill, [{"worker"}, {"worker"}, {"worker"}])
    assert "temporal-worker" in problem and "they have worker" in problem
    ported = load_builtin("pod-failure").steps[2].faults[0]
    assert container_problems(ported, [{"worker"}]) == []


def test_a_mode_value_out_of_range_for_the_matching_pods_is_named() -> None:
    fixed = FAULT.validate_python(
        {"action": "pod-kill", "duration": "30s", "target": {"mode": "fixed", "value": 5}}
    )
    [problem] = preview_problems(fixed, matched=3)
    assert "fixed 5" in problem and "3" in problem
    assert preview_problems(fixed, matched=5) == []
    percent = FAULT.validate_python(
        {
            "action": "pod-failure",
            "duration": "30s",
            "target": {"mode": "fixed-percent", "value": 20},
        }
    )
    assert "rounds down to none" in preview_problems(percent, matched=3)[0]
    assert preview_problems(percent, matched=5) == []


def test_a_dns_pattern_no_dependency_matches_is_named_and_the_seeds_match() -> None:
    for step in load_builtin("network-chaos").steps:
        assert dns_problems(step.faults[0]) == []
    stray = FAULT.validate_python(
        {"action": "dns-error", "duration": "30s", "patterns": ["temporal*", "redis.cache"]}
    )
    [problem] = dns_problems(stray)
    assert "'redis.cache'" in problem
