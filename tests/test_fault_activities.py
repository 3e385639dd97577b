"""The fault activities' own behaviour, on the Chaos Mesh backend and a real kube-apiserver.

Real parts: kube-apiserver + etcd (the suite's `kube` fixture). Stand-in, named as such: the
`FakeChaosController` of tests/support plays the Chaos Mesh controller (it sets AllInjected).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from temporalio.testing import ActivityEnvironment

from activities.faults.activities import FaultActivities
from activities.faults.backend import NotYet
from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import KubeClient
from tests.support.chaos_mesh import objects, request
from tests.support.fake_chaos_controller import FakeChaosController

pytestmark = pytest.mark.timeout(60)


async def test_one_confirm_attempt_looks_again_itself_until_the_controller_has_reconciled(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    req = request(ns, {"action": "network-delay", "duration": "30s"})
    controller.namespaces.remove(ns)  # the controller has not seen the object yet
    await backend.inject(req)
    with pytest.raises(NotYet):
        await backend.confirm(req)
    # Back a moment later: the same activity attempt sees the fault in effect, where a single
    # look would have handed NotYet to the workflow's one-second retries.
    asyncio.get_running_loop().call_later(0.2, controller.namespaces.append, ns)
    acts = FaultActivities(backend, confirm_poll=[0.25] * 40)  # up to 10 s: a busy machine
    env = ActivityEnvironment()  # no schedule-to-close: the test env's own is 1 s from 1970
    env.info = dataclasses.replace(env.info, schedule_to_close_timeout=None)
    effect = await env.run(acts.confirm_fault, req)
    assert effect.in_effect and any("AllInjected" in e for e in effect.evidence)
    assert (await backend.recover(req)).recovered
    assert await objects(kc, ns) == []


async def test_a_fault_never_in_effect_still_ends_the_attempt_with_not_yet(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    req = request(ns, {"action": "network-delay", "duration": "30s"})
    controller.namespaces.remove(ns)
    await backend.inject(req)
    with pytest.raises(NotYet):
        await ActivityEnvironment().run(
            FaultActivities(backend, confirm_poll=[0.05, 0.05]).confirm_fault, req
        )
    controller.namespaces.append(ns)  # lets the controller clear its finalizer on delete
    assert (await backend.recover(req)).recovered
    assert await objects(kc, ns) == []


async def test_an_attempt_stops_looking_before_its_deadline_so_its_reason_is_kept(
    backend: ChaosMeshBackend, controller: FakeChaosController, kc: KubeClient, ns: str
) -> None:
    """Looking on past schedule-to-close gets the attempt timed out and its NotYet lost."""
    req = request(ns, {"action": "network-delay", "duration": "30s"})
    controller.namespaces.remove(ns)
    await backend.inject(req)
    env = ActivityEnvironment()  # its deadline (1 s after 1970) has long passed
    started = time.monotonic()
    with pytest.raises(NotYet, match="not in effect"):
        await env.run(FaultActivities(backend, confirm_poll=[5.0] * 4).confirm_fault, req)
    assert time.monotonic() - started < 5.0  # one look, not the 20 s of looking again
    controller.namespaces.append(ns)
    assert (await backend.recover(req)).recovered
    assert await objects(kc, ns) == []
