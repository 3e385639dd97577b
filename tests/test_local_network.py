"""The local backend's network faults against the real stand-in: the fault proxy's rules.

The same real parts as tests/test_local_faults.py (fixtures: tests/support/local_sut.py); the
effects are measured as Kafka round trips, Temporal RPCs and throughput through the routes.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from temporalio.service import RPCError

from activities.faults.backend import NotYet
from activities.faults.local.backend import LocalBackend
from devstack.sut import LocalSut
from faultproxy.control import read_status
from tests.conftest import assert_eventually
from tests.support.local_requests import confirmed, request
from tests.support.local_sut import REPLICAS, backend, others, steady, sut
from tests.support.measure import (
    connect,
    metadata_round_trip,
    produce_seconds,
    round_trips,
    rpc_seconds,
    temporal_client,
)

pytestmark = pytest.mark.timeout(120)
FAST_S, SLOW_S = 0.05, 0.18  # a plain loopback round trip / one with 200 ms added
CPU_RISE = 0.2  # cores; the seed's 80% load gets less when the machine is busy
needs_stress_ng = pytest.mark.skipif(
    shutil.which("stress-ng") is None, reason="run scripts/install-system-packages.sh"
)


# --- network faults --------------------------------------------------------------------------


def poke(sut: LocalSut, name: str) -> Callable[[], Awaitable[object]]:
    """A little of the replica's traffic through its routes (a metadata round trip)."""

    def once() -> object:
        with connect(sut, name, timeout_s=1.0) as sock:
            return metadata_round_trip(sock)

    return lambda: asyncio.to_thread(once)


async def test_network_delay_adds_the_latency_to_the_target_only(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "network-delay", "latency": "200ms"})
    [target] = (await backend.preview(req)).targets
    before = await asyncio.to_thread(round_trips, sut, target.name, 5)
    assert statistics.median(before) < FAST_S
    temporal = await temporal_client(sut, target.name)
    assert min([await rpc_seconds(temporal) for _ in range(3)]) < FAST_S

    await backend.inject(req)
    effect = await confirmed(backend, req, traffic=poke(sut, target.name))
    assert f"{target.name}/kafka: applied" in " ".join(effect.evidence)
    assert "traffic touched since injection (chunks delayed)" in " ".join(effect.evidence)
    during = await asyncio.to_thread(round_trips, sut, target.name, 5)
    assert min(during) >= 0.2, during
    assert min([await rpc_seconds(temporal) for _ in range(3)]) >= 0.2
    bystander = await asyncio.to_thread(round_trips, sut, others(target.name)[0], 5)
    assert statistics.median(bystander) < FAST_S

    recovery = await backend.recover(req)
    assert "no longer applies" in recovery.evidence[0]
    after = await asyncio.to_thread(round_trips, sut, target.name, 5)
    assert statistics.median(after) < FAST_S
    assert min([await rpc_seconds(temporal) for _ in range(3)]) < FAST_S


async def test_network_loss_stalls_about_the_configured_share(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "network-loss", "loss_pct": 25, "peers": ["kafka"]})
    [target] = (await backend.inject(req)).targets
    await confirmed(backend, req, traffic=poke(sut, target.name))
    during = await asyncio.to_thread(round_trips, sut, target.name, 40)
    stalled = sum(1 for t in during if t >= SLOW_S)
    assert 3 <= stalled <= 20, sorted(during)  # binomial(40, 0.25): mean 10

    def proxy_counted_them() -> None:
        status = read_status(sut.control_dir)  # rewritten every 200 ms
        assert status is not None and status.routes[f"{target.name}/kafka"].chunks_lost >= stalled

    await assert_eventually(proxy_counted_them, timeout_s=3)

    await backend.recover(req)
    after = await asyncio.to_thread(round_trips, sut, target.name, 20)
    assert max(after) < SLOW_S


async def test_network_partition_blackholes_old_and_new_connections_until_healed(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "network-partition"})
    [target] = (await backend.preview(req)).targets
    temporal = await temporal_client(sut, target.name)  # connected before the partition
    await backend.inject(req)
    effect = await confirmed(backend, req, traffic=poke(sut, target.name))
    assert "chunks held back" in " ".join(effect.evidence)
    with pytest.raises(RPCError):
        await rpc_seconds(temporal, timeout_s=1.0)
    old = connect(sut, target.name, timeout_s=1.0)
    new = connect(sut, target.name, timeout_s=1.0)  # accepted: a partition does not refuse
    for sock in (old, new):
        with pytest.raises(TimeoutError):
            metadata_round_trip(sock)
        sock.close()

    await backend.recover(req)
    assert max(await asyncio.to_thread(round_trips, sut, target.name, 3)) < FAST_S
    assert await rpc_seconds(temporal) < 1.0  # the same connection works again


