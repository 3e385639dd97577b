r"""``python -m standin up``: the whole local ByteBot until SIGTERM or SIGINT.

Creates the three topics (as the platform does; workers never create topics), then runs the
supervisor (N replicas of ``--worker-command``, the stand-in worker by default), the
``bytebot-consumers`` consumer and the load generator in one process. Parsing only.

    python -m standin up --state-dir /tmp/bytebot --replicas 3 \
        --temporal-addresses 127.0.0.1:7233 --kafka-bootstraps 127.0.0.1:9092
    python -m standin up --state-dir /tmp/bytebot --worker-command "node dist/worker.js" \
        --ready-url "http://127.0.0.1:{http_port}/health/ready" --no-load
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from standin import runtime
from standin.consumer import DEFAULT_GROUP, ConsumerSettings, EventConsumer, ensure_topics
from standin.contract import NAMESPACE, TASK_QUEUE
from standin.dependencies import serve_dependencies
from standin.deployment.supervisor import (
    DEFAULT_COMMAND,
    DEFAULT_READY_URL,
    DeploymentSettings,
    Supervisor,
)
from standin.events import AUDIT_TOPIC, GOAL_TOPIC, STEP_TOPIC
from standin.loadgen import LoadGenerator, LoadSettings
from standin.logs import configure_logging
from standin.models import WORKER_MODES, FaultyMode

log = structlog.get_logger("standin")

#: The real Deployment's terminationGracePeriodSeconds and the real restart back-off cap.
POD_GRACE_S = 60.0


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
    add = up.add_argument
    add("--state-dir", type=Path, required=True, help="state.json, hold/, logs/ live here")
    add("--replicas", type=int, default=3)
    add(
        "--worker-command",
        default=DEFAULT_COMMAND,
        help="argv with {replica} {temporal} {kafka} {http_port} {metrics_port} {python} ...",
    )
    probe = up.add_mutually_exclusive_group()
    probe.add_argument("--ready-url", default=DEFAULT_READY_URL, help="HTTP readiness probe")
    probe.add_argument("--ready-exec", help="exec readiness probe (argv, placeholders allowed)")
    probe.add_argument("--no-ready-probe", action="store_true", help="running counts as ready")
    add("--env", action="append", default=[], metavar="K=V", help="extra worker environment")
    add(
        "--temporal-addresses",
        type=_csv,
        metavar="A[,B,...]",
        default=_csv(env("TEMPORAL_ADDRESS", "127.0.0.1:7233")),
        help="the replicas' Temporal: one for all, or one per replica",
    )
    add(
        "--kafka-bootstraps",
        type=_csv,
        metavar="X[,Y,...]",
        default=_csv(env("KAFKA_BROKERS", "127.0.0.1:9092")),
        help="the replicas' Kafka: one for all, or one per replica",
    )
    add(
        "--orchestrator-urls",
        type=_csv,
        metavar="U[,V,...]",
        help="the replicas' ORCHESTRATOR_URL: one for all, or one per replica",
    )
    add(
        "--llm-proxy-urls",
        type=_csv,
        metavar="U[,V,...]",
        help="the replicas' LLM_PROXY_URL: one for all, or one per replica",
    )
    add(
        "--serve-dependencies",
        metavar="ORCH_PORT,LLM_PORT",
        help="serve the stand-in orchestrator and LLM proxy on these loopback ports",
    )
    add("--temporal-address", help="the load generator's (direct) Temporal")
    add("--kafka-bootstrap", help="the consumer's and topic creation's (direct) Kafka")
    add("--namespace", default=env("TEMPORAL_NAMESPACE", NAMESPACE))
    add("--task-queue", default=TASK_QUEUE)
    add("--goal-topic", default=GOAL_TOPIC)
    add("--step-topic", default=STEP_TOPIC)
    add("--audit-topic", default=AUDIT_TOPIC)
    add("--no-create-topics", action="store_true")
    add(
        "--time-scale",
        type=float,
        default=runtime.from_env().time_scale,
        help=f"every real duration times this (default {runtime.DEFAULT_TIME_SCALE})",
    )
    add("--termination-grace-s", type=float, help=f"default {POD_GRACE_S:g} s x time scale")
    add("--memory-limit-mb", type=int, default=512, help="0: no limit")
    add("--cpu-limit-cores", type=float)
    add("--no-cgroups", action="store_true", help="run replicas without cgroups")
    add("--instance", help="cgroup directory name (default: the pid)")
    add("--backoff-initial-s", type=float, default=0.5)
    add("--backoff-max-s", type=float, default=8.0)
    add("--consumer-group", default=DEFAULT_GROUP)
    add("--consume-delay-ms", type=float, default=10.0)
    add("--no-consumer", action="store_true")
    add("--rate", type=float, default=2.0, help="goal runs started per second")
    add("--max-in-flight", type=int, default=20)
    add("--steps", type=int, default=3)
    add("--step-ms", type=int, default=3000, help="unscaled work per step")
    add("--no-load", action="store_true", help="run no load generator")
    add(
        "--faulty",
        action="append",
        default=[],
        type=FaultyMode,
        choices=list(FaultyMode),
        metavar="MODE",
        help=f"a deliberate defect (repeatable): {', '.join(FaultyMode)}",
    )
    add("--log-format", choices=["console", "json"], default="console")
    return parser


def deployment_settings(args: argparse.Namespace) -> DeploymentSettings:
    """The supervisor's settings; the stand-in's knobs travel in the workers' environment."""
    faulty = set(args.faulty)
    worker_env = {
        runtime.TIME_SCALE_ENV: str(args.time_scale),
        runtime.FAULTY_ENV: ",".join(sorted(m.value for m in faulty & WORKER_MODES)),
        "BYTEBOT_GOAL_TOPIC": args.goal_topic,
        "BYTEBOT_STEP_TOPIC": args.step_topic,
        "BYTEBOT_AUDIT_TOPIC": args.audit_topic,
        "LOG_FORMAT": args.log_format,
        **dict(kv.split("=", 1) for kv in args.env),
    }
    grace = args.termination_grace_s or POD_GRACE_S * args.time_scale
    return DeploymentSettings(
        state_dir=args.state_dir,
        replicas=args.replicas,
        worker_command=args.worker_command,
        env=worker_env,
        temporal_addresses=args.temporal_addresses,
        kafka_bootstraps=args.kafka_bootstraps,
        replica_env={
            name: urls
            for name, urls in (
                ("ORCHESTRATOR_URL", args.orchestrator_urls),
                ("LLM_PROXY_URL", args.llm_proxy_urls),
            )
            if urls
        },
        namespace=args.namespace,
        task_queue=args.task_queue,
        ready_url=None if args.ready_exec or args.no_ready_probe else args.ready_url,
        ready_exec=args.ready_exec,
        memory_limit_mb=args.memory_limit_mb,
        cpu_limit_cores=args.cpu_limit_cores,
        use_cgroups=not args.no_cgroups,
        instance=args.instance or str(os.getpid()),
        restart=FaultyMode.NO_RESTART not in faulty,
        backoff_initial_s=args.backoff_initial_s,
        backoff_max_s=args.backoff_max_s,
        termination_grace_s=grace,
        faulty=sorted(m.value for m in faulty),
    )


