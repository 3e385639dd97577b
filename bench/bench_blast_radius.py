"""Benchmark (blast-radius): Chaos Mesh apply + confirm + recover at 1 to 1,000 target pods.

On a real kube-apiserver with the real chaos-controller-manager (tests/support/chaos_mesh_stack;
chaos-daemon and the DNS server are the tests' stand-ins, which answer at once, and pods are
API objects of a Deployment run by the kubelet stand-in), for each size it alternates, round
by round:

- `fault`: the Chaos Mesh backend's own `inject` (pods listed, object created), `confirm`
  polled every 20 ms until in effect (`AllInjected`), and `recover` (delete, wait until gone:
  the controller recovers every target first), mode `all`, blast-radius cap lifted, through a
  KubeClient at the worker's production rate limit (20 QPS, burst 40);
- `fault_unthrottled`: the same through a KubeClient at 1,000 QPS: the rate limit's effect;
- `api`: a bare API round trip on the same server (create a ConfigMap and read it back,
  delete it and see it gone): the floor.

The ratio is fault / api per round. `--kinds` adds other kinds than network-delay to `fault`.
`--controller-qps 30,300` runs everything once per client rate limit of chaos-controller-manager
itself (its `QPS` env, default 30, burst 50; burst is set to 5/3 of it): a controller is
restarted between them, so those settings are compared run after run, not round by round.

    .venv/bin/python bench/bench_blast_radius.py --quick   # 1, 10, 100 pods, 3 rounds
    .venv/bin/python bench/bench_blast_radius.py           # 1, 10, 100, 1000 pods, 5 rounds

Prints min/median/max per side and size, then one JSON line (bench/common.py) whose `extra`
holds every size's figures and the phase split (inject / confirm / recover).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes import client  # noqa: E402

from activities.faults.backend import NotYet  # noqa: E402
from activities.faults.chaos_mesh.backend import BlastRadius, ChaosMeshBackend  # noqa: E402
from activities.faults.chaos_mesh.client import KubeClient  # noqa: E402
from activities.faults.chaos_mesh.render import PeerMap, PeerTarget  # noqa: E402
from bench.common import Samples, alternate, emit, figures, quiet_logs, rounds_of, table  # noqa: E402
from bench.common import parser as bench_parser  # noqa: E402
from devstack.kube import KubeApiServer  # noqa: E402
from tests.support.chaos_mesh import request  # noqa: E402
from tests.support.chaos_mesh_stack import deployment, real_chaos_mesh, wait_ready_pods  # noqa: E402

FAULTS: dict[str, dict[str, Any]] = {
    "network-delay": {"action": "network-delay"},
    "pod-failure": {"action": "pod-failure"},
    "container-kill": {"action": "container-kill"},
    "cpu-stress": {"action": "cpu-stress"},
    "dns-error": {"action": "dns-error", "patterns": ["temporal*"]},
}
POLL_S = 0.02
PEERS = PeerMap(temporal=PeerTarget(hosts=["10.96.10.10"]), kafka=PeerTarget(hosts=["10.96.10.20"]))


async def fault_round(
    backend: ChaosMeshBackend, ns: str, kind: str, step: int, n: int, phases: dict[str, list[float]]
) -> float:
    """inject -> confirmed -> recovered through the backend; seconds, phases recorded."""
    spec = {"duration": "5m", "target": {"namespace": ns, "mode": "all"}, **FAULTS[kind]}
    req = request(ns, spec, step=step)
    budget_s = 60 + n * 0.5
    t0 = time.perf_counter()
    await backend.inject(req)
    t1 = time.perf_counter()
    await _until_done(lambda: backend.confirm(req), budget_s)
    t2 = time.perf_counter()
    await _until_done(lambda: backend.recover(req), budget_s)  # as the workflow retries it
    t3 = time.perf_counter()
    for name, took in (("inject", t1 - t0), ("confirm", t2 - t1), ("recover", t3 - t2)):
        phases.setdefault(name, []).append(took)
    return t3 - t0


async def _until_done(call: Callable[[], Awaitable[Any]], budget_s: float) -> None:
    """Call again every POLL_S while it answers NotYet, for at most ``budget_s``."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            await call()
            return
        except NotYet:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(POLL_S)


async def api_round(api: client.ApiClient, ns: str) -> float:
    """A ConfigMap created and read back, deleted and seen gone: seconds."""
    core, name = client.CoreV1Api(api), f"bench-{secrets.token_hex(3)}"
    started = time.perf_counter()
    await asyncio.to_thread(core.create_namespaced_config_map, ns, {"metadata": {"name": name}})
    await asyncio.to_thread(core.read_namespaced_config_map, name, ns)
    await asyncio.to_thread(core.delete_namespaced_config_map, name, ns)
    with contextlib.suppress(client.ApiException):  # 404: the deletion is visible
        await asyncio.to_thread(core.read_namespaced_config_map, name, ns)
    return time.perf_counter() - started


