"""Installs, starts and stops a real single-node Kafka broker (KRaft) for tests and local runs.

This module owns the broker's configuration (its jars are `devstack.kafka_install`'s), its
process and its log file. Three listeners:

- ``DIRECT`` on 127.0.0.1: what checks and the broker itself use; never faulted.
- ``CHAOS`` on 127.0.0.1, advertised at a configurable address. A fault proxy listens there and
  forwards to the CHAOS port, so a client that bootstraps through the proxy is handed the proxy's
  address in every metadata response and all its traffic keeps crossing the proxy. Given a list
  of advertised addresses instead, the broker opens one listener per entry (``CHAOS0`` ..
  ``CHAOSn-1``), each on its own port and advertised at its own proxy port, so each replica's
  Kafka traffic can cross its own proxy route.
- ``CONTROLLER``: the KRaft quorum, on loopback.

It must never touch a broker it did not start, nor leave one running: ``stop()`` runs on exit,
on context-manager exit and at interpreter exit.

    python -m devstack.kafka_cli install      # resolve the jars, print the lib path
    python -m devstack.kafka_cli run --dir D  # run a broker in D until SIGINT/SIGTERM
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import subprocess
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import cast

from devstack.kafka_install import KAFKA_VERSION, KafkaBrokerError, install
from devstack.kafka_ready import metadata_brokers
from devstack.ports import free_ports
from devstack.processes import stop_process_group
from devstack.targets import INFRA_GRACE_S, KAFKA_TARGET, SupervisedProcess

_LOG4J_PROPERTIES = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
log4j.logger.kafka.server.BrokerLifecycleManager=INFO
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
"""


def _random_cluster_id() -> str:
    while True:  # Kafka's own Uuid.randomUuid() rejects ids that look like a CLI flag
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


_RUNNING: weakref.WeakSet[KafkaBroker] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for broker in list(_RUNNING):
        broker.stop()


