"""Start and stop the real kube-controller-manager, with only the controllers the tests need.

The deployment, replicaset and garbage-collector controllers (built from `k8s.io/kubernetes`
by `scripts/build-kube-controller-manager.sh`) run against a `devstack.kube.KubeApiServer`, so
a Deployment keeps its replicas: a pod that Chaos Mesh kills is replaced by a new one, as in a
cluster. Nothing schedules or runs those pods: the tests play the scheduler's and kubelet's part
(binding and status), and say so. No other controller runs (no endpoints, service accounts or
node lifecycle), so objects the tests write by hand are left as they are.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Self

from devstack import builds
from devstack.kube import KubeApiServer
from devstack.processes import Service, stop_process_group

CONTROLLERS = ("deployment-controller", "replicaset-controller", "garbage-collector-controller")


class KubeControllerManagerError(RuntimeError):
    """kube-controller-manager could not be built or started."""


class KubeControllerManager(Service):
    """kube-controller-manager for one `KubeApiServer` (a context manager)."""

    def __init__(self, kube: KubeApiServer, work_dir: Path, *, binary: Path | None = None):
        """Prepare (not start) it; its log goes to `work_dir`."""
        self.kube = kube
        self.work_dir = Path(work_dir)
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.work_dir / "kube-controller-manager.log"

    def start(self) -> Self:
        """Start it; fails if it exits within its first second.

        Raises:
            KubeControllerManagerError: the build failed or the process exited at once.
        """
        if self._proc is not None:
            return self
        try:
            binary = self._binary or builds.kube_controller_manager()
        except builds.BuildError as err:
            raise KubeControllerManagerError(str(err)) from err
        self.work_dir.mkdir(parents=True, exist_ok=True)
        kubeconfig = str(self.kube.kubeconfig_path)
        args = [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            # Replacements come at once: the default sync waits are for real clusters.
            "--concurrent-deployment-syncs=2",
            "--concurrent-replicaset-syncs=2",
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        time.sleep(1)
        if self._proc.poll() is not None:
            code = self._proc.returncode
            self._proc = None
            tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
            raise KubeControllerManagerError(f"exited with {code}:\n" + "\n".join(tail))
        return self

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s). Safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process_group(proc, timeout_s=10)
