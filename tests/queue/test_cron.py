"""Cron patterns: 5 and 6 fields, the reasons a pattern is refused, time zones."""

from __future__ import annotations

import pytest

from quickdapp.queue.cron import CronPatternError, validate_cron_pattern


@pytest.mark.parametrize(
    "pattern",
    ["*/3 * * * * *", "* * * * * *", "0 3 * * *", "0 0 1 JAN MON", "1-5,10 */2 * * *", "30 0 3 * * 1-5"],
)
def test_valid_5_and_6_field_patterns_are_accepted(pattern: str) -> None:
    validate_cron_pattern(pattern)
    validate_cron_pattern(pattern, "Europe/Paris")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("* * *", "has 3 fields; expected 5"),
        ("0 0 0 * * * *", "has 7 fields"),
        ("@daily", "has 1 fields"),
        ("61 * * * *", "minute field '61' is not valid (expected 0-59"),
        ("0 25 * * *", "hour field '25'"),
        ("*/3 * * * * 99", "day of week field '99'"),
        ("60 * * * * *", "second field '60'"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("x * * * *", "minute field 'x'"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_invalid_patterns_are_refused_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(CronPatternError) as error:
        validate_cron_pattern(pattern)
    assert reason in str(error.value)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(CronPatternError, match="unknown time zone 'Mars/Olympus'"):
        validate_cron_pattern("0 3 * * *", "Mars/Olympus")
