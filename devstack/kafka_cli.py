"""The ``python -m devstack.kafka_cli`` command line: ``install`` and ``run`` (parsing only).

Owns argument parsing, signal handling and what ``run`` prints; everything it does is
`devstack.kafka`'s (the help text is that module's docstring).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from devstack import kafka, kafka_install


def _parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    """The ``python -m devstack.kafka_cli`` CLI."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.kafka_cli",
        description=kafka.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="resolve the jars and print the lib path")
    p_install.add_argument("--version", default=kafka_install.KAFKA_VERSION)
    p_run = sub.add_parser("run", help="run a broker until SIGINT/SIGTERM")
    p_run.add_argument("--dir", required=True, type=Path, help="data dir (kept across runs)")
    p_run.add_argument("--version", default=kafka_install.KAFKA_VERSION)
    p_run.add_argument("--direct-port", type=int)
    p_run.add_argument("--chaos-port", type=int)
    p_run.add_argument("--controller-port", type=int)
    p_run.add_argument(
        "--chaos-advertised",
        type=_parse_address,
        metavar="HOST:PORT",
        action="append",
        help="once: one CHAOS listener; repeated: listeners CHAOS0..CHAOSn-1, one per address",
    )
    p_run.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args(argv)

    if args.command == "install":
        print(kafka_install.install(args.version))
        return 0

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    broker = kafka.KafkaBroker(
        args.dir,
        version=args.version,
        direct_port=args.direct_port,
        chaos_port=args.chaos_port,
        controller_port=args.controller_port,
        chaos_advertised=(
            args.chaos_advertised[0]
            if args.chaos_advertised and len(args.chaos_advertised) == 1
            else args.chaos_advertised
        ),
        num_partitions=args.partitions,
    )
    with broker:
        print(f"KAFKA_BOOTSTRAP_DIRECT={broker.bootstrap_direct}")
        print(f"KAFKA_BOOTSTRAP_CHAOS={broker.bootstrap_chaos}")
        print(f"KAFKA_CHAOS_LISTENER=127.0.0.1:{broker.chaos_port}")
        if len(broker.chaos_listeners) > 1:
            for name, port, (host, adv_port) in broker.chaos_listeners:
                print(f"KAFKA_{name}_LISTENER=127.0.0.1:{port} ADVERTISED={host}:{adv_port}")
        print(f"KAFKA_LOG={broker.log_file}", flush=True)
        while not stopping.wait(1.0):
            if not broker.running:
                print(f"broker exited; log ends with:\n{broker.log_tail()}", file=sys.stderr)
                return 1
    return 0
