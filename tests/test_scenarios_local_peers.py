"""On the local backend, the ported network faults become proxy rules on the right routes.

Pure: the rule each fault of `network-chaos` and `temporal-resilience-test` would publish.
"""

from __future__ import annotations

from activities.faults.local.network import peers_of, rule_for
from activities.scenario_files import load_builtin


def test_each_ported_network_fault_aims_at_the_peers_its_target_means() -> None:
    routed = {"temporal", "kafka"}  # the stand-in's routes today
    faults = {s.name: s.faults[0] for s in load_builtin("network-chaos").steps}
    assert peers_of(faults["temporal-worker-network-delay"], routed) == ["temporal"]
    assert peers_of(faults["temporal-worker-packet-loss"], routed) == ["temporal"]
    assert peers_of(faults["clustermesh-partition"], routed) == ["temporal"]
    assert peers_of(faults["temporal-worker-bandwidth-limit"], routed) == ["temporal", "kafka"]
    assert peers_of(faults["temporal-dns-chaos"], routed) == ["temporal"]
    assert peers_of(faults["kafka-dns-chaos"], routed) == ["kafka"]
    every = {"temporal", "kafka", "orchestrator", "llm-proxy"}
    assert peers_of(faults["temporal-worker-bandwidth-limit"], every) == sorted(
        every, key=["temporal", "kafka", "orchestrator", "llm-proxy"].index
    )
    rule = rule_for(faults["temporal-worker-network-delay"], "f", ["replica-0"], 1e10, routed)
    assert (rule.kind, rule.direction, rule.params.latency_s, rule.params.jitter_s) == (
        "delay",
        "both",
        0.2,
        0.05,
    )
    dns = rule_for(faults["kafka-dns-chaos"], "g", ["replica-0"], 1e10, routed)
    assert (dns.kind, dns.peers) == ("dns", ["kafka"])
