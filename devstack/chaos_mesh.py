"""Start and stop the real Chaos Mesh 2.6.7 controller (and its admission webhooks) locally.

`ChaosControllerManager` runs the `chaos-controller-manager` binary (built from the Go module by
`scripts/build-chaos-mesh.sh`) outside any cluster, against a `devstack.kube.KubeApiServer`
through its admin kubeconfig. It serves its webhooks on 127.0.0.1 with a certificate made here,
and registers them with the API server by URL (mutating and validating, for the four kinds the
backend renders) with `failurePolicy: Fail`, so a spec Chaos Mesh refuses is refused on create
and on a server-side dry run, exactly as in a cluster.

What a cluster would provide, it writes as plain objects in the namespace `chaos-mesh`: the
`chaos-daemon` Endpoints (the controller dials the daemon of a pod's node there; the address
must not be loopback) and the chaos DNS server's Service and Pod (the controller dials the
pod's IP). Whatever listens there is the caller's: in the tests, stand-ins.

The controller ignores the first SIGTERM (it waits for a second one), so `stop()` sends two,
then SIGKILL after a bounded wait. It owns nothing outside its work directory.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

from kubernetes import client

from devstack import builds
from devstack.certs import write_serving_certs
from devstack.kube import KubeApiServer
from devstack.ports import free_port, wait_for_port
from devstack.processes import Service, stop_process_group

CONTROL_NAMESPACE = "chaos-mesh"
#: The kinds our backend renders; their webhooks are the ones registered.
WEBHOOK_KINDS = ("podchaos", "networkchaos", "dnschaos", "stresschaos")
DNS_SERVICE = "chaos-mesh-dns-server"
DNS_LABELS = {"app.kubernetes.io/component": "chaos-dns-server"}
#: The node every test pod is bound to (no kubelet runs; the tests play its part).
NODE = "local-node"
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"


class ChaosMeshError(RuntimeError):
    """The controller could not be built, started or registered."""


class ChaosControllerManager(Service):
    """The real chaos-controller-manager on loopback; see the module docstring."""

    def __init__(
        self,
        kube: KubeApiServer,
        work_dir: Path,
        *,
        daemon_ip: str,
        daemon_port: int,
        dns_port: int,
        binary: Path | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        """Prepare (but do not start) a controller for `kube`.

        Args:
            kube: the running API server (its admin kubeconfig is the controller's identity).
            work_dir: a private directory for the certificates and the log.
            daemon_ip: a non-loopback address of this machine where chaos-daemon listens.
            daemon_port: chaos-daemon's gRPC port there.
            dns_port: the chaos DNS server's gRPC port (on `daemon_ip` too).
            binary: the controller; built (or found in the cache) by default.
            start_timeout_s: how long `start()` may wait for the webhooks to answer.
        """
        self.kube = kube
        self.work_dir = Path(work_dir)
        self.daemon_ip, self.daemon_port, self.dns_port = daemon_ip, daemon_port, dns_port
        self._binary = binary
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.webhook_port = self.metrics_port = 0
        self.log_path = self.work_dir / "chaos-controller-manager.log"
        self.started_in_s = 0.0

    def start(self) -> Self:
        """Start the controller, register its webhooks and wait until they answer.

        Raises:
            ChaosMeshError: the build failed, the controller exited or did not answer in time.
        """
        if self._proc is not None:
            return self
        started = time.monotonic()
        try:
            binary = self._binary or builds.chaos_mesh().controller
        except builds.BuildError as err:
            raise ChaosMeshError(str(err)) from err
        certs = self.work_dir / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        write_serving_certs(certs / "ca.crt", certs / "tls.crt", certs / "tls.key")
        self.webhook_port, self.metrics_port = free_port(), free_port()
        with self.kube.api_client() as api:
            self._write_cluster_objects(api)
        env = os.environ | {
            "KUBECONFIG": str(self.kube.kubeconfig_path),
            "NAMESPACE": CONTROL_NAMESPACE,
            "ENABLE_LEADER_ELECTION": "false",
            "CERTS_DIR": str(certs),
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(self.webhook_port),
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": str(self.metrics_port),
            "CHAOS_DAEMON_SERVICE_PORT": str(self.daemon_port),
            "CHAOS_DNS_SERVICE_NAME": DNS_SERVICE,
            "CHAOS_DNS_SERVICE_PORT": str(self.dns_port),
            "SECURITY_MODE": "false",
            "POD_FAILURE_PAUSE_IMAGE": PAUSE_IMAGE,
            "ENABLE_FILTER_NAMESPACE": "false",
            "PPROF_ADDR": "0",
        }
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(binary)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = started + self._start_timeout_s
            if not wait_for_port("127.0.0.1", self.webhook_port, self._start_timeout_s):
                raise self._fail("the webhook server never listened")
            with self.kube.api_client() as api:
                self._register_webhooks(api, (certs / "ca.crt").read_bytes())
                self._wait_webhooks_answer(api, deadline)
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Unregister the webhooks and stop the controller (two SIGTERMs, then SIGKILL)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            with self.kube.api_client() as api:
                reg = client.AdmissionregistrationV1Api(api)
                for delete in (
                    reg.delete_mutating_webhook_configuration,
                    reg.delete_validating_webhook_configuration,
                ):
                    try:
                        delete("bytebot-chaos-test-chaos-mesh")
                    except client.ApiException as err:
                        if err.status != 404:
                            raise
        except Exception:  # noqa: BLE001 - the API server may be gone first; stop anyway
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            time.sleep(0.2)
        stop_process_group(proc, timeout_s=10)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the controller's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def metrics(self) -> str:
        """The controller's Prometheus metrics (proof it is up, and its reconcile counts)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def _fail(self, what: str) -> ChaosMeshError:
        return ChaosMeshError(f"{what}; last lines of {self.log_path}:\n{self.log_tail()}")

    def _write_cluster_objects(self, api: client.ApiClient) -> None:
        """The namespace, chaos-daemon's Endpoints and the DNS server's Service and Pod."""
        self.kube.ensure_namespace(CONTROL_NAMESPACE)
        core = client.CoreV1Api(api)
        daemon = {
            "metadata": {"name": "chaos-daemon", "namespace": CONTROL_NAMESPACE},
            "subsets": [
                {
                    "addresses": [{"ip": self.daemon_ip, "nodeName": NODE}],
                    "ports": [{"name": "grpc", "port": self.daemon_port}],
                }
            ],
        }
        service = {
            "metadata": {"name": DNS_SERVICE, "namespace": CONTROL_NAMESPACE},
            "spec": {"selector": DNS_LABELS, "ports": [{"name": "grpc", "port": self.dns_port}]},
        }
        pod = {
            "metadata": {"name": "chaos-dns-server", "namespace": CONTROL_NAMESPACE},
            "spec": {"nodeName": NODE, "containers": [{"name": "dns", "image": "coredns"}]},
        }
        pod["metadata"]["labels"] = DNS_LABELS  # type: ignore[index]
        _create(core.create_namespaced_endpoints, CONTROL_NAMESPACE, daemon)
        _create(core.create_namespaced_service, CONTROL_NAMESPACE, service)
        _create(core.create_namespaced_pod, CONTROL_NAMESPACE, pod)
        status = {"status": {"phase": "Running", "podIP": self.daemon_ip}}
        core.patch_namespaced_pod_status("chaos-dns-server", CONTROL_NAMESPACE, status)

    def _register_webhooks(self, api: client.ApiClient, ca: bytes) -> None:
        import base64

        bundle = base64.b64encode(ca).decode()

        def hooks(verb: str, prefix: str) -> list[dict[str, Any]]:
            return [
                {
                    "name": f"{prefix}{kind}.kb.io",
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{self.webhook_port}/"
                        f"{verb}-chaos-mesh-org-v1alpha1-{kind}",
                        "caBundle": bundle,
                    },
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "timeoutSeconds": 10,
                    "admissionReviewVersions": ["v1", "v1beta1"],
                    "rules": [
                        {
                            "apiGroups": ["chaos-mesh.org"],
                            "apiVersions": ["v1alpha1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": [kind],
                        }
                    ],
                }
                for kind in WEBHOOK_KINDS
            ]

        reg = client.AdmissionregistrationV1Api(api)
        name = {"name": "bytebot-chaos-test-chaos-mesh"}
        _create(
            reg.create_mutating_webhook_configuration,
            None,
            {"metadata": name, "webhooks": hooks("mutate", "m")},
        )
        _create(
            reg.create_validating_webhook_configuration,
            None,
            {"metadata": name, "webhooks": hooks("validate", "v")},
        )

    def _wait_webhooks_answer(self, api: client.ApiClient, deadline: float) -> None:
        """Until a server-side dry-run create of a valid PodChaos passes both webhooks."""
        probe = {
            "apiVersion": "chaos-mesh.org/v1alpha1",
            "kind": "PodChaos",
            "metadata": {"name": "webhook-probe", "namespace": CONTROL_NAMESPACE},
            "spec": {
                "action": "pod-kill",
                "mode": "one",
                "selector": {"labelSelectors": {"app": "nobody"}},
                "duration": "1s",
            },
        }
        custom = client.CustomObjectsApi(api)
        last = ""
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._fail(f"chaos-controller-manager exited with {self._proc.returncode}")
            try:
                custom.create_namespaced_custom_object(
                    "chaos-mesh.org",
                    "v1alpha1",
                    CONTROL_NAMESPACE,
                    "podchaos",
                    probe,
                    dry_run="All",
                )
                return
            except (client.ApiException, urllib.error.URLError, ssl.SSLError) as err:
                last = str(getattr(err, "body", err))[:300]
            if time.monotonic() > deadline:
                raise self._fail(f"webhooks did not answer in time: {last}")
            time.sleep(0.3)


def _create(fn: Any, namespace: str | None, body: dict[str, Any]) -> None:
    """Create an object (raw JSON, no model round trip); 409 means it is already there."""
    try:
        args = (namespace, body) if namespace is not None else (body,)
        fn(*args, _preload_content=False)
    except client.ApiException as err:
        if err.status != 409:
            raise ChaosMeshError(f"cannot create {body['metadata']['name']}: {err.body}") from err


def host_ip() -> str:
    """A non-loopback IPv4 address of this machine (chaos-daemon's Endpoints refuse loopback)."""
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    for link in json.loads(out.stdout):
        for addr in link.get("addr_info", []):
            if addr.get("scope") == "global":
                return str(addr["local"])
    raise ChaosMeshError("this machine has no non-loopback IPv4 address")
