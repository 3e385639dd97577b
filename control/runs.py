"""Starting and following chaos runs from Python (what `starter.py run` does)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.scenario_files import load_builtin, load_file
from models.errors import describe_validation_error
from models.report import ScenarioReport
from models.run import RunStatus
from models.scenario import ScenarioInput
from workflows import names

#: How long following a run rides out an unreachable frontend (a fault on Temporal itself).
FRONTEND_OUTAGE_S = 300.0


class BadInput(ValueError):
    """The run's input is invalid; nothing was started."""


def build_input(
    scenario: str,
    *,
    dry_run: bool = False,
    backend: str | None = None,
    duration_cap: str | None = None,
    settle_cap: str | None = None,
) -> ScenarioInput:
    """A ScenarioInput from a built-in name or a file (a scenario or a whole input)."""
    try:
        fields: dict[str, Any] = {}
        path = Path(scenario)
        if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
            document = load_file(path)
            fields = document if "scenario" in document else {"scenario": document}
        else:
            load_builtin(scenario)  # fails early, naming the built-in scenarios
            fields = {"scenario": scenario}
        overrides = {
            "dry_run": dry_run or None,
            "backend": backend,
            "duration_cap": duration_cap,
            "settle_cap": settle_cap,
        }
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return ScenarioInput.model_validate(fields)
    except ValidationError as err:
        raise BadInput(describe_validation_error(err)) from err
    except (LookupError, OSError, json.JSONDecodeError) as err:
        raise BadInput(str(err)) from err


async def start_run(
    client: Client, run_input: ScenarioInput, task_queue: str, workflow_id: str | None = None
) -> WorkflowHandle[Any, ScenarioReport]:
    """Start ChaosScenarioWorkflow; the handle of the run."""
    name = run_input.scenario if isinstance(run_input.scenario, str) else run_input.scenario.name
    return await client.start_workflow(
        names.SCENARIO_WORKFLOW,
        run_input,
        result_type=ScenarioReport,
        id=workflow_id or f"chaos-{name}-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        static_summary=f"chaos scenario {name}" + (" (dry run)" if run_input.dry_run else ""),
    )


async def follow_run(
    handle: WorkflowHandle[Any, ScenarioReport],
    on_change: Callable[[RunStatus], None] | None = None,
    interval_s: float = 2.0,
    on_poll: Callable[[RunStatus], Awaitable[None]] | None = None,
) -> ScenarioReport:
    """Query the run's status until it ends; the final report.

    Args:
        handle: The run.
        on_change: Called with each status whose phase, step or ledger changed.
        interval_s: Time between two queries.
        on_poll: Awaited with every status (a live view that also asks the fault runs).
    """
    result = asyncio.ensure_future(handle.result())
    last: tuple[object, ...] | None = None
    outage_since: float | None = None
    while True:
        if result.done():
            err = result.exception()
            if not isinstance(err, RPCError):
                return result.result()
            # The frontend went away (a scenario may kill or hold down Temporal itself): the
            # run goes on once it is back, so ask again, for a bounded time.
            now = time.monotonic()
            outage_since = outage_since or now
            if now - outage_since > FRONTEND_OUTAGE_S:
                raise err
            await asyncio.sleep(interval_s)
            result = asyncio.ensure_future(handle.result())
            continue
        try:
            status = await handle.query(names.STATUS_QUERY, result_type=RunStatus)
        except (RPCError, WorkflowQueryFailedError):
            status = None  # a query can fail while the run closes
        if status is not None:
            outage_since = None
            key = (status.phase, status.step, tuple((r.fault_id, r.status) for r in status.ledger))
            if on_change is not None and key != last:
                on_change(status)
            last = key
            if on_poll is not None:
                await on_poll(status)
        await asyncio.wait([result], timeout=interval_s)


def ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The run's page in the Temporal Web UI."""
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"
