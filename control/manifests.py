"""The seed's hand-applied manifest files, generated from the built-in scenarios.

Owns the files of `manifests/` (`pod-failure.yaml`, `network-chaos.yaml`, `stress-chaos.yaml`,
`chaos-workflow.yaml`: ByteBot's four suite files, rendered from their ported scenarios) and
their CLI, `python -m control.manifests write|check DIR`. The documents themselves are
rendered by `activities.faults.chaos_mesh.documents`; this module only adds each file's
header and writes or compares the files. It never talks to the Kubernetes API and writes
nowhere but the directory it is given.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from activities.faults.chaos_mesh.documents import render_scenario
from activities.faults.chaos_mesh.render import RenderError
from activities.scenario_files import load_builtin
from models.scenario import Scenario

#: ByteBot's hand-applied manifests and the built-in scenarios they are generated from.
SEED_MANIFESTS = {
    "pod-failure.yaml": ("pod-failure",),
    "network-chaos.yaml": ("network-chaos",),
    "stress-chaos.yaml": ("stress-chaos",),
    "chaos-workflow.yaml": ("temporal-resilience-test", "weekly-resilience-test"),
}


def manifest_file(file: str, scenarios: Sequence[Scenario]) -> str:
    """The content of a generated manifest file: a header, then each scenario's documents."""
    sources = ", ".join(f"scenarios/{s.name}.yaml" for s in scenarios)
    header = "".join(f"# {s.name}: {s.description or s.name}\n" for s in scenarios) + (
        f"# Generated from {sources} by "
        "`python -m control.manifests write manifests/`; do not edit by hand.\n"
        f"# Apply: kubectl apply -f {file}   Remove: kubectl delete -f {file}\n"
        "# Each fault ends by itself after its `duration`; delete the objects afterwards.\n"
    )
    return header + "".join(render_scenario(s) for s in scenarios)


def expected_manifests() -> dict[str, str]:
    """File name -> content of every generated manifest, from the built-in scenarios.

    Raises:
        RenderError: a built-in scenario has a fault Chaos Mesh cannot express.
    """
    return {
        file: manifest_file(file, [load_builtin(n) for n in names])
        for file, names in SEED_MANIFESTS.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m control.manifests write|check DIR`: write the manifests, or find drift."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ("write", "check"):
        print("usage: python -m control.manifests write|check DIR", file=sys.stderr)
        return 2
    command, directory = args[0], Path(args[1])
    failed = []
    for file, names in SEED_MANIFESTS.items():
        path = directory / file
        try:
            content = manifest_file(file, [load_builtin(name) for name in names])
        except RenderError as err:
            print(f"{path}: scenarios {', '.join(names)}: {err}", file=sys.stderr)
            failed.append(str(path))
            continue
        if command == "write":
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path}")
        elif not path.is_file() or path.read_text() != content:
            print(
                f"{path} is out of date: run `python -m control.manifests write {directory}`",
                file=sys.stderr,
            )
            failed.append(str(path))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
