"""The Duration type used everywhere: a `timedelta` spelled the way Chaos Mesh spells it.

A scenario file, a `--input` string and a rendered manifest all say "30s", "1m30s" or "200ms".
Numbers are accepted as seconds. Parsing happens once, at validation, never late.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> timedelta:
    """Parse "1m30s", "200ms", 30 (seconds) or a timedelta into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as '30s' or a number of seconds")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _seconds(value, value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a duration is a string such as '30s', '1m30s' or '200ms'")
    text = value.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{value!r} is not a duration; write e.g. '30s', '1m30s' or '200ms'")
    return _seconds(total, value)


def _seconds(seconds: float, given: Any) -> timedelta:
    # Found by fuzzing: a huge number made `timedelta` raise OverflowError, which pydantic does
    # not turn into a validation error, so a bad `--input` escaped as a workflow task failure.
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError) as err:
        raise ValueError(f"{given!r} is far too long for a duration") from err


def format_duration(value: timedelta) -> str:
    """Write a timedelta in Chaos Mesh's spelling: 90s -> '1m30s', 0.2s -> '200ms'."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if millis and not (hours or minutes or seconds):
        parts.append(f"{millis}ms")
    elif millis:
        parts.append(f"{seconds + millis / 1000:g}s")
    elif seconds:
        parts.append(f"{seconds}s")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h))+$", "examples": ["30s", "1m30s"]}
    ),
]
