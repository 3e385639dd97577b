"""The stand-in worker's calls to the orchestrator and the LLM proxy, as the real worker's.

Real parts: the stand-in's own orchestrator and LLM proxy (`standin.dependencies`) on loopback
ports, and the worker's activities run through Temporal's `ActivityEnvironment`. A port nobody
listens on plays a dependency a fault cut off (the proxy routes' faults: test_local_network.py).
The event sink is not used by these two activities; a bare object stands in for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from devstack.ports import free_ports, wait_for_port
from standin.activities import Dependencies, GoalActivities
from standin.dependencies import serve_dependencies
from standin.models import PlanInput, PlannedStep, StepInput
from standin.runtime import Runtime

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def urls() -> AsyncIterator[tuple[str, str, str]]:
    """The orchestrator's and LLM proxy's URLs while they serve, and a dead one."""
    orchestrator, llm, dead = free_ports(3)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_dependencies({"o": orchestrator, "l": llm}, stop))
    assert await asyncio.to_thread(wait_for_port, "127.0.0.1", llm, 5.0)
    yield f"http://127.0.0.1:{orchestrator}", f"http://127.0.0.1:{llm}", f"http://127.0.0.1:{dead}"
    stop.set()
    await task


def activities(orchestrator: str, llm: str) -> GoalActivities:
    return GoalActivities(
        sink=object(),  # type: ignore[arg-type]
        runtime=Runtime(time_scale=0.05),
        dependencies=Dependencies(orchestrator_url=orchestrator, llm_proxy_url=llm),
    )


STEP = StepInput(
    goal_run_id="goal-1",
    tenant_id="tenant-1",
    step=PlannedStep(step_number=1, description="click", work_ms=10),
    step_attempt=1,
)
PLAN = PlanInput(
    goal_run_id="goal-1",
    tenant_id="tenant-1",
    goal_description="book a flight",
    max_steps=3,
    max_retries=2,
)


async def test_a_step_succeeds_through_the_orchestrator_and_fails_without_it(
    urls: tuple[str, str, str],
) -> None:
    orchestrator, llm, dead = urls
    env = ActivityEnvironment()
    ok = await env.run(activities(orchestrator, llm).execute_step, STEP)
    assert ok.success
    cut = await env.run(activities(dead, llm).execute_step, STEP)
    assert not cut.success and cut.error and cut.error.startswith("orchestrator: ")


async def test_planning_asks_the_llm_proxy_and_a_failed_call_is_left_to_temporal_to_retry(
    urls: tuple[str, str, str],
) -> None:
    orchestrator, llm, dead = urls
    env = ActivityEnvironment()
    plan = await env.run(activities(orchestrator, llm).plan_goal, PLAN)
    assert plan.steps
    with pytest.raises(ApplicationError) as err:
        await env.run(activities(orchestrator, dead).plan_goal, PLAN)
    assert err.value.type == "LlmUnavailable" and not err.value.non_retryable
