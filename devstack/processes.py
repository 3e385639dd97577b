"""Stopping the child processes the local services run in (Temporal, Kafka, kube-apiserver, ...).

Owns the one shutdown sequence they share: SIGTERM, a bounded wait, then SIGKILL. It only ever
signals a process its caller started, and a process group only when that process leads it
(``start_new_session=True``): it must never signal the caller's own group.
"""

from __future__ import annotations

import os
import signal
import subprocess
from types import TracebackType
from typing import Self


def stop_process_group(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Stop ``proc`` and its group: SIGTERM, wait ``timeout_s``, then SIGKILL and reap.

    A no-op when ``proc`` has already exited. When ``proc`` leads its own process group, both
    signals go to the whole group (what it spawned stops too); otherwise to ``proc`` alone.
    """
    if proc.poll() is not None:
        return
    _signal(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _signal(proc, signal.SIGKILL)
        proc.wait()


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if os.getpgid(proc.pid) == proc.pid:
        os.killpg(proc.pid, sig)
    else:  # it shares a group with us: signal it alone
        proc.send_signal(sig)


class Service:
    """A local service run as a context manager: `start()` on enter, `stop()` on exit.

    Subclasses define both; `stop()` must be safe to call more than once.
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
