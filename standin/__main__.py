r"""``python -m standin up``: the whole local ByteBot until SIGTERM or SIGINT.

Runs the supervisor (N worker replicas), the ``bytebot-consumers`` consumer and the load
generator in one process. Parsing and flag checks only; each part lives in its own module.

    python -m standin up --state-dir /tmp/bytebot --replicas 3 \
        --temporal-addresses 127.0.0.1:7233 --kafka-bootstraps 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import structlog

from standin.consumer import DEFAULT_GROUP, ConsumerSettings, EventConsumer
from standin.events import GOAL_TOPIC, STEP_TOPIC
from standin.loadgen import LoadGenerator, LoadSettings
from standin.logs import configure_logging
from standin.models import DEFAULT_TASK_QUEUE, FaultyMode
from standin.supervisor import Supervisor, SupervisorSettings

log = structlog.get_logger("standin")


def _csv(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected one or more comma-separated values")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The ``up`` command's flags."""
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m standin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run supervisor, consumer and load generator")
    up.add_argument(
        "--state-dir", type=Path, required=True, help="state.json, hold/, ready/, logs/ live here"
    )
    up.add_argument("--replicas", type=int, default=3)
    up.add_argument(
        "--temporal-addresses",
        type=_csv,
        metavar="A[,B,...]",
        default=_csv(env("TEMPORAL_ADDRESS", "127.0.0.1:7233")),
        help="the replicas' Temporal: one for all, or one per replica",
    )
    up.add_argument(
        "--kafka-bootstraps",
        type=_csv,
        metavar="X[,Y,...]",
        default=_csv(env("KAFKA_BOOTSTRAP", "127.0.0.1:9092")),
        help="the replicas' Kafka: one for all, or one per replica",
    )
    up.add_argument(
        "--temporal-address",
        help="the load generator's (direct) Temporal; default: the first of --temporal-addresses",
    )
    up.add_argument(
        "--kafka-bootstrap",
        help="the consumer's (direct) Kafka; default: the first of --kafka-bootstraps",
    )
    up.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    up.add_argument("--task-queue", default=DEFAULT_TASK_QUEUE)
    up.add_argument("--goal-topic", default=GOAL_TOPIC)
    up.add_argument("--step-topic", default=STEP_TOPIC)
    up.add_argument("--memory-limit-mb", type=int, default=512, help="0: no limit")
    up.add_argument("--cpu-limit-cores", type=float)
    up.add_argument("--no-cgroups", action="store_true", help="run replicas without cgroups")
    up.add_argument("--instance", help="cgroup directory name (default: the pid)")
    up.add_argument("--restart-backoff-s", type=float, default=0.5)
    up.add_argument("--stop-timeout-s", type=float, default=5.0)
    up.add_argument("--graceful-shutdown-s", type=float, default=2.0)
    up.add_argument("--consumer-group", default=DEFAULT_GROUP)
    up.add_argument("--consume-delay-ms", type=float, default=10.0)
    up.add_argument("--no-consumer", action="store_true")
    up.add_argument("--rate", type=float, default=2.0, help="goal runs started per second")
    up.add_argument("--max-in-flight", type=int, default=20)
    up.add_argument("--steps", type=int, default=3)
    up.add_argument("--step-seconds", type=float, default=0.5)
    up.add_argument("--canary-every", type=int, default=10)
    up.add_argument("--no-load", action="store_true", help="run no load generator")
    up.add_argument(
        "--faulty",
        action="append",
        default=[],
        type=FaultyMode,
        choices=list(FaultyMode),
        metavar="MODE",
        help=f"switch on a deliberate defect (repeatable): {', '.join(FaultyMode)}",
    )
    up.add_argument("--log-format", choices=["console", "json"], default="console")
    return parser


async def up(args: argparse.Namespace) -> int:
    """Run every part until SIGTERM/SIGINT; 1 if a part failed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(
        SupervisorSettings(
            state_dir=args.state_dir,
            replicas=args.replicas,
            temporal_addresses=args.temporal_addresses,
            kafka_bootstraps=args.kafka_bootstraps,
            namespace=args.namespace,
            task_queue=args.task_queue,
            goal_topic=args.goal_topic,
            step_topic=args.step_topic,
            memory_limit_mb=args.memory_limit_mb,
            cpu_limit_cores=args.cpu_limit_cores,
            use_cgroups=not args.no_cgroups,
            instance=args.instance or str(os.getpid()),
            faulty=frozenset(args.faulty),
            restart_backoff_s=args.restart_backoff_s,
            stop_timeout_s=args.stop_timeout_s,
            graceful_shutdown_s=args.graceful_shutdown_s,
            log_format=args.log_format,
        )
    )
    parts = {"supervisor": supervisor.run(stop)}
    if not args.no_consumer:
        consumer = EventConsumer(
            ConsumerSettings(
                bootstrap=args.kafka_bootstrap or args.kafka_bootstraps[0],
                group=args.consumer_group,
                topics=(args.goal_topic, args.step_topic),
                delay_ms=args.consume_delay_ms,
            )
        )
        parts["consumer"] = consumer.run(stop)
    if not args.no_load:
        load = LoadGenerator(
            LoadSettings(
                temporal_address=args.temporal_address or args.temporal_addresses[0],
                namespace=args.namespace,
                task_queue=args.task_queue,
                rate=args.rate,
                max_in_flight=args.max_in_flight,
                steps=args.steps,
                step_seconds=args.step_seconds,
                canary_every=args.canary_every,
                stats_file=args.state_dir / "load.json",
            )
        )
        parts["load"] = load.run(stop)
    tasks = {asyncio.create_task(coro, name=name): name for name, coro in parts.items()}
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop.set()  # one part ended (failed, or stop was set): end the others
    await asyncio.wait(tasks)
    failed = [tasks[t] for t in tasks if not t.cancelled() and t.exception() is not None]
    for t in tasks:
        if tasks[t] in failed:
            log.error("part_failed", part=tasks[t], error=repr(t.exception()))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """The ``python -m standin`` entry point."""
    args = build_parser().parse_args(argv)
    if args.replicas < 1:
        build_parser().error("--replicas must be at least 1")
    for flag, values in (
        ("--temporal-addresses", args.temporal_addresses),
        ("--kafka-bootstraps", args.kafka_bootstraps),
    ):
        if len(values) not in (1, args.replicas):
            build_parser().error(f"{flag}: give 1 or {args.replicas} values")
    configure_logging(args.log_format, component="standin-up")
    return asyncio.run(up(args))


if __name__ == "__main__":
    sys.exit(main())
