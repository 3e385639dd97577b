"""The local Kafka broker (devstack.kafka): it serves on both listeners, keeps clients that
bootstrap through a proxy behind that proxy, and keeps its data across a restart.

The TCP forwarder here is a test-side stand-in for the fault proxy: it only counts connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]

from devstack.kafka import KafkaBroker, free_ports

KEYS = [f"goal-{i}" for i in range(6)]
PER_KEY = 15


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker for the session; CHAOS is advertised as itself (no proxy in front)."""
    with KafkaBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@dataclass
class Forwarder:
    """Stand-in for the fault proxy: forwards every connection to ``target`` and counts them."""

    port: int
    target: int
    connections: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture(scope="module")
def proxied_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A private broker (tests here restart it) whose CHAOS listener is advertised at a proxy."""
    (proxy_port,) = free_ports(1)
    with KafkaBroker(
        tmp_path_factory.mktemp("kafka-proxied"), chaos_advertised=("127.0.0.1", proxy_port)
    ) as broker:
        yield broker


@pytest.fixture
async def proxy(proxied_broker: KafkaBroker) -> AsyncIterator[Forwarder]:
    fwd = Forwarder(port=proxied_broker.chaos_advertised[1], target=proxied_broker.chaos_port)
    await fwd.start()
    yield fwd
    await fwd.close()


def _topic(tag: str) -> str:
    return f"t-{tag}-{uuid4().hex[:8]}"


async def produce(bootstrap: str, topic: str, round_: int = 0) -> list[tuple[str, str]]:
    """Send PER_KEY messages for each key, interleaved; return (key, value) in send order."""
    sent = [(k, f"{round_}:{i}") for i in range(PER_KEY) for k in KEYS]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, v.encode(), key=k.encode()) for k, v in sent]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def consume(bootstrap: str, topic: str, count: int) -> list[tuple[int, int, str, str]]:
    """Read ``count`` messages from the start of ``topic``: (partition, offset, key, value)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[tuple[int, int, str, str]] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got += [(r.partition, r.offset, r.key.decode(), r.value.decode()) for r in records]
    finally:
        await consumer.stop()
    return got


def assert_keyed_order(sent: list[tuple[str, str]], got: list[tuple[int, int, str, str]]) -> None:
    """Every message came back once; each key stayed on one partition, in send order."""
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    by_partition: dict[int, list[tuple[int, str, str]]] = {}
    for partition, offset, key, value in got:
        by_partition.setdefault(partition, []).append((offset, key, value))
    assert len(by_partition) > 1, "keys should spread over partitions"
    for records in by_partition.values():
        offsets = [o for o, _, _ in records]
        assert offsets == sorted(offsets)
    for key in KEYS:
        partitions = {p for p, _, k, _ in got if k == key}
        assert len(partitions) == 1, f"{key} landed on {partitions}"
        values = [v for _, _, k, v in sorted(got) if k == key]
        assert values == [v for k, v in sent if k == key]


@pytest.mark.parametrize("listener", ["direct", "chaos"])
async def test_keyed_messages_come_back_in_order(kafka_broker: KafkaBroker, listener: str) -> None:
    bootstrap = getattr(kafka_broker, f"bootstrap_{listener}")
    topic = _topic(listener)  # auto-created with the broker's num.partitions
    sent = await produce(bootstrap, topic)
    got = await consume(kafka_broker.bootstrap_direct, topic, len(sent))
    assert_keyed_order(sent, got)
    assert {p for p, *_ in got} <= set(range(kafka_broker.num_partitions))


async def test_create_topics_sets_partitions(kafka_broker: KafkaBroker) -> None:
    topic = _topic("created")
    await kafka_broker.create_topics([topic], partitions=2)
    await kafka_broker.create_topics([topic], partitions=2)  # exist_ok by default
    sent = await produce(kafka_broker.bootstrap_chaos, topic)
    got = await consume(kafka_broker.bootstrap_direct, topic, len(sent))
    assert_keyed_order(sent, got)
    assert {p for p, *_ in got} == {0, 1}


async def test_clients_bootstrapped_through_the_proxy_stay_behind_it(
    proxied_broker: KafkaBroker, proxy: Forwarder
) -> None:
    topic = _topic("proxied")
    producer = AIOKafkaProducer(bootstrap_servers=proxied_broker.bootstrap_chaos)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"v", key=b"k")
        brokers = [(b.host, b.port) for b in producer.client.cluster.brokers()]
    finally:
        await producer.stop()
    assert brokers == [proxied_broker.chaos_advertised]
    # the bootstrap connection plus at least one to the advertised broker address
    assert proxy.connections >= 2
    assert [(k, v) for _, _, k, v in await consume(proxied_broker.bootstrap_direct, topic, 1)] == [
        ("k", "v")
    ]


async def test_restart_serves_again_and_keeps_data(
    proxied_broker: KafkaBroker, proxy: Forwarder
) -> None:
    topic = _topic("restart")
    before = await produce(proxied_broker.bootstrap_chaos, topic, round_=0)
    old_pid = proxied_broker.pid

    await asyncio.to_thread(proxied_broker.restart)

    assert proxied_broker.pid not in (None, old_pid)
    after = await produce(proxied_broker.bootstrap_chaos, topic, round_=1)
    got = await consume(proxied_broker.bootstrap_direct, topic, len(before) + len(after))
    assert_keyed_order(before + after, got)


def test_stop_is_idempotent_and_frees_the_ports(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path)
    broker.start()
    pid = broker.pid
    broker.stop()
    broker.stop()
    assert pid is not None and not broker.running and broker.pid is None
    with socket.socket() as s:  # nothing listens on the DIRECT port any more: the JVM is gone
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", broker.direct_port))
        s.listen()
