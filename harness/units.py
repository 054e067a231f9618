"""Parsing of command-line and settings values: durations and comma lists.

Errors are ``UsageError`` (or ValueError from the parsers) with a message that names the
value and what would be accepted; the CLI turns them into one line and exit status 2.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


def parse_duration(value: object, zero_ok: bool = False) -> float:
    """Seconds from 10, 2.5, "10", "10s", "2m", "1m30s" or "1h"."""
    if isinstance(value, bool):
        raise ValueError(f"duration {value!r} is not a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        match = _DURATION.match(text)
        if not text or match is None or not any(match.groups()):
            raise ValueError(
                f"duration {value!r} is not understood; use seconds (10) or 10s, 2m, 1m30s"
            )
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero_ok):
        raise ValueError(f"duration {value!r} must be {'zero or ' if zero_ok else ''}positive")
    return seconds


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """'10,50,100' -> (10, 50, 100); every item a positive whole number."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UsageError(f"{option} {text!r}: expected a comma-separated list such as 10,50,100")
    values: list[int] = []
    for item in items:
        if not (item.isascii() and item.isdigit()) or int(item) < 1:
            raise UsageError(f"{option} {text!r}: {item!r} is not a positive whole number")
        if int(item) in values:
            raise UsageError(f"{option} {text!r}: {item} is repeated")
        values.append(int(item))
    return tuple(values)


def parse_positive_int(text: str, option: str) -> int:
    """'3' -> 3; a single positive whole number."""
    item = text.strip()
    if not (item.isascii() and item.isdigit()) or int(item) < 1:
        raise UsageError(f"{option} {text!r}: expected a positive whole number")
    return int(item)


def parse_name_list(text: str, option: str, choices: list[str]) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'), each a known choice."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UsageError(f"{option} {text!r}: expected a comma-separated list of names")
    for item in items:
        if item not in choices:
            raise UsageError(f"{option}: unknown {item!r}; choose from {', '.join(choices)}")
    return tuple(dict.fromkeys(items))


def parse_rate_list(text: str, option: str) -> tuple[float, ...]:
    """'200,500.5' -> (200.0, 500.5); every item a positive, finite number of requests/s."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UsageError(f"{option} {text!r}: expected a comma-separated list such as 200,500")
    values: list[float] = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not item.isascii() or not math.isfinite(value) or value <= 0:
            raise UsageError(f"{option} {text!r}: {item!r} is not a positive number")
        if value in values:
            raise UsageError(f"{option} {text!r}: {item} is repeated")
        values.append(value)
    return tuple(values)
