"""Intervals of `every` job schedulers, as BullMQ stores them: whole milliseconds.

People write them as milliseconds (`30000`) or a whole number with a unit (`30s`, `5m`, `1h`).
"""

from __future__ import annotations

import re

UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_INTERVAL = re.compile(r"(?P<amount>\d+)\s*(?P<unit>ms|s|m|h|d)?")
_HINT = "give milliseconds (30000) or a whole number with a unit: 30s, 5m, 1h"


class IntervalError(ValueError):
    """An interval that no scheduler could run on."""


def parse_interval(value: int | str) -> int:
    """`value` in milliseconds; raises IntervalError (one line) unless it is a positive interval."""
    if isinstance(value, int) and not isinstance(value, bool):
        ms = value
    elif isinstance(value, str) and (match := _INTERVAL.fullmatch(value.strip().lower())):
        ms = int(match["amount"]) * UNITS_MS[match["unit"] or "ms"]
    else:
        ms = 0
    if ms <= 0:
        raise IntervalError(f"interval {value!r} is not a positive interval; {_HINT}")
    return ms


def format_interval(ms: int) -> str:
    """`ms` in the largest unit that divides it exactly: 30000 -> '30s', 1500 -> '1500ms'."""
    for unit, size in sorted(UNITS_MS.items(), key=lambda item: -item[1]):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise AssertionError("every integer is a whole number of milliseconds")
