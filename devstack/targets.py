"""Infrastructure as fault targets: the dev server and the broker under the local Deployment.

In the cluster the Temporal frontend and the Kafka broker are pods (namespaces ``temporal`` and
``kafka``) a scenario may kill, hold down or stress. Locally they are plain processes, so this
module runs each one under the local Deployment supervisor (``python -m standin.deployment
run``, the same supervisor as the workers'): one replica, restarted when it dies, held down
while a hold file is in force (the supervisor enforces its expiry, whoever wrote it), in its own
cgroups, published in ``<dir>/state.json``. Beside it, ``<dir>/target.json`` says which pods it
stands for (namespace, labels, container), which is how the local backend finds it:

    <local root>/targets/<name>/target.json   {"namespace", "labels", "container"}
    <local root>/targets/<name>/state.json    the supervisor's state (hold/, logs/ beside it)

The command keeps its ports and data across restarts (the dev server's database file, the
broker's log dir), as persistence does in the cluster, so clients reconnect to the same address.
It never signals a process it did not start (stopping the supervisor stops its replica).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from devstack.processes import Service, stop_process_group
from models.peers import PEER_CATALOG

#: Where the local backend looks for supervised infrastructure, under the local root.
TARGETS_DIR = "targets"
#: SIGTERM to SIGKILL for infrastructure: short, so a pod-failure of a few seconds takes the
#: process down within its hold (the dev server's own shutdown takes 10 s and more when busy).
INFRA_GRACE_S = 3.0
TEMPORAL_TARGET: dict[str, object] = {
    "name": "temporal-frontend",
    "namespace": PEER_CATALOG["temporal"].namespace,
    "labels": PEER_CATALOG["temporal"].labels,
    "container": "temporal-frontend",
}
KAFKA_TARGET: dict[str, object] = {
    "name": "core-cluster-kafka",
    "namespace": PEER_CATALOG["kafka"].namespace,
    "labels": {**PEER_CATALOG["kafka"].labels, "strimzi.io/name": "core-cluster-kafka"},
    "container": "kafka",
}


class SupervisedProcess(Service):
    """One command as a one-replica local Deployment that stands for a pod of ``target``."""

    def __init__(
        self,
        state_dir: Path,
        target: dict[str, object],
        argv: Sequence[str],
        *,
        ready_tcp: str,
        grace_s: float = INFRA_GRACE_S,
        cwd: Path | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.target = target
        self.argv = list(argv)
        self.ready_tcp = ready_tcp
        self.grace_s = grace_s
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """The replica's name (the pod's)."""
        return f"{self.target['name']}-0"

    def start(self, timeout_s: float = 60.0) -> Self:
        """Start the supervisor; return once it reports its replica ready."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "target.json").write_text(json.dumps(self.target, indent=2))
        (self.state_dir / "state.json").unlink(missing_ok=True)
        project = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")])),
        }
        cmd = [sys.executable, "-m", "standin.deployment", "run"]
        cmd += ["--state-dir", str(self.state_dir), "--name-prefix", str(self.target["name"])]
        cmd += ["--ready-tcp", self.ready_tcp, "--termination-grace-s", str(self.grace_s)]
        cmd += ["--", *self.argv]
        with open(self.state_dir / "supervisor.log", "ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd or self.state_dir,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"{self.name} was not ready in {timeout_s}s:\n{tail}")
            time.sleep(0.1)
        return self

    def poll(self) -> int | None:
        """None while the supervisor runs (its replica may be down: it restarts it)."""
        return self._proc.poll() if self._proc is not None else 0

    def replica(self) -> dict[str, object]:
        """The replica's entry in ``state.json`` ({} before it is written)."""
        try:
            state = json.loads((self.state_dir / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        replicas = state.get("replicas") or [{}]
        return dict(replicas[0])

    def ready(self) -> bool:
        """Whether the supervisor reports the replica running and ready."""
        replica = self.replica()
        return bool(replica.get("ready") and replica.get("pid"))

    @property
    def pid(self) -> int | None:
        """The supervised process's pid, while it runs."""
        pid = self.replica().get("pid")
        return int(pid) if isinstance(pid, int) else None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the replica's log (or the supervisor's, before it has one)."""
        logs = [self.state_dir / "logs" / f"{self.name}.log", self.state_dir / "supervisor.log"]
        for log in logs:
            if log.exists():
                return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        """Stop the supervisor, which stops its replica (SIGTERM, grace, SIGKILL); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process_group(proc, timeout_s=self.grace_s + 10)
