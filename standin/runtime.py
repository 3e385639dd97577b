"""The worker process's fixed configuration: its time scale and its deliberate defects.

The real worker compiles its timeouts in; the stand-in multiplies them by one factor,
`BYTEBOT_TIME_SCALE` (default `DEFAULT_TIME_SCALE`), so a local run takes seconds. Not the ones
that say how long ByteBot rides out a dependency's outage (its Kafka emits): a broker takes
as long to restart whatever the scale, so scaling them would turn an outage ByteBot survives
into lost events (`outage`, `outage_retry`).
The replica calls `configure` once before its worker starts; the workflow sandbox passes this
module through, so workflow code reads the same values. Every replica of one deployment gets
the same environment, so a history replays alike on any of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.common import RetryPolicy

from standin.models import FaultyMode

DEFAULT_TIME_SCALE = 0.2
TIME_SCALE_ENV = "BYTEBOT_TIME_SCALE"
FAULTY_ENV = "BYTEBOT_FAULTY"


@dataclass(frozen=True)
class Runtime:
    """Scale and defects of this process."""

    time_scale: float = DEFAULT_TIME_SCALE
    faulty: frozenset[FaultyMode] = field(default_factory=frozenset)

    def seconds(self, real_s: float) -> timedelta:
        """A duration of the real worker, scaled."""
        return timedelta(seconds=real_s * self.time_scale)

    def retry(self, initial_s: float, maximum_s: float, attempts: int) -> RetryPolicy:
        """A real retry policy (backoff 2), its intervals scaled."""
        return _policy(self.seconds(initial_s), self.seconds(maximum_s), attempts)

    @staticmethod
    def outage(real_s: float) -> timedelta:
        """A duration that bounds a dependency's outage: the real worker's, never scaled."""
        return timedelta(seconds=real_s)

    @staticmethod
    def outage_retry(initial_s: float, maximum_s: float, attempts: int) -> RetryPolicy:
        """A retry policy that rides out a dependency's outage (backoff 2), never scaled."""
        return _policy(timedelta(seconds=initial_s), timedelta(seconds=maximum_s), attempts)


def _policy(initial: timedelta, maximum: timedelta, attempts: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=initial,
        backoff_coefficient=2.0,
        maximum_interval=maximum,
        maximum_attempts=attempts,
    )


_current = Runtime()


def from_env(environ: dict[str, str] | None = None) -> Runtime:
    """Read `BYTEBOT_TIME_SCALE` and `BYTEBOT_FAULTY` (comma-separated modes)."""
    env = os.environ if environ is None else environ
    scale = float(env.get(TIME_SCALE_ENV) or DEFAULT_TIME_SCALE)
    if scale <= 0:
        raise ValueError(f"{TIME_SCALE_ENV} must be positive, not {scale}")
    modes = [m.strip() for m in (env.get(FAULTY_ENV) or "").split(",") if m.strip()]
    return Runtime(time_scale=scale, faulty=frozenset(FaultyMode(m) for m in modes))


def configure(runtime: Runtime) -> None:
    """Set this process's runtime; call before any worker starts."""
    global _current
    _current = runtime


def current() -> Runtime:
    """This process's runtime."""
    return _current
