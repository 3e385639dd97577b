"""Live progress of a run in the terminal: the run's phase and each running fault's hold.

Reads the parent's `status` query and each running child's `progress` query (the ledger no
longer floods the parent with signals, so the live view asks the children). On a terminal it
redraws one table in place with rich; otherwise (CI logs, pipes) it prints one plain line per
change of phase, with the fault, the time left in its hold and the probes so far.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from models.run import FaultProgress, RunStatus
from workflows import names


def fault_line(fault_id: str, progress: FaultProgress, now: datetime) -> str:
    """`pod-kill [hold] on replica-0: 12s left, 3 probes (last: 1 start ok, 2 pollers)`."""
    record = progress.record
    label = record.label if record else fault_id
    targets = ", ".join(t.name for t in record.targets) if record and record.targets else ""
    text = f"{label} [{progress.phase}]" + (f" on {targets}" if targets else "")
    details = []
    if progress.hold_until is not None and progress.phase in ("confirm", "hold"):
        details.append(f"{max(0.0, (progress.hold_until - now).total_seconds()):.0f}s left")
    if progress.probes:
        details.append(f"{progress.probes} probe{'s' if progress.probes > 1 else ''}")
    last = progress.last_probe
    if last is not None:
        starts = f"{last.canary_starts_ok} start ok" + (
            f", {last.canary_starts_failed} refused" if last.canary_starts_failed else ""
        )
        details.append(f"last: {starts}, {last.pollers} pollers")
    return text + (": " + ", ".join(details) if details else "")


class RunProgress:
    """Follows one run; `poll` is called with each status (see `control.runs.follow_run`).

    Args:
        client: Client of the run's namespace (to query the fault runs).
        workflow_id: The scenario run's workflow id; children are `<id>.<fault id>`.
        out: Where to write; rich's live view is used only when it is a terminal.
        live: Force the live view on or off (default: when `out` is a terminal).
    """

    def __init__(
        self,
        client: Client,
        workflow_id: str,
        out: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self.console = Console(file=out or sys.stdout)
        self.live = self.console.is_terminal if live is None else live
        self._view: Live | None = None
        self._last_line: dict[str, str] = {}

    def __enter__(self) -> RunProgress:
        if self.live:
            self._view = Live(console=self.console, refresh_per_second=4, transient=True)
            self._view.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._view is not None:
            self._view.stop()

    async def fault_progress(self, fault_id: str) -> FaultProgress | None:
        """A running fault's `progress` query; None while it cannot answer (starting, closed)."""
        handle = self.client.get_workflow_handle(f"{self.workflow_id}.{fault_id}")
        try:
            progress: FaultProgress = await handle.query(
                names.PROGRESS_QUERY, result_type=FaultProgress
            )
            return progress
        except (RPCError, WorkflowQueryFailedError):
            return None

    async def poll(self, status: RunStatus) -> None:
        """Show this status and the running faults' progress."""
        now = datetime.now(UTC)
        faults = {f: await self.fault_progress(f) for f in status.running_faults}
        lines = {f: fault_line(f, p, now) for f, p in faults.items() if p is not None}
        head = f"{status.scenario}: {status.phase}" + (" (paused)" if status.paused else "")
        if self._view is not None:
            table = Table(title=head, show_header=False, expand=False)
            table.add_column("fault")
            for line in lines.values() or ["-"]:
                table.add_row(Text(line))  # plain text: "[hold]" is not markup
            self._view.update(table)
            return
        # Plain: one line per change of the run's phase or of a fault's phase or probe count.
        keys = {"run": head} | {
            f: f"{p.phase}/{p.probes}" for f, p in faults.items() if p is not None
        }
        for key, value in keys.items():
            if self._last_line.get(key) != value:
                self._last_line[key] = value
                text = f"  {head}" if key == "run" else f"    {lines[key]}"
                self.console.print(text, markup=False, highlight=False)
