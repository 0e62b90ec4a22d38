"""Time in the audit trail: UTC, whole minutes and hours since 1970, and the range accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Times from EPOCH up to (not including) this are accepted from callers; both databases and
the minute arithmetic hold them, and anything outside is a typing slip."""


def epoch_minute(at: datetime) -> int:
    """Whole minutes since 1970-01-01 UTC (floored)."""
    return (at - EPOCH) // MINUTE


def epoch_hour(at: datetime) -> int:
    """Whole hours since 1970-01-01 UTC (floored)."""
    return (at - EPOCH) // HOUR


def check_time(name: str, value: datetime | None) -> None:
    """ValueError unless `value` (when given) is timezone-aware and within [1970, 9000)."""
    if value is None:
        return
    if value.tzinfo is None:
        raise ValueError(f"{name} must have a time zone, got {value.isoformat()}")
    if not EPOCH <= value < LATEST:
        raise ValueError(f"{name} must be between 1970 and 9000, got {value.isoformat()}")
