"""Build, start and stop the local Kubernetes API server the tests talk to.

One process (`scripts/kube-apiserver`, built by `scripts/build-kube-apiserver.sh` into a cache
outside the repo) runs an embedded etcd and the real kube-apiserver on loopback. No
controller-manager, scheduler or kubelet runs: objects are stored and validated exactly as in a
cluster, but nothing acts on them. Pods stay Pending unless a test patches their status, and no
controller creates a namespace's `default` ServiceAccount, so the ServiceAccount admission plugin
is disabled (pods would otherwise be refused).

`KubeApiServer` owns everything in its work directory: a self-made CA and serving certificate for
127.0.0.1, the service-account signing key (so the TokenRequest API issues real tokens; both made
by `devstack.certs`), a static token file whose admin token is in `system:masters`, etcd's data,
the server's log and an admin kubeconfig. Authorization is RBAC, so any other identity is refused
until a Role grants it. At start it installs the pinned Chaos Mesh CRDs (waiting until each is
Established) and creates the `bytebot` namespace. The CRDs come from the Chaos Mesh Go module
(`config/crd/bases`, cached by `scripts/build-chaos-mesh.sh`), never from outside the repo.
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

import yaml
from kubernetes import client

from devstack import builds
from devstack.certs import write_serving_certs, write_signing_key
from devstack.ports import free_port
from devstack.processes import Service, stop_process_group

CRDS_DIR_ENV = "CHAOS_MESH_CRDS_DIR"
NAMESPACE = "bytebot"
ADMIN_USER = "admin"


class KubeApiServerError(RuntimeError):
    """The local API server could not be built, started or prepared."""


def ensure_built() -> Path:
    """Return the cached kube-apiserver binary, building it first if needed.

    Raises:
        KubeApiServerError: the build script failed.
    """
    try:
        return builds.kube_apiserver()
    except builds.BuildError as err:
        raise KubeApiServerError(str(err)) from err


def crds_dir() -> Path:
    """The Chaos Mesh CRD manifests: `$CHAOS_MESH_CRDS_DIR`, else those of the pinned module."""
    if override := os.environ.get(CRDS_DIR_ENV):
        return Path(override)
    try:
        return builds.chaos_mesh(controller=False).crds
    except builds.BuildError as err:
        raise KubeApiServerError(str(err)) from err


class KubeApiServer(Service):
    """A kube-apiserver with embedded etcd on loopback, with Chaos Mesh CRDs installed.

    Use as a context manager (or call `start()` and `stop()`)::

        with KubeApiServer(tmp_path) as kube:
            api = client.CustomObjectsApi(kube.api_client())
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        binary: Path | None = None,
        crds: Path | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        """Prepare (but do not start) a server that keeps all its files in `work_dir`.

        Args:
            work_dir: an empty, private directory (a test's temp dir); created if missing.
            binary: the kube-apiserver binary; `ensure_built()` by default.
            crds: folder of CRD manifests to install; `crds_dir()` by default.
            start_timeout_s: how long `start()` may wait for readiness and for the CRDs.
        """
        self.work_dir = Path(work_dir)
        self._binary = binary
        self._crds = crds
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.admin_token = secrets.token_hex(16)
        self.ca_path = self.work_dir / "ca.crt"
        self.log_path = self.work_dir / "kube-apiserver.log"

    @property
    def url(self) -> str:
        """The server's base URL, `https://127.0.0.1:<port>`."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        """An admin kubeconfig (token auth, CA pinned), written by `start()`."""
        return self.work_dir / "kubeconfig"

    def start(self) -> Self:
        """Start the server, wait for /readyz, install the CRDs and create `bytebot`.

        Raises:
            KubeApiServerError: the build failed, the server exited or was not ready in time,
                or a CRD was not Established in time. The message carries the log's tail.
        """
        if self._proc is not None:
            return self
        binary = self._binary or ensure_built()
        self._crds = self._crds or crds_dir()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._write_credentials()
        self.port, etcd_port, peer_port = free_port(), free_port(), free_port()
        args = [
            str(binary),
            f"--etcd-data-dir={self.work_dir / 'etcd'}",
            f"--etcd-port={etcd_port}",
            f"--etcd-peer-port={peer_port}",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={self.work_dir / 'serving.crt'}",
            f"--tls-private-key-file={self.work_dir / 'serving.key'}",
            f"--client-ca-file={self.ca_path}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={self.work_dir / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.work_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={self.work_dir / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self._start_timeout_s
        try:
            self._wait_ready(deadline)
            self._write_kubeconfig()
            with self.api_client() as api:
                self._install_crds(api, deadline)
                self.ensure_namespace(NAMESPACE)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s). Safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process_group(proc, timeout_s=20)

    def api_client(self) -> client.ApiClient:
        """A new client authenticated as the admin (group `system:masters`)."""
        return self.token_client(self.admin_token)

    def token_client(self, token: str) -> client.ApiClient:
        """A new client that authenticates with `token` (e.g. a ServiceAccount's)."""
        config = client.Configuration(host=self.url)
        config.ssl_ca_cert = str(self.ca_path)
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(config)

    def ensure_namespace(self, name: str) -> None:
        """Create namespace `name` unless it exists."""
        with self.api_client() as api:
            try:
                client.CoreV1Api(api).create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
                )
            except client.ApiException as e:
                if e.status != 409:
                    raise

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _fail(self, what: str) -> KubeApiServerError:
        return KubeApiServerError(f"{what}; last lines of {self.log_path}:\n{self.log_tail()}")

    def _wait_ready(self, deadline: float) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        request = urllib.request.Request(
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._fail(f"kube-apiserver exited with {self._proc.returncode}")
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise self._fail(f"kube-apiserver not ready after {self._start_timeout_s}s")
            time.sleep(0.2)

    def _install_crds(self, api: client.ApiClient, deadline: float) -> None:
        assert self._crds is not None
        ext = client.ApiextensionsV1Api(api)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        names: set[str] = set()
        for path in sorted(self._crds.glob("*.yaml")):
            with path.open() as f:
                for doc in yaml.load_all(f, Loader=loader):
                    if not doc:
                        continue
                    doc.pop("status", None)
                    crd = client.V1CustomResourceDefinition.from_dict(doc)
                    if crd is None:
                        raise KubeApiServerError(f"not a CRD manifest: {path}")
                    ext.create_custom_resource_definition(crd)
                    names.add(doc["metadata"]["name"])
        if not names:
            raise KubeApiServerError(f"no CRD manifests in {self._crds}")
        pending = sorted(names)
        while True:
            pending = [name for name in pending if not self._established(ext, name)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise self._fail(f"CRDs not Established in time: {sorted(pending)}")
            time.sleep(0.1)

    @staticmethod
    def _established(ext: client.ApiextensionsV1Api, name: str) -> bool:
        status = ext.read_custom_resource_definition(name).status
        conditions = (status.conditions if status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    def _write_credentials(self) -> None:
        write_serving_certs(
            self.ca_path, self.work_dir / "serving.crt", self.work_dir / "serving.key"
        )
        write_signing_key(self.work_dir / "sa.key", self.work_dir / "sa.pub")
        # token,user,uid,"group1,group2"
        tokens = self.work_dir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_path)},
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": self.admin_token}}],
            "contexts": [
                {
                    "name": "local",
                    "context": {"cluster": "local", "user": ADMIN_USER, "namespace": NAMESPACE},
                }
            ],
            "current-context": "local",
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig_path.chmod(0o600)
