"""Whether a local Kafka broker serves clients yet, asked over Kafka's own wire protocol.

Owns one hand-written request: Metadata v1 for no topics, sent on a plain socket, so
`devstack.kafka` can tell "bound its ports" from "serves clients" without a client library or
a JVM tool. It only reads; it never creates topics or changes the broker.
"""

from __future__ import annotations

import socket
import struct


def metadata_brokers(port: int, timeout: float) -> list[tuple[int, str, int]]:
    """Send a Metadata v1 request for no topics; return the (id, host, port) of live brokers.

    A KRaft broker binds its ports early but answers only once it is unfenced, and only live
    brokers appear in the answer, so a non-empty list means the broker serves clients.

    Raises:
        OSError: refused, timed out, or closed mid-response (``ConnectionError``).
    """
    client_id = b"devstack"
    body = struct.pack(">hhih", 3, 1, 1, len(client_id)) + client_id + struct.pack(">i", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exactly(sock, 4))[0]
        data = _recv_exactly(sock, size)
    pos = 4  # correlation id
    (count,) = struct.unpack_from(">i", data, pos)
    pos += 4
    brokers = []
    for _ in range(count):
        node_id, host_len = struct.unpack_from(">ih", data, pos)
        pos += 6
        host = data[pos : pos + host_len].decode()
        pos += host_len
        (broker_port, rack_len) = struct.unpack_from(">ih", data, pos)
        pos += 6 + max(rack_len, 0)
        brokers.append((node_id, host, broker_port))
    return brokers


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        buf += chunk
    return bytes(buf)
