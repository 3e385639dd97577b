"""Import files: read, map, validate, and write the scenario files (all or nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from control.importer.lines import YamlError, load_documents
from control.importer.suite import Draft, drafts_of
from models.errors import describe_validation_error
from models.imports import ImportIssue, ImportResult, IssueKind
from models.scenario import Scenario

DEFAULT_OUT = Path("scenarios/imported")
DEFAULT_DURATION = timedelta(seconds=60)


def _scenario(draft: Draft, file: str) -> Scenario:
    data: dict[str, Any] = {
        "name": draft.name,
        "description": f"Imported from {file} by `starter.py import`",
        "continue_on_failure": True,  # a Chaos Mesh suite runs every object, whatever happens
        **draft.data,
    }
    return Scenario.model_validate(data)


def scenario_text(scenario: Scenario, source: str) -> str:
    """A scenario file: a header, then the scenario without its defaults."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    for step, model in zip(data["steps"], scenario.steps, strict=True):
        # `action` is the discriminator: a default, yet the one field a fault needs.
        step["faults"] = [
            {"action": fault.action, **dumped}
            for fault, dumped in zip(model.faults, step.get("faults", []), strict=False)
        ]
        if not step["faults"]:
            del step["faults"]
    again = Scenario.model_validate(data)
    assert again == scenario, "an imported scenario must read back as itself"
    header = f"# Imported from {source} by `python starter.py import`; edit freely.\n"
    return header + yaml.safe_dump(data, sort_keys=False, width=100)


def import_files(
    paths: Sequence[Path],
    out_dir: Path = DEFAULT_OUT,
    *,
    skip_unsupported: bool = False,
    default_duration: timedelta = DEFAULT_DURATION,
    write: bool = True,
) -> ImportResult:
    """Import Chaos Mesh files into scenario files under ``out_dir``.

    Nothing is written when anything is refused; with ``skip_unsupported`` what cannot be
    carried over is skipped (and reported as such) and the rest is written.
    """
    issues: list[ImportIssue] = []
    texts: dict[str, str] = {}
    for path in paths:
        file = str(path)
        try:
            docs = load_documents(path.read_text(), file)
        except (OSError, YamlError) as err:
            issues.append(
                ImportIssue(
                    file=file, line=0, where="file", kind=IssueKind.REFUSED, message=str(err)
                )
            )
            continue
        drafts, found = drafts_of(file, path.stem, docs, default_duration)
        issues += found
        for draft in drafts:
            try:
                scenario = _scenario(draft, file)
            except ValidationError as err:
                issues.append(
                    ImportIssue(
                        file=file,
                        line=draft.line,
                        where=draft.name,
                        kind=IssueKind.REFUSED,
                        message=describe_validation_error(err).replace("\n", "; "),
                    )
                )
                continue
            name = scenario.name
            while f"{name}.yaml" in texts:
                name = f"{scenario.name}-{len(texts)}"
                scenario = scenario.model_copy(update={"name": name})
            texts[f"{name}.yaml"] = scenario_text(scenario, file)
    if skip_unsupported:
        issues = [
            i.model_copy(update={"kind": IssueKind.SKIPPED}) if i.kind is IssueKind.REFUSED else i
            for i in issues
        ]
    result = ImportResult(issues=issues)
    if result.refused or not write:
        return result
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in texts.items():
        (out_dir / file_name).write_text(text)
        written.append(str(out_dir / file_name))
    return ImportResult(written=written, issues=issues)
