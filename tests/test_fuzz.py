"""Fuzzed input: every malformed input fails at once with an error naming the field.

Property-based (hypothesis), each on a bounded budget (`max_examples` below; the three take
about half a minute together on a busy 2-core machine):
- the scenario model: a valid input with one or two parts broken either validates (and is then
  bounded) or raises a `ValidationError` whose every problem has a field path; nothing else;
- `temporal workflow start --input` (the real CLI, the session dev server, a real worker with
  the stand-in marker backend): a broken input fails the run at once, naming the field, with
  no workflow task failure (which would retry for ever) and nothing injected;
- imported Chaos Mesh YAML (ByteBot's suite with one field broken, or its text corrupted):
  never a crash; a refusal names the file's line and the field.
What fuzzing found (and is fixed): a huge duration raised `OverflowError`, which pydantic does
not turn into a validation error (a bad `--input` became a workflow task failure); the
importer crashed (TypeError, AttributeError, KeyError) on a selector, `metadata`, `loss` or
`spec` of the wrong shape, and named line 0 for a missing `spec`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

from control.importer.write import import_files
from devstack.temporal import TemporalDevServer, temporal_cli
from models.imports import IssueKind
from models.scenario import MAX_FAULTS, MIN_PROBE_INTERVAL, Scenario, ScenarioInput
from tests.support.fuzzing import BASE, broken_inputs
from tests.support.scenario_runs import Harness

SUITE = Path(__file__).resolve().parent / "data" / "bytebot-suite"


def fuzz(max_examples: int) -> settings:
    """A bounded budget; no example database (the suite's runs stay independent)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _twice(case: tuple[dict[str, Any], str]) -> Any:
    data, how = case
    return broken_inputs(data).map(lambda again: (again[0], f"{how}; {again[1]}"))


def _locs(error: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in error.errors()]


@fuzz(400)
@given(broken_inputs() | broken_inputs().flatmap(_twice))
def test_a_broken_scenario_input_is_valid_and_bounded_or_refused_naming_its_field(
    case: tuple[dict[str, Any], str],
) -> None:
    data, how = case
    try:
        run = ScenarioInput.model_validate(data)
    except ValidationError as error:
        assert all(_locs(error)), (how, error.errors())
        return
    if isinstance(run.scenario, Scenario):
        durations = [f.duration for s in run.scenario.steps for f in s.faults]
        assert all(timedelta(0) < d <= timedelta(hours=1) for d in durations), how
        assert run.scenario.verification.probe_interval >= MIN_PROBE_INTERVAL, how
        assert run.scenario.fault_count <= MAX_FAULTS, how


def _invalid_cases(count: int) -> list[tuple[str, list[str]]]:
    """`count` broken inputs the model refuses, as JSON text, with the fields it names."""
    found: list[tuple[str, list[str]]] = []

    @fuzz(count * 4)
    @given(broken_inputs())
    def collect(case: tuple[dict[str, Any], str]) -> None:
        if len(found) >= count:
            return
        try:
            ScenarioInput.model_validate(case[0])
        except ValidationError as error:
            found.append((json.dumps(case[0]), _locs(error)))

    collect()
    return found


async def _start(server: TemporalDevServer, task_queue: str, workflow_id: str, text: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        str(temporal_cli()),
        *("workflow", "start", "--address", server.address, "--task-queue", task_queue),
        *("--type", "ChaosScenarioWorkflow", "--workflow-id", workflow_id, "--input", text),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), timeout=30)


@pytest.mark.timeout(180)
async def test_broken_input_through_temporal_workflow_start_fails_at_once_naming_the_field(
    harness: Harness, temporal_server: TemporalDevServer, client: Client
) -> None:
    cases = _invalid_cases(10)
    # Not an object at all, and a scenario that is no scenario.
    cases += [("null", ["input"]), ("[1, 2]", ["input"]), ('{"scenario": 7}', ["scenario"])]
    assert len(cases) >= 12
    for text, fields in cases:
        workflow_id = f"fuzz-{uuid.uuid4()}"
        assert await _start(temporal_server, harness.task_queue, workflow_id, text) == 0
        handle = client.get_workflow_handle(workflow_id)
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), timeout=20)
        message = str(failure.value.cause)
        named = [f for f in fields if f in message or f.rsplit(".", 1)[-1] in message]
        assert named or fields == ["input"], (text, fields, message)
        history = await handle.fetch_history()
        types = [e.event_type for e in history.events]
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in types, text
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in types, text
        assert harness.backend.injected() == []
    # Text that is not JSON is the CLI's to refuse: nothing reaches the server.
    workflow_id = f"fuzz-{uuid.uuid4()}"
    assert await _start(temporal_server, harness.task_queue, workflow_id, '{"scenario": ') != 0
    assert [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")] == []


_DOCS = {
    p.name: [d for d in yaml.safe_load_all(p.read_text()) if d]
    for p in sorted(SUITE.glob("*.yaml"))
}
_OUT = Path(tempfile.mkdtemp(prefix="fuzz-import-"))


@st.composite
def _broken_suite_files(draw: st.DrawFn) -> tuple[str, str, str]:
    """(file name, YAML text, what was broken): one of ByteBot's suite files, one field broken."""
    name = draw(st.sampled_from(sorted(_DOCS)))
    docs = list(_DOCS[name])
    index = draw(st.integers(0, len(docs) - 1))
    broken, how = draw(broken_inputs({"doc": docs[index]}))
    docs[index] = broken.get("doc")
    text = yaml.safe_dump_all(docs, sort_keys=False)
    if draw(st.booleans()):  # or corrupt the text itself
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at] + draw(st.text(st.sampled_from(":-[]{}'\"\n #&*!|>"), max_size=4)) + text[at:]
        )
        how += " and the text corrupted"
    return name, text, how


@fuzz(300)
@given(_broken_suite_files())
def test_broken_chaos_mesh_yaml_is_refused_naming_its_line_and_field(
    case: tuple[str, str, str],
) -> None:
    name, text, how = case
    path = _OUT / name
    path.write_text(text)
    result = import_files([path], _OUT / "out", write=False)  # never raises
    for issue in result.issues:
        if issue.kind is IssueKind.REFUSED:
            located = issue.line >= 1 or f"{path}:" in issue.message
            assert located and issue.where, (how, str(issue))


def test_the_fuzz_base_input_is_valid() -> None:
    assert isinstance(ScenarioInput.model_validate(BASE).scenario, Scenario)
