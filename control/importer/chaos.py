"""One Chaos Mesh chaos spec (PodChaos, NetworkChaos, StressChaos, DNSChaos) as a fault.

The inverse of `activities.faults.chaos_mesh.render.fault_spec`: every field of the four kinds
that this tool can express is carried over; a field it cannot express is `refused` (the
caller may skip the object instead); a field Chaos Mesh 2.6 does not have is `dropped`, with
the 1.x `scheduler` named as such; a missing `duration` becomes the default one, with a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from control.importer.lines import Located
from models.durations import format_duration
from models.imports import ImportIssue, IssueKind

CHAOS_KINDS = ("PodChaos", "NetworkChaos", "StressChaos", "DNSChaos")
_COMMON = {"selector", "mode", "value", "duration", "action"}
KNOWN_FIELDS = {
    "PodChaos": _COMMON | {"containerNames", "gracePeriod", "remoteCluster"},
    "NetworkChaos": _COMMON
    | {"delay", "loss", "bandwidth", "direction", "target", "externalTargets"}
    | {"corrupt", "duplicate", "device", "targetDevice", "remoteCluster"},
    "StressChaos": (_COMMON - {"action"})
    | {"stressors", "stressngStressors", "containerNames", "remoteCluster"},
    "DNSChaos": _COMMON | {"patterns", "containerNames", "remoteCluster"},
}
#: Fields Chaos Mesh 2.6 has that this tool cannot express: the object is refused or skipped.
CANNOT_CARRY = {"corrupt", "duplicate", "device", "targetDevice", "remoteCluster"}
SELECTOR_FIELDS = {"namespaces", "labelSelectors"}
_RATE = re.compile(r"^(\d+)(bps|kbps|mbps|gbps)$")
_SIZE = re.compile(r"^(\d+)(KB|MB|GB|Ki|Mi|Gi|KiB|MiB|GiB)?$")
_SIZE_MB = {"KB": 1 / 1024, "Ki": 1 / 1024, "KiB": 1 / 1024, "MB": 1, "Mi": 1, "MiB": 1}


@dataclass
class Context:
    """Where a spec is, and the issues found so far."""

    file: str
    where: str
    namespace: str
    default_duration: timedelta
    issues: list[ImportIssue] = field(default_factory=list)

    def add(self, kind: IssueKind, line: int, path: str, message: str) -> None:
        """Record an issue about ``path`` of this object."""
        self.issues.append(
            ImportIssue(
                file=self.file,
                line=line,
                where=f"{self.where}: {path}",
                kind=kind,
                message=message,
            )
        )

    def cannot(self, line: int, path: str, message: str) -> None:
        """Something this tool cannot express."""
        self.add(IssueKind.REFUSED, line, path, message)


def _located(value: Any) -> Located:
    return value if isinstance(value, Located) else Located()


def target_of(spec: Located, ctx: Context, path: str) -> dict[str, Any]:
    """A `PodTarget` from a `selector` with `mode` and `value` beside it."""
    selector = _located(spec.get("selector"))
    for key in sorted(set(selector) - SELECTOR_FIELDS):
        ctx.cannot(
            selector.line_of(key),
            f"{path}selector.{key}",
            "only namespaces and labelSelectors can be carried over",
        )
    namespaces = selector.get("namespaces") or [ctx.namespace]
    if len(namespaces) != 1:
        ctx.cannot(
            selector.line_of("namespaces"),
            f"{path}selector.namespaces",
            f"one namespace per selector, got {namespaces}",
        )
    out: dict[str, Any] = {
        "namespace": str(namespaces[0]),
        "labels": {str(k): str(v) for k, v in dict(selector.get("labelSelectors") or {}).items()},
        "mode": spec.get("mode", "one"),
    }
    if spec.get("value") not in (None, ""):
        try:
            out["value"] = int(str(spec["value"]))
        except ValueError:
            ctx.cannot(spec.line_of("value"), f"{path}value", f"not a number: {spec['value']!r}")
    return out


def _duration(spec: Located, ctx: Context, deadline: str | None) -> str:
    if spec.get("duration"):
        return str(spec["duration"])
    if deadline:
        return deadline
    ctx.add(
        IssueKind.NOTE,
        spec.line,
        "spec.duration",
        f"no duration (Chaos Mesh would hold it until deleted): bounded to "
        f"{format_duration(ctx.default_duration)} (--default-duration)",
    )
    return format_duration(ctx.default_duration)


def _check_fields(kind: str, spec: Located, ctx: Context) -> None:
    for key in spec:
        line = spec.line_of(key)
        if key == "scheduler":
            ctx.add(
                IssueKind.DROPPED,
                line,
                "spec.scheduler",
                "a Chaos Mesh 1.x field that "
                "2.x ignores (the object runs once); for a recurring run use a Schedule",
            )
        elif key not in KNOWN_FIELDS[kind]:
            ctx.add(
                IssueKind.DROPPED,
                line,
                f"spec.{key}",
                f"not a field of {kind} in Chaos Mesh 2.6 (it would refuse or drop it)",
            )
        elif key in CANNOT_CARRY:
            ctx.cannot(line, f"spec.{key}", f"{kind} {key} cannot be carried over")


def _only(block: Located, allowed: set[str], ctx: Context, path: str) -> None:
    for key in sorted(set(block) - allowed):
        ctx.cannot(block.line_of(key), f"{path}.{key}", "cannot be carried over")


def _rate_kbps(rate: str, ctx: Context, line: int) -> int:
    match = _RATE.match(rate.strip().lower())
    factor = {"bps": 0.001, "kbps": 1, "mbps": 1000, "gbps": 1_000_000}
    kbps = int(match.group(1)) * factor[match.group(2)] if match else 0
    if kbps < 1 or kbps != int(kbps):
        ctx.cannot(line, "spec.bandwidth.rate", f"{rate!r}: give a whole number of kbps")
        return 1
    return int(kbps)


def _size_mb(size: str, ctx: Context, line: int) -> int:
    match = _SIZE.match(str(size).strip())
    if not match or match.group(2) is None:
        ctx.cannot(line, "spec.stressors.memory.size", f"{size!r}: give it in KB, MB or GB")
        return 1
    unit = match.group(2)
    mb = int(match.group(1)) * _SIZE_MB.get(unit, 1024)
    return max(1, round(mb))


def _network(spec: Located, ctx: Context, out: dict[str, Any]) -> None:
    action = spec.get("action")
    if action not in ("delay", "loss", "partition", "bandwidth"):
        ctx.cannot(spec.line_of("action"), "spec.action", f"NetworkChaos {action!r}")
        return
    out["action"] = f"network-{action}"
    out["direction"] = spec.get("direction", "to")
    if isinstance(spec.get("target"), dict):
        target = _located(spec["target"])
        out["peer_pods"] = target_of(target, ctx, "spec.target.")
    out["external_targets"] = [str(h) for h in spec.get("externalTargets") or []]
    out["all_traffic"] = "peer_pods" not in out and not out["external_targets"]
    if action == "delay":
        delay = _located(spec.get("delay"))
        _only(delay, {"latency", "jitter", "correlation"}, ctx, "spec.delay")
        out["latency"] = delay.get("latency", "0s")
        if delay.get("jitter"):
            out["jitter"] = delay["jitter"]
        if delay.get("correlation") not in (None, ""):
            out["correlation_pct"] = int(float(delay["correlation"]))
    elif action == "loss":
        loss = _located(spec.get("loss"))
        _only(loss, {"loss", "correlation"}, ctx, "spec.loss")
        out["loss_pct"] = int(float(loss.get("loss", 0)))
        if loss.get("correlation") not in (None, ""):
            out["correlation_pct"] = int(float(loss["correlation"]))
    elif action == "bandwidth":
        bw = _located(spec.get("bandwidth"))
        _only(bw, {"rate", "limit", "buffer"}, ctx, "spec.bandwidth")
        out["rate_kbps"] = _rate_kbps(str(bw.get("rate", "")), ctx, bw.line_of("rate"))
        out["limit_bytes"], out["buffer_bytes"] = bw.get("limit"), bw.get("buffer")


def _stress(spec: Located, ctx: Context, out: dict[str, Any]) -> None:
    stressors = _located(spec.get("stressors"))
    _only(stressors, {"cpu", "memory"}, ctx, "spec.stressors")
    if spec.get("stressngStressors"):
        ctx.cannot(
            spec.line_of("stressngStressors"),
            "spec.stressngStressors",
            "raw stress-ng options cannot be carried over",
        )
    cpu, memory = stressors.get("cpu"), stressors.get("memory")
    if isinstance(cpu, Located):
        _only(cpu, {"workers", "load"}, ctx, "spec.stressors.cpu")
        out["cpu"] = {"workers": cpu.get("workers", 1), "load_pct": cpu.get("load", 100)}
    if isinstance(memory, Located):
        _only(memory, {"workers", "size", "oomScoreAdj"}, ctx, "spec.stressors.memory")
        if memory.get("oomScoreAdj", 0) != 0:
            ctx.cannot(
                memory.line_of("oomScoreAdj"),
                "spec.stressors.memory.oomScoreAdj",
                "only the default 0 can be carried over",
            )
        size = _size_mb(str(memory.get("size", "")), ctx, memory.line_of("size"))
        out["memory"] = {"workers": memory.get("workers", 1), "size_mb": size}
    out["action"] = {(True, False): "cpu-stress", (False, True): "memory-stress"}.get(
        ("cpu" in out, "memory" in out), "combined-stress"
    )
    if "cpu" not in out and "memory" not in out:
        ctx.cannot(spec.line_of("stressors"), "spec.stressors", "no cpu or memory stressor")


def fault_of(
    kind: str, spec: Located, ctx: Context, name: str | None, deadline: str | None = None
) -> dict[str, Any]:
    """The fault (as scenario data) of one chaos spec; problems go to ``ctx``."""
    _check_fields(kind, spec, ctx)
    out: dict[str, Any] = {"target": target_of(spec, ctx, "spec.")}
    if name:
        out["name"] = name
    if kind == "PodChaos":
        out["action"] = spec.get("action")
        if out["action"] not in ("pod-kill", "pod-failure", "container-kill"):
            ctx.cannot(spec.line_of("action"), "spec.action", f"PodChaos {out['action']!r}")
        if spec.get("gracePeriod"):
            out["grace_period_s"] = spec["gracePeriod"]
        if out["action"] == "container-kill":
            out["container_names"] = list(spec.get("containerNames") or [])
    elif kind == "NetworkChaos":
        _network(spec, ctx, out)
    elif kind == "DNSChaos":
        out["action"] = "dns-random" if spec.get("action") == "random" else "dns-error"
        out["patterns"] = [str(p) for p in spec.get("patterns") or []]
    else:
        _stress(spec, ctx, out)
    if kind != "PodChaos" and spec.get("containerNames"):
        ctx.cannot(
            spec.line_of("containerNames"),
            "spec.containerNames",
            f"{kind} on chosen containers cannot be carried over",
        )
    out["duration"] = _duration(spec, ctx, deadline)
    return out
