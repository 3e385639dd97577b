"""What every benchmark shares: `--quick`, sides run alternately, statistics, one JSON line.

A benchmark measures two or more *sides* (the thing under test and its floor: a plain consumer,
a bare API call, the system's own settle time) in the same process, alternating them round by
round so that load from the rest of the machine falls on both alike. Each side yields one number
per round (seconds, or a rate); a *ratio* is computed per round from two sides and summarised
like the sides, so the median ratio is not the ratio of two medians taken at different moments.

The last line a benchmark prints is one JSON object (`figures`), the same keys for all:

    {"name": ..., "sides": {side: {"unit", "n", "min", "median", "max"}},
     "ratio": {"of": [a, b], "min", "median", "max"}, "ratio_median": ..., "sizes": {...},
     "extra": {...}}

Imports nothing of the orchestrator, so a test can check it on plain numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: One side's measurement of one round.
Measure = Callable[[], Awaitable[float]]


def parser(description: str, *, rounds: int = 5, quick_rounds: int = 3) -> argparse.ArgumentParser:
    """An argument parser with `--quick` and `--rounds` (how often each side runs)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"rounds per side (default {rounds}, {quick_rounds} with --quick)",
    )
    p.set_defaults(_rounds=(rounds, quick_rounds))
    return p


def rounds_of(args: argparse.Namespace) -> int:
    """The rounds asked for, else the default for full or quick runs."""
    full, quick = args._rounds
    return int(args.rounds or (quick if args.quick else full))


def stats(values: Sequence[float]) -> dict[str, float]:
    """n, min, median and max of `values` (rounded to 4 significant decimals)."""
    if not values:
        raise ValueError("no samples")
    return {
        "n": len(values),
        "min": _round(min(values)),
        "median": _round(statistics.median(values)),
        "max": _round(max(values)),
    }


def _round(x: float) -> float:
    return float(f"{x:.4g}")


@dataclass
class Samples:
    """Per-side samples of one benchmark row, and the unit of each side."""

    units: dict[str, str]
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, side: str, value: float) -> None:
        """Record one round's value of `side`."""
        if side not in self.units:
            raise KeyError(f"unknown side {side!r}; sides are {sorted(self.units)}")
        self.values.setdefault(side, []).append(value)

    def ratios(self, a: str, b: str) -> list[float]:
        """a / b per round (rounds where both sides have a value; b must be non-zero)."""
        pairs = zip(self.values.get(a, []), self.values.get(b, []), strict=False)
        return [x / y for x, y in pairs if y]

    def sides(self) -> dict[str, dict[str, Any]]:
        """Each side's statistics with its unit."""
        return {s: {"unit": self.units[s], **stats(v)} for s, v in self.values.items() if v}


async def alternate(sides: Mapping[str, Measure], rounds: int, samples: Samples) -> Samples:
    """Run every side once per round, in turn (order flipped every other round)."""
    order = list(sides)
    for r in range(rounds):
        for side in order if r % 2 == 0 else order[::-1]:
            samples.add(side, await sides[side]())
    return samples


async def seconds(call: Callable[[], Awaitable[object]]) -> float:
    """Wall seconds `call` takes."""
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


async def until(
    check: Callable[[], bool | Awaitable[bool]], interval_s: float, timeout_s: float = 300.0
) -> bool:
    """Poll `check` (sync or async) every `interval_s` until true; False at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if not isinstance(got, bool):
            got = await got
        if got:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval_s)


def figures(
    name: str,
    samples: Samples,
    ratio: tuple[str, str] | None,
    sizes: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The benchmark's figures as one JSON-able object (see the module docstring)."""
    out: dict[str, Any] = {"name": name, "sides": samples.sides()}
    if ratio is not None:
        values = samples.ratios(*ratio)
        out["ratio"] = {"of": list(ratio), **stats(values)}
        out["ratio_median"] = out["ratio"]["median"]
    else:
        out["ratio_median"] = None
    out["sizes"] = dict(sizes)
    if extra:
        out["extra"] = dict(extra)
    return out


def table(samples: Samples, ratio: tuple[str, str] | None = None, label: str = "") -> str:
    """Human lines: min/median/max per side and of the ratio."""
    lines = []
    for side, s in samples.sides().items():
        lines.append(
            f"{label}{side:<28} median {_num(s['median']):>12} {s['unit']:<9} "
            f"(min {_num(s['min'])}, max {_num(s['max'])}, n={s['n']})"
        )
    if ratio is not None and (values := samples.ratios(*ratio)):
        r = stats(values)
        lines.append(
            f"{label}{'ratio ' + ratio[0] + '/' + ratio[1]:<28} median {r['median']:>12.3f} "
            f"{'':<9} (min {r['min']:.3f}, max {r['max']:.3f})"
        )
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def quiet_logs() -> None:
    """Logs to stderr, warnings and up only: stdout is the table and the JSON line."""
    import logging

    import structlog

    logging.basicConfig(stream=sys.stderr, level=logging.ERROR)
    logging.getLogger("temporalio").setLevel(logging.ERROR)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def emit(result: Mapping[str, Any]) -> None:
    """Print the one JSON line, last, on stdout."""
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=False), flush=True)
