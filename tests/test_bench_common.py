"""The benchmarks' shared helper: statistics, alternation and the one JSON line, on plain data.

The benchmarks themselves are not in the suite (minutes each); this checks what every one of
them reports through.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.common import Samples, alternate, emit, figures, parser, rounds_of, stats


def test_stats_are_min_median_max_of_the_samples() -> None:
    assert stats([3.0, 1.0, 2.0, 10.0]) == {"n": 4, "min": 1.0, "median": 2.5, "max": 10.0}
    with pytest.raises(ValueError):
        stats([])


def test_the_ratio_is_taken_per_round_not_of_the_medians() -> None:
    samples = Samples({"check": "s", "plain": "s"})
    for check, plain in [(2.0, 1.0), (9.0, 3.0), (4.0, 4.0)]:
        samples.add("check", check)
        samples.add("plain", plain)
    out = figures("demo", samples, ("check", "plain"), {"events": 10})
    assert samples.ratios("check", "plain") == [2.0, 3.0, 1.0]
    assert out["ratio"] == {"of": ["check", "plain"], "n": 3, "min": 1.0, "median": 2.0, "max": 3.0}
    assert out["ratio_median"] == 2.0  # the ratio of the medians would be 4.0 / 3.0
    assert out["sides"]["check"] == {"unit": "s", "n": 3, "min": 2.0, "median": 4.0, "max": 9.0}
    assert out["sizes"] == {"events": 10}


def test_sides_alternate_and_flip_order_every_other_round() -> None:
    calls: list[str] = []

    def side(name: str, value: float):  # type: ignore[no-untyped-def]
        async def measure() -> float:
            calls.append(name)
            return value

        return measure

    samples = asyncio.run(
        alternate({"a": side("a", 1.0), "b": side("b", 2.0)}, 3, Samples({"a": "s", "b": "s"}))
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert samples.values == {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}
    with pytest.raises(KeyError):
        samples.add("c", 1.0)


def test_the_json_line_is_the_last_line_and_parses(capsys: pytest.CaptureFixture[str]) -> None:
    samples = Samples({"x": "ms"})
    samples.add("x", 5.0)
    print("a human table")
    emit(figures("one-side", samples, None, {"n": 1}, {"note": "ok"}))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    parsed = json.loads(last)
    assert parsed["name"] == "one-side" and parsed["ratio_median"] is None
    assert parsed["extra"] == {"note": "ok"}


def test_quick_picks_fewer_rounds_unless_rounds_is_given() -> None:
    p = parser("demo", rounds=5, quick_rounds=2)
    assert rounds_of(p.parse_args([])) == 5
    assert rounds_of(p.parse_args(["--quick"])) == 2
    assert rounds_of(p.parse_args(["--quick", "--rounds", "7"])) == 7
