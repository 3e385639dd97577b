"""The system under test on one machine: the fault proxy, and the stand-in wired through it.

Owns starting and stopping two processes under a root directory:

- the fault proxy (``python -m faultproxy.proxy``) with one route per (replica, peer):
  ``replica-i/temporal`` -> the Temporal frontend, ``replica-i/kafka`` -> the broker's listener
  ``CHAOSi``, which advertises that same proxy port (so all of replica i's Kafka traffic keeps
  crossing its route; see `devstack.kafka`), ``replica-i/orchestrator`` and
  ``replica-i/llm-proxy`` -> the stand-in's orchestrator and LLM proxy (`standin.dependencies`,
  the replica's ``ORCHESTRATOR_URL`` and ``LLM_PROXY_URL``);
- the stand-in (``python -m standin up``): its supervisor runs replica i of the worker command
  (the stand-in worker unless ``worker_command`` names another) against its own two routes, in
  namespace ``bytebot``; its load generator and consumer talk to Temporal and Kafka directly.

Layout: ``<root>/sut`` (the supervisor's state dir), ``<root>/proxy`` (the proxy's control
dir), ``<root>/*.log``. Tests and the main job use it; it never starts Temporal or Kafka itself
except in the ``run`` CLI, and never touches processes it did not start.

    python -m devstack.sut run --root /tmp/bytebot-sut --replicas 3   # all of it, until ^C
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from devstack.kafka import KafkaBroker
from devstack.ports import free_ports, wait_for_port
from devstack.processes import Service, stop_process_group
from faultproxy.control import ProxyConfig, Route, config_file


@dataclass(frozen=True)
class SutPorts:
    """The proxy's listening ports: one per replica for Temporal, Kafka, the orchestrator and
    the LLM proxy; and where the stand-in serves those last two (``dependencies``)."""

    temporal: list[int]
    kafka: list[int]
    orchestrator: list[int] = field(default_factory=list)
    llm_proxy: list[int] = field(default_factory=list)
    dependencies: tuple[int, int] | None = None

    @classmethod
    def pick(cls, replicas: int) -> SutPorts:
        """Free loopback ports for ``replicas`` replicas."""
        ports = free_ports(4 * replicas + 2)
        n = replicas
        return cls(
            temporal=ports[:n],
            kafka=ports[n : 2 * n],
            orchestrator=ports[2 * n : 3 * n],
            llm_proxy=ports[3 * n : 4 * n],
            dependencies=(ports[4 * n], ports[4 * n + 1]),
        )

    @property
    def kafka_advertised(self) -> list[tuple[str, int]]:
        """What the broker's CHAOS0..n-1 listeners must advertise (`KafkaBroker`)."""
        return [("127.0.0.1", port) for port in self.kafka]


