r"""``python -m standin.deployment run``: the local Deployment alone, for any one command.

What the local stack runs its infrastructure processes under (the Temporal dev server, the
Kafka broker), so they are "pods" as the workers are: restarted when killed, held down by a
hold file until it expires, in cgroups a stressor can join, published in ``state.json``.
Parsing only; the supervisor does the rest.

    python -m standin.deployment run --state-dir /tmp/temporal --name-prefix temporal-frontend \
        --ready-tcp 127.0.0.1:7233 --memory-limit-mb 0 -- temporal server start-dev --port 7233
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
from pathlib import Path

from standin.deployment.settings import DeploymentSettings
from standin.deployment.supervisor import Supervisor
from standin.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    """The ``run`` command's flags; the command itself follows ``--``."""
    parser = argparse.ArgumentParser(
        prog="python -m standin.deployment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="supervise one command until SIGTERM/SIGINT")
    add = run.add_argument
    add("--state-dir", type=Path, required=True, help="state.json, hold/, logs/ live here")
    add("--name-prefix", default="replica", help="replicas are <prefix>-0 ..")
    add("--replicas", type=int, default=1)
    add("--ready-tcp", help="TCP readiness probe host:port (default: running is ready)")
    add("--ready-url", help="HTTP readiness probe URL")
    add("--memory-limit-mb", type=int, default=0, help="0: no limit")
    add("--termination-grace-s", type=float, default=10.0)
    add("--backoff-initial-s", type=float, default=0.5)
    add("--backoff-max-s", type=float, default=4.0)
    add("--no-cgroups", action="store_true")
    add("--cpu-cgroup", action="store_true", help="also a cpu cgroup (weighed as one task)")
    add("--env", action="append", default=[], metavar="K=V", help="extra environment")
    add("--log-format", choices=["console", "json"], default="console")
    add("argv", nargs=argparse.REMAINDER, help="-- the command and its arguments")
    return parser


def settings_from(args: argparse.Namespace) -> DeploymentSettings:
    """The supervisor's settings for one command (its argv is kept as given, quoted)."""
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    # The supervisor fills {placeholders}; a literal brace in the command must survive that.
    quoted = shlex.join(arg.replace("{", "{{").replace("}", "}}") for arg in argv)
    return DeploymentSettings(
        state_dir=args.state_dir,
        replicas=args.replicas,
        worker_command=quoted,
        env=dict(kv.split("=", 1) for kv in args.env),
        temporal_addresses=["-"],
        kafka_bootstraps=["-"],
        worker_env=False,
        ready_url=args.ready_url,
        ready_tcp=args.ready_tcp,
        name_prefix=args.name_prefix,
        memory_limit_mb=args.memory_limit_mb,
        use_cgroups=not args.no_cgroups,
        cpu_cgroup=args.cpu_cgroup,
        backoff_initial_s=args.backoff_initial_s,
        backoff_max_s=args.backoff_max_s,
        termination_grace_s=args.termination_grace_s,
    )


async def run(settings: DeploymentSettings) -> int:
    """Supervise until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Supervisor(settings).run(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``python -m standin.deployment`` entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.argv or args.argv == ["--"]:
        parser.error("give the command to supervise after --")
    if args.ready_tcp and args.ready_url:
        parser.error("give --ready-tcp or --ready-url, not both")
    configure_logging(args.log_format, component="deployment")
    return asyncio.run(run(settings_from(args)))


if __name__ == "__main__":
    sys.exit(main())