async def one_size(
    kube: KubeApiServer, stack: Any, api: Any, n: int, kinds: list[str], rounds: int
) -> dict[str, Any]:
    ns = f"bench-{n}-{secrets.token_hex(2)}"
    kube.ensure_namespace(ns)
    stack.kubelet.namespaces.append(ns)
    deployment(api, ns, n)
    started = time.monotonic()
    await asyncio.to_thread(wait_ready_pods, api, ns, n, 120 + n)
    print(f"{n} pods ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    limited = KubeClient(kube.api_client())  # the worker's defaults: 20 QPS, burst 40
    free = KubeClient(kube.api_client(), qps=1000, burst=2000)
    backends = {
        name: ChaosMeshBackend(
            kc, allowed_namespaces=[ns], blast_radius=BlastRadius(None, None), peers=PEERS
        )
        for name, kc in (("limited", limited), ("free", free))
    }
    phases: dict[str, list[float]] = {}
    steps = iter(range(10_000))
    sides: dict[str, Any] = {"api": lambda: api_round(api, ns)}
    for kind in kinds:
        label = "fault" if kind == "network-delay" else f"fault_{kind}"
        sides[label] = lambda k=kind: fault_round(
            backends["limited"], ns, k, next(steps), n, phases if k == "network-delay" else {}
        )
    sides["fault_unthrottled"] = lambda: fault_round(
        backends["free"], ns, "network-delay", next(steps), n, {}
    )
    samples = await alternate(sides, rounds, Samples(dict.fromkeys(sides, "s")))
    limited.close()
    free.close()
    client.AppsV1Api(api).delete_namespaced_deployment("bytebot-temporal-worker", ns)
    print(table(samples, ("fault", "api"), label=f"{n:>5} pods  "))
    r = samples.ratios("fault", "fault_unthrottled")
    print(
        f"{n:>5} pods  rate limit effect fault/fault_unthrottled median "
        f"{sorted(r)[len(r) // 2]:.2f}"
    )
    row = figures(f"blast-radius-{n}", samples, ("fault", "api"), {"pods": n})
    row["extra"] = {
        "phases_median_s": {k: round(sorted(v)[len(v) // 2], 4) for k, v in phases.items()},
        "rate_limit_ratio_median": round(sorted(r)[len(r) // 2], 3),
    }
    return row


async def bench(
    kube: KubeApiServer, stack: Any, sizes: list[int], kinds: list[str], rounds: int
) -> list[dict[str, Any]]:
    with kube.api_client() as api:
        return [await one_size(kube, stack, api, n, kinds, rounds) for n in sizes]


def one_stack(
    qps: int | None, sizes: list[int], kinds: list[str], rounds: int
) -> list[dict[str, Any]]:
    """Every size on a fresh API server and controller (at controller QPS `qps`)."""
    if qps is not None:  # read by chaos-controller-manager from its environment
        os.environ["QPS"], os.environ["BURST"] = str(qps), str(qps * 5 // 3)
    work = Path(tempfile.mkdtemp(prefix="bench-chaos-mesh-"))
    started = time.monotonic()
    with KubeApiServer(work / "kube") as kube, real_chaos_mesh(kube, work) as stack:
        print(
            f"stack up in {time.monotonic() - started:.1f}s "
            f"(controller {stack.controller.started_in_s:.1f}s, QPS {qps or 'default 30'})",
            file=sys.stderr,
        )
        return asyncio.run(bench(kube, stack, sizes, kinds, rounds))


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], rounds=5, quick_rounds=3)
    parser.add_argument("--sizes", default="1,10,100,1000", help="target pod counts")
    parser.add_argument("--kinds", default="network-delay", help=f"of {', '.join(FAULTS)}")
    parser.add_argument(
        "--controller-qps", default="", help="e.g. 30,300: the controller's client rate limits"
    )
    args = parser.parse_args()
    quiet_logs()
    sizes = [1, 10, 100] if args.quick else [int(s) for s in args.sizes.split(",")]
    kinds = list(dict.fromkeys(["network-delay", *args.kinds.split(",")]))
    rounds = rounds_of(args)
    settings = [int(q) for q in args.controller_qps.split(",") if q] or [None]
    by_qps = {q: one_stack(q, sizes, kinds, rounds) for q in settings}
    rows = by_qps[settings[0]]
    last = dict(rows[-1])
    last["name"] = "blast-radius"
    last["sizes"] = {"pods": sizes, "kinds": kinds, "rounds": rounds, "controller_qps": settings}
    last["extra"] = {
        f"qps_{q or 'default'}": {
            str(r["sizes"]["pods"]): {
                "sides": {k: v["median"] for k, v in r["sides"].items()},
                "ratio_median": r["ratio_median"],
                **r["extra"],
            }
            for r in qps_rows
        }
        for q, qps_rows in by_qps.items()
    }
    emit(last)


if __name__ == "__main__":
    main()
