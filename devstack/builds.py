"""The Go-built dependencies of the dev stack, each cached outside the repo by its build script.

`scripts/build-*.sh` build (or find in `~/.cache/bytebot-chaos/`) kube-apiserver,
kube-controller-manager and Chaos Mesh 2.6.7 (its CRDs and gRPC contracts from the Go module,
and chaos-controller-manager). This module only runs those scripts and names what they made: it
never builds anything itself and never reads a file outside the repo but the cache.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


class BuildError(RuntimeError):
    """A build script failed (its own output, on our stderr, says why)."""


def run_build(script: str, *args: str) -> Path:
    """Run `scripts/<script>` and return the path it prints last on stdout.

    A cold build takes minutes; a warm one only hashes the sources.

    Raises:
        BuildError: the script failed.
    """
    path = SCRIPTS / script
    # The script's progress goes to our stderr; only its last stdout line (the path) is ours.
    proc = subprocess.run(["bash", str(path), *args], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{path} failed with {proc.returncode} (see stderr)")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class ChaosMeshBuild:
    """What `scripts/build-chaos-mesh.sh` leaves in its cache directory."""

    root: Path

    @property
    def crds(self) -> Path:
        """The module's `config/crd/bases`: the Chaos Mesh CRD manifests."""
        return self.root / "crds"

    @property
    def proto(self) -> Path:
        """`chaosdaemon.proto` and `dns.proto`, the contracts the controller dials."""
        return self.root / "proto"

    @property
    def controller(self) -> Path:
        """The chaos-controller-manager binary (only after `chaos_mesh(controller=True)`)."""
        return self.root / "chaos-controller-manager"


def chaos_mesh(*, controller: bool = True) -> ChaosMeshBuild:
    """Chaos Mesh from its Go module: CRDs and protos (seconds), and the controller if asked."""
    args = () if controller else ("--no-controller",)
    return ChaosMeshBuild(run_build("build-chaos-mesh.sh", *args))


def kube_apiserver() -> Path:
    """The kube-apiserver binary (embedded etcd)."""
    return run_build("build-kube-apiserver.sh")


def kube_controller_manager() -> Path:
    """The kube-controller-manager binary."""
    return run_build("build-kube-controller-manager.sh")