class KafkaBroker:
    """A single-node KRaft broker in its own JVM, with its data and log under ``data_dir``.

    ``start()`` and ``stop()`` block; from async code call them through ``asyncio.to_thread``.
    Ports are picked once at construction, so ``restart()`` serves on the same addresses with
    the same data.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        direct_port: int | None = None,
        chaos_port: int | None = None,
        controller_port: int | None = None,
        chaos_advertised: tuple[str, int] | Sequence[tuple[str, int]] | None = None,
        num_partitions: int = 3,
        version: str = KAFKA_VERSION,
        lib_dir: Path | None = None,
        heap: str = "512m",
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        supervise_dir: Path | None = None,
    ) -> None:
        """Pick ports; ``supervise_dir``: run the JVM as a fault target (`devstack.targets`).

        Supervised, the broker is the Kafka "pod" of namespace ``kafka``: a kill restarts it on
        the same ports with the same log dir, a hold keeps it down.
        """
        self.data_dir = Path(data_dir).resolve()
        self.supervise_dir = supervise_dir
        self.supervised: SupervisedProcess | None = None
        advertised = _advertised_list(chaos_advertised)
        picked = iter(free_ports(2 + max(len(advertised or ()), 1)))
        self.direct_port = direct_port or next(picked)
        self.chaos_port = chaos_port or next(picked)
        self.controller_port = controller_port or next(picked)
        #: One CHAOS listener per entry: (listener name, broker port, advertised host and port).
        self.chaos_listeners: list[tuple[str, int, tuple[str, int]]]
        if advertised is None:
            single = chaos_advertised or ("127.0.0.1", self.chaos_port)
            self.chaos_listeners = [("CHAOS", self.chaos_port, single)]  # type: ignore[list-item]
        else:
            ports = [self.chaos_port] + [next(picked) for _ in advertised[1:]]
            self.chaos_listeners = [
                (f"CHAOS{i}", port, address)
                for i, (port, address) in enumerate(zip(ports, advertised, strict=True))
            ]
        self.chaos_advertised = self.chaos_listeners[0][2]
        self.num_partitions = num_partitions
        self.version = version
        self.lib_dir = lib_dir
        self.heap = heap
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_file = self.data_dir / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def bootstrap_direct(self) -> str:
        """``127.0.0.1:port`` of the DIRECT listener, for checks."""
        return f"127.0.0.1:{self.direct_port}"

    @property
    def bootstrap_chaos(self) -> str:
        """``host:port`` where clients under test bootstrap: the CHAOS listener's advertised one."""
        host, port = self.chaos_advertised
        return f"{host}:{port}"

    @property
    def chaos_ports(self) -> list[int]:
        """The broker's own port of each CHAOS listener (what each proxy route forwards to)."""
        return [port for _, port, _ in self.chaos_listeners]

    @property
    def bootstraps_chaos(self) -> list[str]:
        """``host:port`` of each CHAOS listener's advertised address, in listener order."""
        return [f"{host}:{port}" for _, _, (host, port) in self.chaos_listeners]

    @property
    def pid(self) -> int | None:
        """The broker JVM's pid while it runs."""
        if self.supervised is not None:
            return self.supervised.pid
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive (not necessarily serving yet); supervised:
        whether its supervisor runs (it restarts the broker)."""
        if self.supervised is not None:
            return self.supervised.poll() is None
        return self._proc is not None and self._proc.poll() is None

    def server_properties(self) -> str:
        """The broker's ``server.properties``."""
        chaos = self.chaos_listeners
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": f"DIRECT://127.0.0.1:{self.direct_port},"
            + "".join(f"{name}://127.0.0.1:{port}," for name, port, _ in chaos)
            + f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"DIRECT://127.0.0.1:{self.direct_port}"
            + "".join(f",{name}://{host}:{port}" for name, _, (host, port) in chaos),
            "listener.security.protocol.map": "DIRECT:PLAINTEXT,"
            + "".join(f"{name}:PLAINTEXT," for name, _, _ in chaos)
            + "CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "DIRECT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": str(self.num_partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "5",  # the default 50 slows the first group join
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def start(self) -> None:
        """Format storage on first use, start the JVM and wait until it serves clients.

        Raises:
            KafkaBrokerError: the broker exited or did not serve within ``start_timeout``;
                the message ends with the tail of its log.
        """
        with self._lock:
            if self.running:
                return
            lib = self.lib_dir or install(self.version)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            config = self.data_dir / "server.properties"
            config.write_text(self.server_properties())
            log4j = self.data_dir / "log4j.properties"
            log4j.write_text(_LOG4J_PROPERTIES)
            java = self._java_command(lib, log4j)
            if not (self.data_dir / "logs" / "meta.properties").exists():
                self._format(java, config)
            _RUNNING.add(self)
            if self.supervise_dir is not None:
                self.supervised = SupervisedProcess(
                    self.supervise_dir,
                    KAFKA_TARGET,
                    [*java, "kafka.Kafka", str(config)],
                    ready_tcp=self.bootstrap_direct,
                    grace_s=min(self.stop_timeout, INFRA_GRACE_S),
                    cwd=self.data_dir,
                )
                self.log_file = self.supervised.state_dir / "logs" / f"{self.supervised.name}.log"
                try:
                    self.supervised.start(self.start_timeout)
                    self._wait_serving()
                except BaseException:
                    self._stop_locked()
                    raise
                return
            with open(self.log_file, "ab") as log:
                log.write(f"--- starting broker at {time.ctime()}\n".encode())
                log.flush()
                # A new session: Ctrl-C in a terminal reaches us, and we stop the broker cleanly.
                self._proc = subprocess.Popen(
                    [*java, "kafka.Kafka", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    start_new_session=True,
                )
            _RUNNING.add(self)
            try:
                self._wait_serving()
            except BaseException:
                self._stop_locked()
                raise

    def stop(self) -> None:
        """Stop the broker: SIGTERM (a clean shutdown), then SIGKILL after ``stop_timeout``.

        Idempotent; a no-op when it is not running.
        """
        with self._lock:
            self._stop_locked()

    def restart(self) -> None:
        """Stop and start again on the same ports and data."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the broker's log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    async def create_topics(
        self, names: Iterable[str], partitions: int | None = None, *, exist_ok: bool = True
    ) -> None:
        """Create topics with ``partitions`` partitions each (default: ``num_partitions``)."""
        from aiokafka.admin import (
            AIOKafkaAdminClient,
            NewTopic,
        )

        topics = [
            NewTopic(name, partitions or self.num_partitions, replication_factor=1)
            for name in names
        ]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_direct)
        await admin.start()
        try:
            response = await admin.create_topics(topics)
        finally:
            await admin.close()
        topic_already_exists = 36
        failed = [
            (name, code, *rest)
            for name, code, *rest in response.topic_errors
            if code and not (exist_ok and code == topic_already_exists)
        ]
        if failed:
            raise KafkaBrokerError(f"create_topics failed: {failed}")

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"KafkaBroker(direct={self.bootstrap_direct}, chaos={self.bootstrap_chaos}, "
            f"data_dir={self.data_dir}, pid={self.pid})"
        )

    def _java_command(self, lib: Path, log4j: Path) -> list[str]:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if java is None:
            raise KafkaBrokerError("java not found (set JAVA_HOME or put java on PATH)")
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration={log4j.as_uri()}",
            "-cp",
            f"{lib}/*",
        ]

    def _format(self, java: list[str], config: Path) -> None:
        cmd = [
            *java,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _random_cluster_id(),
            "-c",
            str(config),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise KafkaBrokerError(
                f"formatting {self.data_dir / 'logs'} failed (exit {done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                raise KafkaBrokerError(
                    f"broker exited while starting; {self.log_file} ends with:\n{self.log_tail()}"
                )
            try:
                if metadata_brokers(self.direct_port, timeout=2.0):
                    return
            except OSError as e:  # refused while binding, or timed out before it serves
                last_error = e
            time.sleep(0.1)
        raise KafkaBrokerError(
            f"broker did not serve on {self.bootstrap_direct} within {self.start_timeout}s "
            f"(last error: {last_error!r}); {self.log_file} ends with:\n{self.log_tail()}"
        )

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        supervised, self.supervised = self.supervised, None
        _RUNNING.discard(self)
        if proc is not None:
            stop_process_group(proc, self.stop_timeout)
        if supervised is not None:
            supervised.stop()


def _advertised_list(
    value: tuple[str, int] | Sequence[tuple[str, int]] | None,
) -> list[tuple[str, int]] | None:
    """The advertised addresses when several listeners were asked for, else None."""
    if value is None or (len(value) == 2 and isinstance(value[0], str)):
        return None
    pairs = cast("Sequence[tuple[str, int]]", value)
    listed = [(str(host), int(port)) for host, port in pairs]
    if not listed:
        raise ValueError("chaos_advertised: give at least one HOST, PORT pair")
    return listed