async def test_network_bandwidth_caps_throughput_at_the_rate(
    sut: LocalSut, backend: LocalBackend
) -> None:
    size, rate_bytes_s = 200_000, 1000 * 1000 / 8  # the seed's 1mbps
    req = request({"action": "network-bandwidth", "rate_kbps": 1000, "peers": ["kafka"]})
    [target] = (await backend.preview(req)).targets
    assert await produce_seconds(sut, target.name, size) < 0.5

    await backend.inject(req)

    async def applied_but_untouched() -> None:  # in place, but no byte crossed it: not in effect
        with pytest.raises(NotYet, match="touched no traffic"):
            await backend.confirm(req)

    await assert_eventually(applied_but_untouched, timeout_s=10)
    await confirmed(backend, req, traffic=lambda: produce_seconds(sut, target.name, 20_000))
    throughput = size / await produce_seconds(sut, target.name, size)
    assert 0.6 * rate_bytes_s <= throughput <= 1.15 * rate_bytes_s, throughput

    await backend.recover(req)
    assert await produce_seconds(sut, target.name, size) < 0.5


async def test_dns_error_fails_new_connections_and_spares_open_ones(
    sut: LocalSut, backend: LocalBackend
) -> None:
    req = request({"action": "dns-error"})
    [target] = (await backend.preview(req)).targets
    temporal = await temporal_client(sut, target.name)
    with connect(sut, target.name) as opened:
        metadata_round_trip(opened)
        await backend.inject(req)
        effect = await confirmed(backend, req)  # its own lookup through each route fails
        assert "probed a new connection" in " ".join(effect.evidence) or "refused" in " ".join(
            effect.evidence
        )
        with connect(sut, target.name, timeout_s=2.0) as fresh, pytest.raises(ConnectionError):
            metadata_round_trip(fresh)  # closed at once, as a failed resolution
        with pytest.raises((RuntimeError, TimeoutError)):
            async with asyncio.timeout(10):
                await temporal_client(sut, target.name)
        assert metadata_round_trip(opened) < FAST_S  # open connections still work
        assert await rpc_seconds(temporal) < FAST_S

        def proxy_counted_it() -> None:
            status = read_status(sut.control_dir)
            assert status is not None and status.routes[f"{target.name}/kafka"].refused_dns >= 1

        await assert_eventually(proxy_counted_it, timeout_s=3)

    await backend.recover(req)
    assert max(await asyncio.to_thread(round_trips, sut, target.name, 3)) < FAST_S


async def test_each_replicas_kafka_traffic_stays_on_its_own_route(sut: LocalSut) -> None:
    for i in range(REPLICAS):
        port = sut.route_port(f"replica-{i}", "kafka")
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}")
        await producer.start()
        try:
            await producer.send_and_wait("route-probe", b"x")
            brokers = [(b.host, b.port) for b in producer.client.cluster.brokers()]
        finally:
            await producer.stop()
        assert brokers == [("127.0.0.1", port)]  # listener CHAOSi advertises route i


async def test_a_partition_from_the_orchestrator_cuts_only_that_route_until_healed(
    sut: LocalSut, backend: LocalBackend
) -> None:
    from standin.dependencies import LLM_PATH, ORCHESTRATOR_PATH, DependencyError, post_json

    req = request({"action": "network-partition", "peers": ["orchestrator"]}, seconds=20)
    [target] = (await backend.preview(req)).targets
    bystander = others(target.name)[0]

    def url(replica: str, peer: str) -> str:  # the replica's ORCHESTRATOR_URL / LLM_PROXY_URL
        return f"http://127.0.0.1:{sut.route_port(replica, peer)}"

    body = {"goalRunId": "goal-1", "tenantId": "tenant-1"}
    orchestrator = url(target.name, "orchestrator")
    assert (await post_json(orchestrator, ORCHESTRATOR_PATH, body, 2.0))["status"] == "ok"
    with pytest.raises(DependencyError, match="answered 400"):  # it checks its input
        await post_json(orchestrator, ORCHESTRATOR_PATH, {"tenantId": "t"}, 2.0)

    async def call() -> object:
        return await post_json(orchestrator, ORCHESTRATOR_PATH, body, 1.0)

    await backend.inject(req)
    effect = await confirmed(backend, req, traffic=call)
    assert f"{target.name}/orchestrator: applied" in " ".join(effect.evidence)
    with pytest.raises(DependencyError, match="no answer"):
        await post_json(orchestrator, ORCHESTRATOR_PATH, body, 1.0)
    # Its other routes and the other replicas' orchestrator route are untouched.
    assert (await post_json(url(target.name, "llm-proxy"), LLM_PATH, {}, 2.0))["choices"]
    assert await post_json(url(bystander, "orchestrator"), ORCHESTRATOR_PATH, body, 2.0)

    assert (await backend.recover(req)).recovered

    async def healed() -> None:
        assert (await post_json(orchestrator, ORCHESTRATOR_PATH, body, 2.0))["status"] == "ok"

    await assert_eventually(healed, timeout_s=10)
