"""Whole scenario runs through the Chaos Mesh backend on the REAL Chaos Mesh controller.

Real: the Temporal dev server, the workflows, the backend, kube-apiserver, kube-controller-manager
and chaos-controller-manager with its webhooks. Stand-ins, named as such: chaos-daemon, the DNS
server and the kubelet (tests/support/chaos_mesh_stack.py), and `HealthyProbes` for the
verification activities (the real probes are tested against real goal runs elsewhere).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import KubeClient
from activities.faults.chaos_mesh.render import PAUSE_ANNOTATION
from activities.scenario_files import load_builtin
from models.report import ScenarioReport, Verdict
from models.scenario import Scenario
from tests.conftest import assert_eventually
from tests.support.chaos_mesh import Runs, names_are, scenario_in, with_dns_patterns
from tests.support.chaos_mesh_stack import RealChaosMesh
from workflows import names

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def runs(
    client: Client, real_kc: KubeClient, real_backend: ChaosMeshBackend, real_ns: str
) -> AsyncIterator[Runs]:
    r = Runs(client, real_kc, real_backend, real_ns)
    async with r.worker:
        yield r


async def test_full_resilience_on_the_real_controller_passes_and_leaves_nothing_behind(
    runs: Runs, chaos_mesh: RealChaosMesh, real_ns: str
) -> None:
    data = load_builtin("full-resilience").model_dump(mode="json")
    for step in data["steps"]:
        for fault in step["faults"]:
            fault["target"]["namespace"] = real_ns
    data["verification"].update(kafka=None, settle="10s", probe_interval="1s")
    scenario = Scenario.model_validate(with_dns_patterns(data))
    kills = len(chaos_mesh.daemon.daemon.calls_of("ContainerKill"))
    report: ScenarioReport = await (await runs.start(scenario, duration_cap="3s")).result()
    assert report.verdict is Verdict.PASS, report.reason
    faults = report.faults()
    assert len(faults) == scenario.fault_count
    for fault in faults:
        assert fault.record is not None and fault.record.status.value == "recovered"
        assert any("AllInjected" in e or "injected, then ended" in e for e in fault.record.evidence)
        assert any("is gone" in e for e in fault.record.evidence), fault.record.evidence
    assert len(chaos_mesh.daemon.daemon.calls_of("ContainerKill")) > kills
    assert chaos_mesh.daemon.dns.calls_of("SetDNSChaos")
    assert await runs.injected() == []


async def test_a_missing_container_ends_inconclusive_and_a_refused_spec_fails(
    runs: Runs, real_ns: str
) -> None:
    missing = scenario_in(
        real_ns,
        {"fault": {"action": "container-kill", "duration": "4s", "container_names": ["nosuch"]}},
    )
    report: ScenarioReport = await (await runs.start(missing)).result()
    (fault,) = report.faults()
    assert fault.verdict is Verdict.INCONCLUSIVE, fault.reason
    assert fault.record and any("no container ['nosuch']" in e for e in fault.record.evidence)
    everything = scenario_in(
        real_ns, {"fault": {"action": "pod-kill", "duration": "4s", "target": {"mode": "all"}}}
    )
    report = await (await runs.start(everything)).result()
    assert report.verdict is Verdict.FAIL and "more than the cap" in report.reason
    assert await runs.injected() == []


async def test_the_pause_signal_pauses_the_running_object_and_resume_unpauses_it(
    runs: Runs, real_ns: str
) -> None:
    handle = await runs.start(
        scenario_in(real_ns, {"fault": {"action": "network-partition", "duration": "25s"}})
    )

    async def phase_is(phase: str) -> None:
        assert phase in (await handle.query(names.STATUS_QUERY))["phase"]

    names_now = await assert_eventually(runs.injected, timeout_s=30)
    await assert_eventually(lambda: phase_is("step 0"), timeout_s=30)
    await handle.signal(names.PAUSE_SIGNAL)

    async def annotated(value: str | None) -> None:
        obj = await runs.kc.get("networkchaos", real_ns, names_now[0])
        assert obj is not None
        assert (obj["metadata"].get("annotations") or {}).get(PAUSE_ANNOTATION) == value

    await assert_eventually(lambda: annotated("true"), timeout_s=30)
    await handle.signal(names.RESUME_SIGNAL)
    await assert_eventually(lambda: annotated(None), timeout_s=30)
    await handle.cancel()
    await assert_eventually(lambda: names_are(runs.kc, real_ns, []), timeout_s=30)
