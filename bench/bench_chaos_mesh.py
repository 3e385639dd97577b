"""Latency of the real Chaos Mesh controller, per kind and blast radius, beside a bare API call.

For 1, 10, 100 and 1000 target pods (a Deployment's, made by the real kube-controller-manager,
run by the kubelet stand-in) and each kind the backend renders, it injects through the Chaos
Mesh backend (blast-radius cap lifted, mode `all`) and measures create -> `AllInjected`, then
delete -> `AllRecovered` and the object gone, polling every 20 ms. The baseline is a bare API
round trip on the same server: create a ConfigMap and read it back, delete it and see it gone.
chaos-daemon and the DNS server are the tests' stand-ins (they answer at once), so the figures
are the controller's and the API's share of a fault's latency, not a node's.

    .venv/bin/python bench/bench_chaos_mesh.py --quick      # 1 and 10 pods, one round: < 1 min
    .venv/bin/python bench/bench_chaos_mesh.py              # 1..1000 pods, 3 rounds

Prints min/median/max per row and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402
from kubernetes import client  # noqa: E402

from activities.faults.chaos_mesh.backend import BlastRadius, ChaosMeshBackend, conditions  # noqa: E402
from activities.faults.chaos_mesh.client import KubeClient  # noqa: E402
from activities.faults.chaos_mesh.render import PeerMap, PeerTarget, kind_of  # noqa: E402
from devstack.kube import KubeApiServer  # noqa: E402
from tests.support.chaos_mesh import request  # noqa: E402
from tests.support.chaos_mesh_stack import deployment, real_chaos_mesh, wait_ready_pods  # noqa: E402

FAULTS: dict[str, dict[str, Any]] = {
    "pod-failure": {"action": "pod-failure"},
    "container-kill": {"action": "container-kill"},
    "network-delay": {"action": "network-delay"},
    "cpu-stress": {"action": "cpu-stress"},
    "dns-error": {"action": "dns-error", "patterns": ["temporal*"]},
}
POLL_S = 0.02


async def _until(check: Any, timeout_s: float) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError("timed out")
        await asyncio.sleep(POLL_S)
    return time.monotonic() - started


async def fault_round(
    backend: ChaosMeshBackend, kc: KubeClient, ns: str, name: str, step: int, n: int
) -> tuple[float, float]:
    spec = {"duration": "5m", "target": {"namespace": ns, "mode": "all"}, **FAULTS[name]}
    req = request(ns, spec, step=step)
    plural = kind_of(req.fault).plural
    timeout = 60 + n * 0.5
    started = time.monotonic()
    await backend.inject(req)

    async def injected() -> bool:
        obj = await kc.get(plural, ns, req.fault_id)
        return bool(obj and conditions(obj).get("AllInjected"))

    await _until(injected, timeout)
    inject_s = time.monotonic() - started
    started = time.monotonic()
    await kc.delete(plural, ns, req.fault_id)

    async def gone() -> bool:
        return await kc.get(plural, ns, req.fault_id) is None

    await _until(gone, timeout)
    return inject_s, time.monotonic() - started


async def api_round(api: client.ApiClient, kc: KubeClient, ns: str) -> tuple[float, float]:
    core, name = client.CoreV1Api(api), f"bench-{secrets.token_hex(3)}"
    started = time.monotonic()
    await asyncio.to_thread(core.create_namespaced_config_map, ns, {"metadata": {"name": name}})
    await asyncio.to_thread(core.read_namespaced_config_map, name, ns)
    create_s = time.monotonic() - started
    started = time.monotonic()
    await asyncio.to_thread(core.delete_namespaced_config_map, name, ns)
    with contextlib.suppress(client.ApiException):  # 404: the deletion is visible
        await asyncio.to_thread(core.read_namespaced_config_map, name, ns)
    return create_s, time.monotonic() - started


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "min_ms": round(min(values) * 1000, 1),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


async def bench(
    kube: KubeApiServer, stack: Any, sizes: list[int], rounds: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with kube.api_client() as api:
        kc = KubeClient(kube.api_client(), qps=200, burst=400)
        for n in sizes:
            ns = f"bench-{n}-{secrets.token_hex(2)}"
            kube.ensure_namespace(ns)
            stack.kubelet.namespaces.append(ns)
            deployment(api, ns, n)
            started = time.monotonic()
            await asyncio.to_thread(wait_ready_pods, api, ns, n, 120 + n)
            print(f"{n} pods ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
            peers = PeerMap(
                temporal=PeerTarget(hosts=["10.96.10.10"]), kafka=PeerTarget(hosts=["10.96.10.20"])
            )
            backend = ChaosMeshBackend(
                kc, allowed_namespaces=[ns], blast_radius=BlastRadius(None, None), peers=peers
            )
            samples: dict[str, tuple[list[float], list[float]]] = {
                k: ([], []) for k in ["api", *FAULTS]
            }
            for r in range(rounds):
                a, d = await api_round(api, kc, ns)
                samples["api"][0].append(a)
                samples["api"][1].append(d)
                for i, name in enumerate(FAULTS):
                    a, d = await fault_round(backend, kc, ns, name, r * 10 + i, n)
                    samples[name][0].append(a)
                    samples[name][1].append(d)
            for name, (inject, recover) in samples.items():
                row = {
                    "pods": n,
                    "kind": name,
                    "inject": _stats(inject),
                    "recover": _stats(recover),
                }
                rows.append(row)
                print(
                    f"{n:5d} pods  {name:15s} "
                    f"create->AllInjected {row['inject']['median_ms']:8.1f} ms "
                    f"(min {row['inject']['min_ms']}, max {row['inject']['max_ms']})   "
                    f"delete->gone {row['recover']['median_ms']:8.1f} ms "
                    f"(min {row['recover']['min_ms']}, max {row['recover']['max_ms']})"
                    + ("   [bare API: create+get / delete+get]" if name == "api" else "")
                )
            client.AppsV1Api(api).delete_namespaced_deployment("bytebot-temporal-worker", ns)
        kc.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 pods, one round")
    parser.add_argument("--sizes", default="1,10,100,1000", help="target pod counts")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # The backend's logs go to stderr: stdout is the table and the JSON line.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    sizes = [1, 10] if args.quick else [int(s) for s in args.sizes.split(",")]
    rounds = 1 if args.quick else args.rounds
    work = Path(tempfile.mkdtemp(prefix="bench-chaos-mesh-"))
    started = time.monotonic()
    with KubeApiServer(work / "kube") as kube, real_chaos_mesh(kube, work) as stack:
        print(
            f"stack up in {time.monotonic() - started:.1f}s "
            f"(controller {stack.controller.started_in_s:.1f}s)",
            file=sys.stderr,
        )
        rows = asyncio.run(bench(kube, stack, sizes, rounds))
    print(json.dumps({"bench": "chaos_mesh", "rounds": rounds, "rows": rows}))


if __name__ == "__main__":
    main()