class LocalSut(Service):
    """The fault proxy and the stand-in supervisor, started and stopped together."""

    def __init__(
        self,
        root: Path,
        *,
        ports: SutPorts,
        temporal_address: str,
        kafka_chaos_ports: Sequence[int],
        kafka_direct: str,
        replicas: int = 3,
        memory_limit_mb: int = 512,
        load: bool = True,
        consumer: bool = True,
        worker_command: str | None = None,
        ready_url: str | None = None,
        ready_exec: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if not len(ports.temporal) == len(ports.kafka) == len(kafka_chaos_ports) == replicas:
            raise ValueError("give one proxy port pair and one Kafka CHAOS listener per replica")
        self.root = root.resolve()
        self.ports = ports
        self.temporal_address = temporal_address
        self.kafka_direct = kafka_direct
        self.replicas = replicas
        self.routes = [
            route
            for i in range(replicas)
            for route in (
                Route(
                    name=f"replica-{i}/temporal",
                    replica=f"replica-{i}",
                    peer="temporal",
                    listen_port=ports.temporal[i],
                    upstream=temporal_address,
                ),
                Route(
                    name=f"replica-{i}/kafka",
                    replica=f"replica-{i}",
                    peer="kafka",
                    listen_port=ports.kafka[i],
                    upstream=f"127.0.0.1:{kafka_chaos_ports[i]}",
                ),
            )
        ]
        if ports.dependencies is not None:
            orchestrator, llm = ports.dependencies
            for i in range(replicas):
                self.routes += [
                    Route(
                        name=f"replica-{i}/orchestrator",
                        replica=f"replica-{i}",
                        peer="orchestrator",
                        listen_port=ports.orchestrator[i],
                        upstream=f"127.0.0.1:{orchestrator}",
                    ),
                    Route(
                        name=f"replica-{i}/llm-proxy",
                        replica=f"replica-{i}",
                        peer="llm-proxy",
                        listen_port=ports.llm_proxy[i],
                        upstream=f"127.0.0.1:{llm}",
                    ),
                ]
        self.standin_args = [
            "--replicas",
            str(replicas),
            "--memory-limit-mb",
            str(memory_limit_mb),
            "--temporal-addresses",
            ",".join(f"127.0.0.1:{p}" for p in ports.temporal),
            "--kafka-bootstraps",
            ",".join(f"127.0.0.1:{p}" for p in ports.kafka),
            "--temporal-address",
            temporal_address,
            "--kafka-bootstrap",
            kafka_direct,
            *([] if load else ["--no-load"]),
            *(
                [
                    "--serve-dependencies",
                    ",".join(map(str, ports.dependencies)),
                    "--orchestrator-urls",
                    ",".join(f"http://127.0.0.1:{p}" for p in ports.orchestrator),
                    "--llm-proxy-urls",
                    ",".join(f"http://127.0.0.1:{p}" for p in ports.llm_proxy),
                ]
                if ports.dependencies is not None
                else []
            ),
            *([] if consumer else ["--no-consumer"]),
        ]
        # Any worker command: the stand-in is only the default (see `python -m standin up`).
        chosen = {"--worker-command": worker_command, "--ready-url": ready_url}
        chosen["--ready-exec"] = ready_exec
        for flag, value in chosen.items():
            if value:
                self.standin_args += [flag, value]
        self.standin_args += list(extra_args)
        self._procs: list[subprocess.Popen[bytes]] = []

    @classmethod
    def for_broker(
        cls, root: Path, broker: KafkaBroker, ports: SutPorts, temporal_address: str, **kw: object
    ) -> LocalSut:
        """A SUT against a broker started with ``chaos_advertised=ports.kafka_advertised``."""
        return cls(
            root,
            ports=ports,
            temporal_address=temporal_address,
            kafka_chaos_ports=broker.chaos_ports,
            kafka_direct=broker.bootstrap_direct,
            replicas=len(ports.kafka),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def state_dir(self) -> Path:
        """The supervisor's state dir (``state.json``, ``hold/``): LocalBackend's sut_state_dir."""
        return self.root / "sut"

    @property
    def control_dir(self) -> Path:
        """The proxy's control dir: LocalBackend's proxy_control_dir."""
        return self.root / "proxy"

    def route_port(self, replica: str, peer: str) -> int:
        """Where the proxy listens for ``replica``'s traffic to ``peer``."""
        return next(r.listen_port for r in self.routes if r.replica == replica and r.peer == peer)

    def start(self, timeout_s: float = 60.0) -> Self:
        """Start the proxy, then the stand-in; return once every replica is ready."""
        self.control_dir.mkdir(parents=True, exist_ok=True)
        config = ProxyConfig(control_dir=self.control_dir, routes=self.routes)
        config_file(self.control_dir).write_text(config.model_dump_json(indent=2))
        self._spawn(
            "proxy", ["-m", "faultproxy.proxy", "--config", str(config_file(self.control_dir))]
        )
        for route in self.routes:
            if not wait_for_port("127.0.0.1", route.listen_port, 10.0):
                self.stop()
                raise RuntimeError(
                    f"the fault proxy did not listen for {route.name}: {self._tail('proxy')}"
                )
        self._spawn(
            "standin",
            ["-m", "standin", "up", "--state-dir", str(self.state_dir), *self.standin_args],
        )
        deadline = time.monotonic() + timeout_s
        while not self.all_ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                self.stop()
                raise RuntimeError(
                    f"the stand-in's replicas were not ready in {timeout_s}s: "
                    f"{self._tail('standin')}"
                )
            time.sleep(0.1)
        return self

    def state(self) -> dict[str, object]:
        """The supervisor's ``state.json`` as plain data ({} before it is written)."""
        try:
            return dict(json.loads((self.state_dir / "state.json").read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def all_ready(self) -> bool:
        """Whether the supervisor reports every replica ready."""
        replicas = self.state().get("replicas") or []
        assert isinstance(replicas, list)
        return len(replicas) == self.replicas and all(r.get("ready") for r in replicas)

    def stop(self) -> None:
        """Stop the stand-in (it stops its replicas), then the proxy; safe to call twice."""
        while self._procs:
            stop_process_group(self._procs.pop(), timeout_s=20)

    def _spawn(self, name: str, args: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        project = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")])),
        }
        with open(self.root / f"{name}.log", "ab") as log:
            self._procs.append(
                subprocess.Popen(
                    [sys.executable, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root,
                    env=env,
                    start_new_session=True,
                )
            )

    def _tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.root / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    """``python -m devstack.sut run``: Temporal (unless given), Kafka, proxy and stand-in."""
    from devstack.temporal import TemporalDevServer

    parser = argparse.ArgumentParser(
        prog="python -m devstack.sut",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run everything until SIGINT/SIGTERM")
    run.add_argument("--root", type=Path, required=True)
    run.add_argument("--replicas", type=int, default=3)
    run.add_argument("--temporal-address", help="an existing Temporal; default: start one")
    run.add_argument("--no-load", action="store_true")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    ports = SutPorts.pick(args.replicas)
    temporal = None if args.temporal_address else TemporalDevServer(ui=True).start()
    address = args.temporal_address or (temporal.address if temporal else "")
    try:
        with KafkaBroker(args.root / "kafka", chaos_advertised=ports.kafka_advertised) as broker:
            sut = LocalSut.for_broker(args.root, broker, ports, address, load=not args.no_load)
            with sut:
                print(f"TEMPORAL_ADDRESS={address}")
                print(f"KAFKA_BOOTSTRAP_DIRECT={broker.bootstrap_direct}")
                print(f"SUT_STATE_DIR={sut.state_dir}")
                print(f"PROXY_CONTROL_DIR={sut.control_dir}", flush=True)
                stopping.wait()
    finally:
        if temporal is not None:
            temporal.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
