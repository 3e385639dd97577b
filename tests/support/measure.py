"""Measuring a local replica's faults from outside, as the local backend's tests do.

Kafka Metadata round trips and a producer's throughput through a replica's proxy route, Temporal
RPCs over a connection that crosses its Temporal route, and its cgroups' CPU and memory use,
read via the supervisor's state.json. Everything here only observes: it never injects, recovers
or changes a route, a replica or a cgroup.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from devstack.sut import LocalSut
from faultproxy import procs


def replica(sut: LocalSut, name: str) -> dict[str, Any]:
    """The supervisor's state.json entry for replica `name`."""
    return next(r for r in sut.state()["replicas"] if r["name"] == name)  # type: ignore[attr-defined]


# --- a replica's Kafka route -------------------------------------------------------------------


def metadata_round_trip(sock: socket.socket) -> float:
    """Send a Kafka Metadata request on ``sock`` and wait for the whole answer; seconds taken."""
    client = b"chaos-test"
    body = struct.pack(">hhih", 3, 1, 7, len(client)) + client + struct.pack(">i", 0)
    started = time.monotonic()
    sock.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", recv_exactly(sock, 4))[0]
    recv_exactly(sock, size)
    return time.monotonic() - started


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def connect(sut: LocalSut, name: str, timeout_s: float = 5.0) -> socket.socket:
    """A plain TCP connection to the replica's Kafka route."""
    return socket.create_connection(("127.0.0.1", sut.route_port(name, "kafka")), timeout=timeout_s)


def round_trips(sut: LocalSut, name: str, count: int) -> list[float]:
    """Seconds of ``count`` Metadata round trips on one new connection through the route."""
    with connect(sut, name) as sock:
        return [metadata_round_trip(sock) for _ in range(count)]


async def produce_seconds(sut: LocalSut, name: str, size: int) -> float:
    """Seconds to produce one ``size``-byte message through the replica's Kafka route."""
    producer = AIOKafkaProducer(
        bootstrap_servers=f"127.0.0.1:{sut.route_port(name, 'kafka')}",
        acks=1,
        max_request_size=4 * size,
        request_timeout_ms=30000,
    )
    await producer.start()
    try:
        await producer.send_and_wait("bandwidth-probe", b"warm-up")
        started = time.monotonic()
        await producer.send_and_wait("bandwidth-probe", os.urandom(size))
        return time.monotonic() - started
    finally:
        await producer.stop()


# --- a replica's Temporal route ----------------------------------------------------------------


async def temporal_client(sut: LocalSut, name: str) -> Client:
    """A Temporal client whose connection crosses the replica's Temporal route."""
    return await Client.connect(f"127.0.0.1:{sut.route_port(name, 'temporal')}")


async def rpc_seconds(client: Client, timeout_s: float = 5.0) -> float:
    """Seconds one Temporal frontend RPC takes over ``client``'s connection."""
    started = time.monotonic()
    await client.workflow_service.get_system_info(
        GetSystemInfoRequest(), timeout=timedelta(seconds=timeout_s)
    )
    return time.monotonic() - started


# --- a replica's cgroups -----------------------------------------------------------------------


def cgroup_cores(sut: LocalSut, name: str, window_s: float = 1.0) -> float:
    """CPU cores the replica's cgroup used over the next ``window_s`` (blocks meanwhile)."""
    cpu = Path(replica(sut, name)["cgroup"]["cpu"])
    pids = procs.cgroup_pids(cpu)
    before = procs.cpu_seconds(pids)
    time.sleep(window_s)
    return (procs.cpu_seconds(pids) - before) / window_s


def cgroup_memory(sut: LocalSut, name: str) -> int:
    """Bytes of memory the replica's cgroup uses now."""
    return procs.memory_usage(Path(replica(sut, name)["cgroup"]["memory"]))
