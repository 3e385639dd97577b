"""Network faults (delay, loss, partition, bandwidth, DNS failure) as fault proxy rules.

Each replica's traffic to Temporal and to Kafka crosses its own proxy route (see `proxy`); a
fault is one rule file naming the target replicas and peers, with the fault's expiry in it. The
proxy applies it within ~150 ms and drops it at its expiry, even if nobody withdraws it.
Confirmation reads the proxy's status file: the rule is listed on every target route.

The other side of a fault becomes peers (`models.peers`): a `peer_pods` selector means the
peers whose pods it matches, `external_targets` the peers of those hosts, `all_traffic` every
peer. DNS faults (error and random alike): each pattern is matched (shell-style) against the
peers' cluster host names and symbolic names, and matching peers' new connections fail.
This module writes rule files and reads the status; it never opens a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection
from pathlib import Path
from typing import cast

from activities.faults.backend import FaultRejected
from activities.faults.local.common import LocalEnv, iso, poll_until
from activities.faults.local.ledger import FaultEntry
from activities.faults.local.replicas import ReplicaView
from faultproxy.control import (
    PeerName,
    ProxyStatus,
    RouteStats,
    Rule,
    RuleParams,
    read_status,
    remove_rule,
    write_rule,
)
from models.faults import (
    DnsFaultBase,
    FaultBase,
    NetworkBandwidth,
    NetworkDelay,
    NetworkFaultBase,
    NetworkLoss,
    NetworkPartition,
)
from models.peers import ALL_PEERS, peers_named_by, peers_selected_by

PEERS: tuple[PeerName, ...] = ALL_PEERS
#: A status older than this means the proxy is not running.
STALE_STATUS_S = 5.0
WITHDRAW_WAIT_S = 3.0


def peers_of(spec: FaultBase, routed: Collection[PeerName] | None = None) -> list[PeerName]:
    """The peers whose traffic the fault affects (`all_traffic`: those in ``routed``, the
    peers the proxy has routes for, when given)."""
    if isinstance(spec, DnsFaultBase):
        return spec.peers()
    net = cast(NetworkFaultBase, spec)
    if net.all_traffic:
        return [p for p in PEERS if routed is None or p in routed]
    chosen = set(net.peers)
    chosen.update(peers_selected_by(net.peer_pods) if net.peer_pods else [])
    chosen.update(p for host in net.external_targets for p in peers_named_by(host))
    return [p for p in PEERS if p in chosen]


def routed_peers(control_dir: Path) -> set[PeerName]:
    """The peers the fault proxy has at least one route for (empty before it reports)."""
    status = read_status(control_dir)
    return {cast(PeerName, r.peer) for r in status.routes.values()} if status else set()


def rule_for(
    spec: FaultBase,
    fault_id: str,
    replicas: list[str],
    expires_at: float,
    routed: Collection[PeerName] | None = None,
) -> Rule:
    """The proxy rule that realises a network fault."""
    direction = "both"
    if isinstance(spec, NetworkFaultBase) and not isinstance(spec, NetworkPartition):
        direction = spec.direction.value
    if isinstance(spec, NetworkDelay):
        kind, params = (
            "delay",
            RuleParams(
                latency_s=spec.latency.total_seconds(), jitter_s=spec.jitter.total_seconds()
            ),
        )
    elif isinstance(spec, NetworkLoss):
        kind, params = "loss", RuleParams(loss_pct=spec.loss_pct)
    elif isinstance(spec, NetworkBandwidth):
        kind, params = (
            "bandwidth",
            RuleParams(rate_bytes_s=spec.rate_kbps * 1000 / 8, burst_bytes=spec.buffer_bytes),
        )
    elif isinstance(spec, NetworkPartition):
        kind, params = "partition", RuleParams()
    elif isinstance(spec, DnsFaultBase):
        kind, params = "dns", RuleParams()
    else:
        raise FaultRejected(f"{getattr(spec, 'action', spec)} is not a network fault")
    return Rule.model_validate(
        {
            "fault_id": fault_id,
            "kind": kind,
            "replicas": replicas,
            "peers": peers_of(spec, routed),
            "direction": direction,
            "params": params,
            "expires_at": expires_at,
        }
    )


def _describe(rule: Rule) -> str:
    p = rule.params
    knobs = {
        "delay": f"{p.latency_s * 1000:.0f}ms +-{p.jitter_s * 1000:.0f}ms",
        "loss": f"{p.loss_pct:g}% of chunks stalled",
        "bandwidth": f"{p.rate_bytes_s * 8 / 1000:g}kbps burst {p.burst_bytes}B",
        "partition": "blackhole",
        "dns": "new connections fail",
    }[rule.kind]
    return f"{rule.kind} {knobs} ({rule.direction})"


class NetworkFaults:
    """The NetworkChaos and DNSChaos actions, through the fault proxy."""

    actions: tuple[str, ...] = (
        "network-delay",
        "network-loss",
        "network-partition",
        "network-bandwidth",
        "dns-error",
        "dns-random",
    )

    def __init__(self, env: LocalEnv) -> None:
        self.env = env

    def problems(self, spec: FaultBase, targets: list[ReplicaView]) -> list[str]:
        """The proxy must run and carry a route for every (target, peer)."""
        peers = peers_of(spec, routed_peers(self.env.proxy_control_dir))
        if not peers:
            return [f"no peer matches the DNS patterns; peers are {', '.join(PEERS)}"]
        status = read_status(self.env.proxy_control_dir)
        if status is None:
            return [f"the fault proxy never reported in {self.env.proxy_control_dir}"]
        if time.time() - status.updated_at > STALE_STATUS_S:
            return [f"the fault proxy stopped reporting at {iso(status.updated_at)}"]
        missing = [
            f"{t.name}/{p}" for t in targets for p in peers if f"{t.name}/{p}" not in status.routes
        ]
        return [f"no proxy route for {', '.join(missing)}"] if missing else []

    async def apply(self, spec: FaultBase, entry: FaultEntry) -> None:
        """Publish the rule, noting first how much traffic each route had had this done to."""
        routed = routed_peers(self.env.proxy_control_dir)
        rule = rule_for(
            spec, entry.fault_id, [t.name for t in entry.targets], entry.expires_at, routed
        )
        status = read_status(self.env.proxy_control_dir)
        if status is not None:
            entry.traffic_marks = {
                r: _effect(status.routes[r], rule.kind) for r in _routes(rule) if r in status.routes
            }
        path = write_rule(self.env.proxy_control_dir, rule)
        entry.rule_file = str(path)
        entry.evidence.append(
            f"proxy rule {_describe(rule)} on {', '.join(_routes(rule))} "
            f"until {iso(rule.expires_at)}"
        )

    async def check(self, spec: FaultBase, entry: FaultEntry) -> tuple[bool, list[str]]:
        """The proxy applies the rule on every target route, and it touched real traffic.

        A rule in place that no byte of the target's traffic met (no connection opened under a
        DNS fault, an idle route) tested nothing: it is not in effect until traffic meets it.
        """
        routed = routed_peers(self.env.proxy_control_dir)
        rule = rule_for(
            spec, entry.fault_id, [t.name for t in entry.targets], entry.expires_at, routed
        )
        status = read_status(self.env.proxy_control_dir)
        if status is None:
            return False, ["the fault proxy has not reported yet"]
        applied = [r for r in _routes(rule) if _applies(status, r, entry.fault_id)]
        missing = sorted(set(_routes(rule)) - set(applied))
        evidence = [_route_evidence(status, r) for r in applied]
        if missing:
            evidence.append(f"rule not applied yet on {', '.join(missing)}")
            return False, evidence
        touched = {
            r: _effect(status.routes[r], rule.kind) - entry.traffic_marks.get(r, 0.0)
            for r in applied
        }
        hit = {r: n for r, n in touched.items() if n > 0}
        if not hit and rule.kind == "dns":
            # Workers keep their connections, so a name lookup may not happen for a long time:
            # look one up from the target's side, as `nslookup` in the pod would, and see it fail.
            await _open_and_close([status.routes[r].listen_port for r in applied])
            evidence.append("probed a new connection through each target route")
        if not hit:
            evidence.append(f"the rule touched no traffic yet ({_EFFECT_WORDS[rule.kind]}: 0)")
            return False, evidence
        evidence.append(
            f"traffic touched since injection ({_EFFECT_WORDS[rule.kind]}): "
            + ", ".join(f"{r} {n:g}" for r, n in sorted(hit.items()))
        )
        return True, evidence

    async def undo(self, entry: FaultEntry) -> tuple[bool, list[str]]:
        """Withdraw the rule and wait until the proxy stops applying it."""
        removed = remove_rule(self.env.proxy_control_dir, entry.fault_id)
        since = time.time()

        def withdrawn() -> bool:
            status = read_status(self.env.proxy_control_dir)
            if status is None or time.time() - status.updated_at > STALE_STATUS_S:
                return True  # no proxy, no rule
            return status.updated_at > since and entry.fault_id not in status.live_rules

        gone = await poll_until(withdrawn, WITHDRAW_WAIT_S, self.env.beat, "proxy drops rule")
        verb = "withdrawn" if removed else "already gone"
        return gone, [
            f"proxy rule {verb}; "
            + ("the proxy no longer applies it" if gone else "the proxy still listed it")
        ]


#: The counter that shows each kind of rule met traffic.
_EFFECT_FIELD = {
    "delay": "chunks_delayed",
    "loss": "chunks_lost",
    "partition": "chunks_held",
    "bandwidth": "bytes_shaped",
    "dns": "refused_dns",
}
_EFFECT_WORDS = {
    "delay": "chunks delayed",
    "loss": "chunks lost",
    "partition": "chunks held back",
    "bandwidth": "bytes through the limit",
    "dns": "connections refused",
}


async def _open_and_close(ports: list[int]) -> None:
    """Open a connection to each local port and close it; refusals are what we look for."""
    for port in ports:
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(2):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


def _effect(stats: RouteStats, kind: str) -> float:
    """How much traffic of a route this kind of rule has met since the proxy started."""
    value = getattr(stats, _EFFECT_FIELD[kind])
    if kind == "loss":
        value += stats.chunks_held  # 100% loss holds chunks as a partition does
    return float(value)


def _routes(rule: Rule) -> list[str]:
    return [f"{replica}/{peer}" for replica in rule.replicas for peer in rule.peers]


def _applies(status: ProxyStatus, route: str, fault_id: str) -> bool:
    stats = status.routes.get(route)
    return stats is not None and fault_id in stats.active_rules


def _route_evidence(status: ProxyStatus, route: str) -> str:
    s = status.routes[route]
    return (
        f"{route}: applied; {s.connections_open} open connections, {s.bytes_to}B to / "
        f"{s.bytes_from}B from peer, delayed {s.chunks_delayed}, lost {s.chunks_lost}, "
        f"held {s.blackholed_s:.1f}s, throttled {s.throttled_s:.1f}s, dns-refused {s.refused_dns}"
    )