async def up(args: argparse.Namespace) -> int:
    """Run every part until SIGTERM/SIGINT; 1 if a part failed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    kafka = args.kafka_bootstrap or args.kafka_bootstraps[0]
    if not args.no_create_topics:
        await ensure_topics(kafka, (args.goal_topic, args.step_topic, args.audit_topic), 3)
    scale = args.time_scale
    parts: dict[str, Coroutine[Any, Any, None]] = {
        "supervisor": Supervisor(deployment_settings(args)).run(stop)
    }
    if args.serve_dependencies:
        orchestrator, llm = (int(p) for p in args.serve_dependencies.split(","))
        ports = {"orchestrator": orchestrator, "llm_proxy": llm}
        parts["dependencies"] = serve_dependencies(ports, stop)
    if not args.no_consumer:
        stop_after = 60 * scale if FaultyMode.STOP_COMMITTING in args.faulty else None
        consumer = EventConsumer(
            ConsumerSettings(
                bootstrap=kafka,
                group=args.consumer_group,
                topics=(args.goal_topic, args.step_topic),
                delay_ms=args.consume_delay_ms,
                stop_committing_after_s=stop_after,
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
                step_ms=args.step_ms,
                approve_after_s=20 * scale,
                pause_for_s=20 * scale,
                stats_file=args.state_dir / "load.json",
            )
        )
        parts["load"] = load.run(stop)
    tasks = {asyncio.create_task(coro, name=name): name for name, coro in parts.items()}
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop.set()  # one part ended (failed, or stop was set): end the others
    await asyncio.wait(tasks)
    failed = [name for t, name in tasks.items() if not t.cancelled() and t.exception()]
    for t, name in tasks.items():
        if name in failed:
            log.error("part_failed", part=name, error=repr(t.exception()))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """The ``python -m standin`` entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    for flag, values in (
        ("--temporal-addresses", args.temporal_addresses),
        ("--kafka-bootstraps", args.kafka_bootstraps),
    ):
        if len(values) not in (1, args.replicas):
            parser.error(f"{flag}: give 1 or {args.replicas} values")
    for flag, urls in (
        ("--orchestrator-urls", args.orchestrator_urls),
        ("--llm-proxy-urls", args.llm_proxy_urls),
    ):
        if urls and len(urls) not in (1, args.replicas):
            parser.error(f"{flag}: give 1 or {args.replicas} values")
    if args.serve_dependencies and len(args.serve_dependencies.split(",")) != 2:
        parser.error("--serve-dependencies: give ORCH_PORT,LLM_PORT")
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    configure_logging(args.log_format, component="standin-up")
    return asyncio.run(up(args))


if __name__ == "__main__":
    sys.exit(main())
