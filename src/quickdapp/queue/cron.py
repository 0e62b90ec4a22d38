"""Cron patterns as BullMQ reads them: 5 fields, or 6 with seconds first."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

FIELDS_5 = ("minute", "hour", "day of month", "month", "day of week")
FIELDS_6 = ("second", *FIELDS_5)
RANGES = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day of month": "1-31",
    "month": "1-12 or JAN-DEC",
    "day of week": "0-7 or SUN-SAT",
}


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
    names = FIELDS_6 if len(fields) == 6 else FIELDS_5
    for index, (name, value) in enumerate(zip(names, fields, strict=True)):
        # Each field alone among stars, so the error can name the field at fault.
        alone = " ".join(value if i == index else "*" for i in range(len(fields)))
        if not croniter.is_valid(alone, second_at_beginning=True):
            raise CronPatternError(
                f"cron pattern {pattern!r}: {name} field {value!r} is not valid "
                f"(expected {RANGES[name]}, a list, range or */step)"
            )
    zone = None
    if tz is not None:
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronPatternError(f"unknown time zone {tz!r}") from None
    try:
        # Fields valid one by one can still never match together (31 February).
        croniter(pattern, datetime.now(zone or UTC), second_at_beginning=True).get_next(datetime)
    except (CroniterBadCronError, CroniterBadDateError) as exc:
        raise CronPatternError(f"cron pattern {pattern!r} never fires: {exc}") from None
