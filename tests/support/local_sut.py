"""The local fault tests' fixtures: the stand-in behind the fault proxy, and the backend.

Module-scoped: each test module that imports them gets its own system under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from activities.faults.local.backend import LocalBackend
from devstack.kafka import KafkaBroker
from devstack.sut import LocalSut, SutPorts
from devstack.temporal import TemporalDevServer
from tests.conftest import assert_eventually

REPLICAS = 3


@pytest.fixture(scope="module")
def sut(
    temporal_server: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalSut]:
    """Kafka with a CHAOS listener per replica, the fault proxy and the stand-in (no load)."""
    root = tmp_path_factory.mktemp("local-faults")
    ports = SutPorts.pick(REPLICAS)
    with KafkaBroker(root / "kafka", chaos_advertised=ports.kafka_advertised) as broker:
        sut = LocalSut.for_broker(
            root, broker, ports, temporal_server.address, load=False, consumer=False
        )
        with sut:
            yield sut


@pytest.fixture(scope="module")
async def backend(sut: LocalSut, tmp_path_factory: pytest.TempPathFactory) -> LocalBackend:
    backend = LocalBackend(tmp_path_factory.mktemp("backend-state"), sut.state_dir, sut.control_dir)
    assert await backend.sweep() == []
    return backend


@pytest.fixture(autouse=True)
async def steady(sut: LocalSut) -> AsyncIterator[None]:
    """Each test starts and ends with every replica ready (faults recovered)."""
    await assert_eventually(sut.all_ready, timeout_s=30)
    yield
    await assert_eventually(sut.all_ready, timeout_s=30)


def others(name: str) -> list[str]:
    return [f"replica-{i}" for i in range(REPLICAS) if f"replica-{i}" != name]
