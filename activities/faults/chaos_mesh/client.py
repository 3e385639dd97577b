"""The only module that talks to the Kubernetes API: a thin, rate-limited, classified client.

The `kubernetes` client blocks, so every call runs in a thread (`asyncio.to_thread`) after a
token bucket lets it through: a fault on a large target never storms the API server. Callers
never see `ApiException` or urllib3 errors: each failure becomes one of our `KubeError`s, which
are Temporal `ApplicationError`s that say themselves whether a retry helps. Forbidden and
invalid requests are permanent and name the permission or the field; conflicts, throttling,
server errors and timeouts are temporary and left to Temporal's retry policy.

It knows nothing of faults or runs: objects go in and out as plain dicts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
import urllib3
from kubernetes import client, config
from temporalio.exceptions import ApplicationError

from activities.faults.chaos_mesh.render import GROUP, VERSION
from models.ledger import TargetRef

log = structlog.get_logger(__name__)
RBAC_HINT = "grant it in the chaos worker's Role (k8s/rbac.yaml)"


class KubeError(ApplicationError):
    """A Kubernetes API call failed; `non_retryable` tells Temporal whether to retry."""

    retryable = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(
            message,
            type=type(self).__name__,
            non_retryable=not self.retryable,
            next_retry_delay=timedelta(seconds=retry_after_s) if retry_after_s else None,
        )
        self.status = status


class KubeRejected(KubeError):
    """The API server refused the request for good (a retry cannot help)."""

    retryable = False


class KubeForbidden(KubeRejected):
    """403: the worker's identity lacks a permission (named in the message)."""


class KubeInvalid(KubeRejected):
    """400/422: the object is invalid; the message names the field(s)."""


class KubeWebhookRefused(KubeInvalid):
    """An admission webhook (Chaos Mesh's own) denied the object; the message says why."""


class KubeNotFound(KubeRejected):
    """404 where something had to exist (a namespace, a CRD)."""


class KubeTemporary(KubeError):
    """A failure that may pass: server errors, timeouts, lost connections."""


class KubeConflict(KubeTemporary):
    """409: a concurrent change or an object already there."""


class KubeAlreadyExists(KubeConflict):
    """409 AlreadyExists on create: the caller decides whether to adopt the object."""


class KubeThrottled(KubeTemporary):
    """429: the API server asks us to slow down (Retry-After is honoured)."""


def _status(body: str | bytes | None) -> dict[str, Any]:
    try:
        parsed = json.loads(body or "{}")
    except (TypeError, ValueError):
        return {"message": str(body)[:500]}
    return parsed if isinstance(parsed, dict) else {}


def classify(err: client.ApiException, what: str) -> KubeError:
    """Our error for an `ApiException` raised while doing `what` (e.g. "create PodChaos x")."""
    status = _status(err.body)
    message = str(status.get("message") or err.reason or "no message")
    causes = (status.get("details") or {}).get("causes") or []
    fields = [
        f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
        for c in causes
    ]
    code = int(err.status or 0)
    if "admission webhook" in message and "denied the request" in message:
        # Chaos Mesh's webhook answers 403 for a spec it refuses: not a missing permission.
        return KubeWebhookRefused(f"{what} was refused by Chaos Mesh: {message}", status=code)
    if code == 403:
        return KubeForbidden(f"{what} is forbidden: {message}; {RBAC_HINT}", status=code)
    if code in (400, 422):
        detail = "; ".join(fields) if fields else message
        return KubeInvalid(f"{what} is invalid: {detail}", status=code)
    if code == 401:
        return KubeRejected(f"{what}: the API server rejected our credentials", status=code)
    if code == 404:
        return KubeNotFound(f"{what}: not found: {message}", status=code)
    if code == 409:
        kind = KubeAlreadyExists if status.get("reason") == "AlreadyExists" else KubeConflict
        return kind(f"{what}: conflict: {message}", status=code)
    if code == 429:
        headers = err.headers or {}
        retry_after = float(headers.get("Retry-After", 1) or 1)
        return KubeThrottled(
            f"{what}: throttled: {message}", status=code, retry_after_s=retry_after
        )
    return KubeTemporary(f"{what}: API server error {code}: {message}", status=code)


