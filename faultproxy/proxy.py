"""The fault proxy process: carries each replica's connections to Temporal and Kafka.

    python -m faultproxy.proxy --config <control>/proxy.json

One listening socket per route (127.0.0.1 only, never another interface); every connection is
relayed to the route's upstream under the rules in the control directory (see `shaping` for
what each rule does to a stream, and `control` for the files). Rules are re-read every
``reload_interval_s``; the status file, the evidence of what is applied, is rewritten every
``status_interval_s``. The proxy never decides on a fault: it obeys rule files, and a rule
ends at its expiry even if nobody withdraws it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import signal
import sys
import time
from pathlib import Path

import structlog

from faultproxy.control import (
    ProxyConfig,
    ProxyStatus,
    Route,
    RouteStats,
    status_file,
    write_atomic,
)
from faultproxy.shaping import RuleBook, Shaper

log = structlog.get_logger(__name__)


class FaultProxy:
    """Serves every route of a `ProxyConfig` until stopped."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.book = RuleBook(config.control_dir)
        self.shaper = Shaper(self.book)
        self.stats = {
            r.name: RouteStats(
                name=r.name,
                replica=r.replica,
                peer=r.peer,
                listen_port=r.listen_port,
                upstream=r.upstream,
            )
            for r in config.routes
        }
        self._connections: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen on every route, follow the rules and report, until ``stop`` is set."""
        self.book.reload()
        servers = []
        try:
            for route in self.config.routes:
                servers.append(
                    await asyncio.start_server(
                        functools.partial(self._serve, route),
                        "127.0.0.1",
                        route.listen_port,
                        reuse_address=True,
                    )
                )
            log.info("proxy_listening", routes=[r.name for r in self.config.routes])
            self._write_status()
            next_status = 0.0
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.reload_interval_s)
                self.book.reload()
                self.shaper.forget_expired_buckets()
                if time.monotonic() >= next_status:
                    self._write_status()
                    next_status = time.monotonic() + self.config.status_interval_s
        finally:
            for server in servers:
                server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            log.info("proxy_stopped")

    def status(self) -> ProxyStatus:
        """What the proxy applies now, per route, with its counters."""
        routes = {}
        for route in self.config.routes:
            stats = self.stats[route.name]
            stats.active_rules = [r.fault_id for r in self.book.active(route)]
            routes[route.name] = stats.model_copy()
        return ProxyStatus(
            pid=os.getpid(),
            updated_at=time.time(),
            live_rules=self.book.live_ids,
            expired_rules=self.book.expired,
            routes=routes,
        )

    def _write_status(self) -> None:
        write_atomic(status_file(self.config.control_dir), self.status().model_dump_json(indent=1))

    async def _serve(
        self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # A connection task ends quietly when the proxy stops (asyncio's stream server would
        # otherwise log the cancellation of every open connection as an error).
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay_connection(route, reader, writer)

    async def _relay_connection(
        self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        stats = self.stats[route.name]
        if self.book.dns_failing(route):
            stats.refused_dns += 1
            writer.transport.abort()  # the client sees its connection fail at once
            return
        stats.connections_total += 1
        stats.connections_open += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            await self.shaper.hold_while_partitioned(route, stats)
            try:
                up_reader, upstream = await asyncio.open_connection(*route.upstream_address)
            except OSError as e:
                log.warning("upstream_unreachable", route=route.name, error=str(e))
                return

            def abort() -> None:
                writer.transport.abort()
                if upstream is not None:
                    upstream.transport.abort()

            await asyncio.gather(
                self.shaper.relay(route, stats, reader, upstream, "to", abort),
                self.shaper.relay(route, stats, up_reader, writer, "from", abort),
            )
        finally:
            stats.connections_open -= 1
            for w in (writer, upstream):
                if w is not None:
                    w.close()


async def serve(config: ProxyConfig) -> None:
    """Run the proxy until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await FaultProxy(config).run(stop)


def main(argv: list[str] | None = None) -> int:
    """The ``python -m faultproxy.proxy`` CLI."""
    parser = argparse.ArgumentParser(prog="python -m faultproxy.proxy", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="a ProxyConfig JSON file")
    args = parser.parse_args(argv)
    config = ProxyConfig.model_validate_json(args.config.read_text())
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
