"""The fault proxy's files: its routes, the fault rules it obeys and the status it reports.

This module owns the layout of a proxy control directory and the models of what is in it:

    <control>/proxy.json          the proxy's config: its routes (written by whoever starts it)
    <control>/rules/<fault>.json  one fault rule; the proxy re-reads the directory every ~150 ms
    <control>/status.json         what the proxy applies now, per route, with counters

A rule carries its own expiry (`Rule.expires_at`): the proxy ignores a rule whose expiry has
passed, so a fault ends on time even if whoever wrote the rule is gone (the dead-man switch).
Files are replaced atomically (write, then rename), so a reader never sees half a file. This
module does file I/O only; it never opens a socket or starts a process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RuleKind = Literal["delay", "loss", "partition", "bandwidth", "dns"]
PeerName = Literal["temporal", "kafka", "orchestrator", "llm-proxy"]
#: "to": replica -> peer (requests); "from": peer -> replica (answers); "both".
RuleDirection = Literal["to", "from", "both"]
StreamDirection = Literal["to", "from"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Route(_Strict):
    """One proxied path: a replica's connections to one peer."""

    name: str = Field(description="'<replica>/<peer>', e.g. 'replica-0/kafka'.")
    replica: str
    peer: PeerName
    listen_port: int = Field(gt=0, lt=65536, description="Where the proxy listens (127.0.0.1).")
    upstream: str = Field(description="host:port the proxy forwards to.")

    @property
    def upstream_address(self) -> tuple[str, int]:
        """The upstream as (host, port)."""
        host, _, port = self.upstream.rpartition(":")
        return host, int(port)


class ProxyConfig(_Strict):
    """Everything the proxy process needs."""

    control_dir: Path
    routes: list[Route] = Field(min_length=1)
    reload_interval_s: float = Field(default=0.15, gt=0, description="How often rules are re-read.")
    status_interval_s: float = Field(default=0.2, gt=0, description="How often status is written.")


class RuleParams(_Strict):
    """A rule's knobs; each kind reads its own."""

    latency_s: float = Field(default=0.0, ge=0, description="delay: added to each chunk.")
    jitter_s: float = Field(default=0.0, ge=0, description="delay: +- uniform variation.")
    loss_pct: float = Field(default=0.0, ge=0, le=100, description="loss: share of chunks lost.")
    rate_bytes_s: float = Field(default=0.0, ge=0, description="bandwidth: token bucket rate.")
    burst_bytes: int = Field(default=0, ge=0, description="bandwidth: token bucket size.")


class Rule(_Strict):
    """One fault as the proxy applies it."""

    fault_id: str
    kind: RuleKind
    replicas: list[str] = Field(min_length=1)
    peers: list[PeerName] = Field(min_length=1)
    direction: RuleDirection = "both"
    params: RuleParams = Field(default_factory=RuleParams)
    expires_at: float = Field(description="Epoch seconds; ignored from then on.")

    def live(self, now: float | None = None) -> bool:
        """Whether the rule is still in force."""
        return (time.time() if now is None else now) < self.expires_at

    def covers(self, route: Route) -> bool:
        """Whether the rule applies to this route."""
        return route.replica in self.replicas and route.peer in self.peers

    def shapes(self, direction: StreamDirection) -> bool:
        """Whether the rule applies to traffic flowing in ``direction``."""
        return self.direction in ("both", direction)


class RouteStats(BaseModel):
    """Counters of one route since the proxy started: the evidence a fault took effect."""

    model_config = ConfigDict(extra="ignore")

    name: str
    replica: str
    peer: str
    listen_port: int
    upstream: str
    connections_total: int = 0
    connections_open: int = 0
    refused_dns: int = Field(default=0, description="New connections closed at once by a dns rule.")
    bytes_to: int = Field(default=0, description="Bytes forwarded replica -> peer.")
    bytes_from: int = Field(default=0, description="Bytes forwarded peer -> replica.")
    chunks_delayed: int = 0
    chunks_held: int = Field(default=0, description="Chunks a partition held back.")
    chunks_lost: int = Field(default=0, description="Chunks stalled as a retransmission would.")
    blackholed_s: float = Field(
        default=0.0, description="Time forwarding was stopped by a partition."
    )
    throttled_s: float = Field(default=0.0, description="Time spent waiting on a bandwidth bucket.")
    bytes_shaped: int = Field(default=0, description="Bytes that crossed a bandwidth rule.")
    active_rules: list[str] = Field(default_factory=list, description="Live rules' fault ids.")


class ProxyStatus(BaseModel):
    """The whole status file."""

    model_config = ConfigDict(extra="ignore")

    pid: int
    updated_at: float
    live_rules: list[str] = Field(default_factory=list)
    expired_rules: list[str] = Field(default_factory=list, description="Present but ignored.")
    routes: dict[str, RouteStats] = Field(default_factory=dict)


def rules_dir(control_dir: Path) -> Path:
    """Where rule files go."""
    return control_dir / "rules"


def rule_file(control_dir: Path, fault_id: str) -> Path:
    """The rule file of one fault."""
    return rules_dir(control_dir) / f"{fault_id}.json"


def status_file(control_dir: Path) -> Path:
    """Where the proxy reports."""
    return control_dir / "status.json"


def config_file(control_dir: Path) -> Path:
    """Where the proxy's config is kept."""
    return control_dir / "proxy.json"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_rule(control_dir: Path, rule: Rule) -> Path:
    """Publish a rule for the proxy; returns its file."""
    path = rule_file(control_dir, rule.fault_id)
    write_atomic(path, rule.model_dump_json(indent=2))
    return path


def remove_rule(control_dir: Path, fault_id: str) -> bool:
    """Withdraw a rule; True if there was one."""
    try:
        rule_file(control_dir, fault_id).unlink()
    except FileNotFoundError:
        return False
    return True


def read_rules(control_dir: Path) -> tuple[list[Rule], list[str]]:
    """Every readable rule file's rule, and the names of unreadable ones (skipped)."""
    rules: list[Rule] = []
    bad: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for path in sorted(rules_dir(control_dir).glob("*.json")):
            try:
                rules.append(Rule.model_validate_json(path.read_text()))
            except FileNotFoundError:
                continue  # withdrawn while we listed the directory
            except ValueError:
                bad.append(path.name)
    return rules, bad


def read_status(control_dir: Path) -> ProxyStatus | None:
    """The proxy's last status, or None if it never wrote one."""
    try:
        return ProxyStatus.model_validate_json(status_file(control_dir).read_text())
    except FileNotFoundError:
        return None
