"""STAND-INS for chaos-daemon and the chaos DNS server, the gRPC servers the real controller dials.

No container runs here, so nothing could do what chaos-daemon does (enter a container's
namespaces, kill its process, run stress-ng, set tc/iptables/ipset) or what the chaos DNS
server does. These stand-ins take the real controller's calls instead: they speak the real
contracts (`pb.ChaosDaemon` from Chaos Mesh's `pkg/chaosdaemon/pb/chaosdaemon.proto`, `pb.DNS`
from k8s_dns_chaos's `pb/dns.proto`, both taken from the Go modules by
`scripts/build-chaos-mesh.sh`; the Python message classes are generated from them here with
grpcio-tools, once, into the same cache), record every call with its request, answer the
controller as chaos-daemon would (stressor instance ids, a pid), and fail on demand: a method
can be made to return a gRPC error, or the server stopped and started again on its port
(the daemon unreachable). A container kill is passed on to `on_container_kill`, where the
tests' kubelet stand-in restarts the container.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import grpc
from google.protobuf import json_format, message_factory

from devstack.builds import ChaosMeshBuild


def generated_modules(build: ChaosMeshBuild) -> tuple[ModuleType, ModuleType]:
    """`chaosdaemon_pb2` and `dns_pb2`, generated from the module's protos (cached)."""
    out = build.root / "python"
    if not (out / "dns_pb2.py").exists():
        tmp = build.root / f"python.tmp.{uuid.uuid4().hex[:6]}"
        tmp.mkdir()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{build.proto}",
                f"--python_out={tmp}",
                "chaosdaemon.proto",
                "dns.proto",
            ],
            check=True,
        )
        tmp.rename(out) if not out.exists() else None
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return importlib.import_module("chaosdaemon_pb2"), importlib.import_module("dns_pb2")


@dataclass(frozen=True)
class Call:
    """One call the controller made: the method, its request as JSON, when."""

    method: str
    request: dict[str, Any]
    at: float


@dataclass
class StandInGrpc:
    """A recording gRPC stand-in for one service of a generated module (see module docstring)."""

    service: Any
    host: str
    port: int
    on_call: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, tuple[grpc.StatusCode, str]] = field(default_factory=dict)
    _server: grpc.Server | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> StandInGrpc:
        """Serve on host:port (again, after `stop()`)."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = {m.name: self._handler(m) for m in self.service.methods}
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(self.service.full_name, handlers)]
        )
        if server.add_insecure_port(f"{self.host}:{self.port}") == 0:
            raise RuntimeError(f"stand-in {self.service.name} cannot bind {self.host}:{self.port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving: the controller's calls now fail to connect."""
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None

    def fail(self, method: str, code: grpc.StatusCode, message: str) -> None:
        """Make `method` answer with this gRPC error until `heal()`."""
        self.failures[method] = (code, message)

    def heal(self) -> None:
        """Answer every method normally again."""
        self.failures.clear()

    def calls_of(self, method: str) -> list[Call]:
        """The recorded calls of one method, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _handler(self, method: Any) -> grpc.RpcMethodHandler:
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            body = json_format.MessageToDict(request, preserving_proto_field_name=True)
            with self._lock:
                self.calls.append(Call(method.name, body, time.time()))
            if method.name in self.failures:
                code, message = self.failures[method.name]
                context.abort(code, message)
            answer = (self.on_call(method.name, body) if self.on_call else None) or {}
            return json_format.ParseDict(answer, response_type())

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )


class ChaosDaemonStandIn:
    """The chaos-daemon and chaos DNS server stand-ins, on `host` (not loopback)."""

    def __init__(
        self,
        build: ChaosMeshBuild,
        host: str,
        daemon_port: int,
        dns_port: int,
        on_container_kill: Callable[[str], None] | None = None,
    ) -> None:
        daemon_pb, dns_pb = generated_modules(build)
        self.on_container_kill = on_container_kill
        self.daemon = StandInGrpc(
            daemon_pb.DESCRIPTOR.services_by_name["ChaosDaemon"],
            host,
            daemon_port,
            on_call=self._answer,
        )
        self.dns = StandInGrpc(
            dns_pb.DESCRIPTOR.services_by_name["DNS"],
            host,
            dns_port,
            on_call=lambda method, request: {"result": True},  # what the DNS server answers
        )
        self._instances = 0

    def __enter__(self) -> ChaosDaemonStandIn:
        self.daemon.start()
        self.dns.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.dns.stop()

    def _answer(self, method: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """What chaos-daemon answers (or does: a container kill goes to the kubelet stand-in)."""
        if method == "ContainerKill" and self.on_container_kill:
            self.on_container_kill(str(request.get("container_id", "")))
        if method == "ContainerGetPid":
            return {"pid": 4242}
        if method == "ExecStressors":
            self._instances += 1
            now, answer = int(time.time()), {}
            for kind in ("cpu", "memory"):
                if request.get(f"{kind}Stressors"):
                    answer |= {
                        f"{kind}Instance": f"{kind}-{self._instances}",
                        f"{kind}StartTime": now,
                        f"{kind}InstanceUid": uuid.uuid4().hex,
                    }
            return answer
        return None