class RateLimiter:
    """A token bucket: at most `qps` calls per second on average, bursts up to `burst`."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps, self.burst = qps, burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a call may go out."""
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.qps)
            self._at = now
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.qps)
                self._tokens, self._at = 1.0, time.monotonic()
            self._tokens -= 1


def label_selector(labels: dict[str, str]) -> str:
    """`a=b,c=d` from a dict of labels."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class KubeClient:
    """Rate-limited async access to the few API calls the chaos worker makes."""

    def __init__(
        self, api: client.ApiClient, *, qps: float = 20.0, burst: int = 40, timeout_s: float = 30
    ) -> None:
        """Wrap an authenticated `ApiClient`.

        Args:
            api: the client (kubeconfig, in-cluster or a token).
            qps: sustained calls per second this worker makes to the API server.
            burst: calls allowed at once before the rate applies.
            timeout_s: read timeout of one call; a timeout is a temporary error.
        """
        self.api = api
        self.limiter = RateLimiter(qps, burst)
        self.timeout = (5.0, timeout_s)
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    @classmethod
    def from_config(cls, kubeconfig: Path | None = None, **options: Any) -> KubeClient:
        """From a kubeconfig file, or from the pod's service account when `None`."""
        configuration = client.Configuration()
        if kubeconfig is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        return cls(client.ApiClient(configuration), **options)

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await self.limiter.acquire()
        try:
            return await asyncio.to_thread(fn, *args, _request_timeout=self.timeout, **kwargs)
        except client.ApiException as err:
            raise classify(err, what) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise KubeTemporary(f"{what}: API server unreachable or slow: {err}") from err

    async def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create a Chaos Mesh object with strict field validation (or only validate it)."""
        meta, plural = obj["metadata"], obj["kind"].lower()
        verb = "dry-run create" if dry_run else "create"
        what = f"{verb} {obj['kind']} {meta['namespace']}/{meta['name']}"
        created: dict[str, Any] = await self._call(
            what,
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            meta["namespace"],
            plural,
            obj,
            field_validation="Strict",
            dry_run="All" if dry_run else None,
        )
        return created

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            found: dict[str, Any] = await self._call(
                f"get {plural} {namespace}/{name}",
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
            )
        except KubeNotFound:
            return None
        return found

    async def list_objects(
        self, plural: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        """Objects of one kind in one namespace matching a label selector."""
        found: dict[str, Any] = await self._call(
            f"list {plural} in {namespace}",
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            label_selector=selector,
        )
        return list(found.get("items") or [])

    async def delete(self, plural: str, namespace: str, name: str) -> bool:
        """Ask for deletion; False when it was already gone. Finalizers may still hold it."""
        try:
            await self._call(
                f"delete {plural} {namespace}/{name}",
                self._custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                propagation_policy="Background",
            )
        except KubeNotFound:
            return False
        return True

    async def merge_patch(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A JSON merge patch of an object (its pause annotation); None when it is gone."""
        try:
            patched: dict[str, Any] = await self._call(
                f"patch {plural} {namespace}/{name}",
                self._custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                patch,
                _content_type="application/merge-patch+json",
            )
        except KubeNotFound:
            return None
        return patched

    async def list_pods(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Pods of a namespace carrying every one of `labels`, as plain dicts."""
        response: Any = await self._call(
            f"list pods in {namespace}",
            self._core.list_namespaced_pod,
            namespace,
            label_selector=label_selector(labels),
            _preload_content=False,
        )
        return list(json.loads(response.data).get("items") or [])

    def close(self) -> None:
        """Release the connection pool."""
        self.api.close()  # type: ignore[no-untyped-call]


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod's container statuses (empty while it is not scheduled)."""
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def pod_ref(pod: dict[str, Any]) -> TargetRef:
    """A pod as a ledger target: name, uid, readiness, restarts and the last exit reason."""
    statuses = container_statuses(pod)
    reasons = [((s.get("lastState") or {}).get("terminated") or {}).get("reason") for s in statuses]
    reason = "OOMKilled" if "OOMKilled" in reasons else next((r for r in reasons if r), None)
    meta = pod.get("metadata") or {}
    return TargetRef(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        ready=_ready(pod) and not meta.get("deletionTimestamp"),
        restarts=sum(int(s.get("restartCount") or 0) for s in statuses),
        last_exit_reason=reason,
    )
