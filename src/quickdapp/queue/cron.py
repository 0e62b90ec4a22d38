"""Cron patterns as BullMQ reads them: 5 fields, or 6 with seconds first."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


class CronPatternError(ValueError):
    """A cron pattern (or time zone) that no scheduler could run."""


def validate_cron_pattern(pattern: str, tz: str | None = None) -> None:
    """Raise CronPatternError naming what is wrong with `pattern` or `tz`."""
    fields = pattern.split()
    if len(fields) not in (5, 6):
        raise CronPatternError(
            f"cron pattern {pattern!r} has {len(fields)} fields; expected 5 "
            "(minute hour day month weekday) or 6 (second first)"
        )
    if not croniter.is_valid(pattern, second_at_beginning=True):
        raise CronPatternError(f"cron pattern {pattern!r} is not valid: check each field's range")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronPatternError(f"unknown time zone {tz!r}") from None
