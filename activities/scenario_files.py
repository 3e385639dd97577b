"""Scenario files: the built-in scenarios in `scenarios/` and any file a person passes.

Files are YAML or JSON and validate against the same `Scenario` model as `--input`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from models.scenario import Scenario

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


class UnknownScenario(LookupError):
    """No built-in scenario has this name."""


def builtin_names() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def read_document(path: Path) -> Any:
    """Parse a YAML or JSON file (JSON is YAML, but its errors read better from json)."""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


def load_builtin(name: str) -> Scenario:
    """The built-in scenario of this name, validated."""
    path = SCENARIO_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UnknownScenario(
            f"unknown scenario '{name}'; built-in scenarios: {', '.join(builtin_names())}"
        )
    return Scenario.model_validate(read_document(path))


def load_file(path: Path) -> Any:
    """A scenario file's content: a scenario, or a whole run input (`{"scenario": ...}`)."""
    return read_document(path)
