"""The bounds every input is held to: ids, delays, waits, pages, sizes. One place, in the README.

The API, the dashboard form, the CLI and the job models check against these, so an input out
of range is a 4xx or one clear line, never a 500 or a traceback deeper down (Redis, msgpack,
SQL and datetime each fail in their own way on numbers past their range).
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, StrictInt

MAX_BIGINT = 2**63 - 1
"""The largest id PostgreSQL's BIGINT holds: user ids, block numbers."""
MAX_DELAY_MS = 365 * 24 * 3_600 * 1_000
"""A job may be delayed by up to a year."""
MAX_WAIT_SECONDS = 24 * 3_600.0
"""`quickdapp submit --wait` waits up to a day."""
MAX_ATTEMPTS = 100
MAX_BULK_JOBS = 1_000
"""Jobs one `submit_jobs` call (one MULTI/EXEC, one API request) may add."""
MAX_JOB_ID_LENGTH = 128
MAX_JOB_TYPE_LENGTH = 100
MAX_PAGE = 100_000
MAX_PAGE_SIZE = 200
MAX_CLEAN_LIMIT = 1_000_000
MAX_GRACE_MS = 10 * 365 * 24 * 3_600 * 1_000
MAX_RETENTION_DAYS = 36_500
DEFAULT_MAX_JOB_PAYLOAD_BYTES = 1_048_576
"""MAX_JOB_PAYLOAD_BYTES' default: a job's {userId, data} as JSON, at most 1 MiB."""
REQUEST_ENVELOPE_BYTES = 16_384
"""An API request body may be this much larger than a job's data (type, user id, delay...)."""
AUDIT_DATA_MAX_BYTES = 65_536
"""Past this, an audit row keeps a marker and a preview instead of the job's data or result."""

# Strict: `true`, "7" and 7.0 are refused, not coerced.
UserId = Annotated[StrictInt, Field(ge=0, le=MAX_BIGINT)]
DelayMs = Annotated[StrictInt, Field(ge=0, le=MAX_DELAY_MS)]
BlockNumber = Annotated[StrictInt, Field(ge=0, le=MAX_BIGINT)]


def check_user_id(value: object) -> int | None:
    """`value` as a user id (None for none); raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BIGINT:
        raise ValueError(f"user_id must be an integer in 0..{MAX_BIGINT}, got {shown(value)}")
    return value


def check_int(name: str, value: object, low: int, high: int) -> int:
    """`value` as an integer in low..high; raises ValueError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {shown(value)}")
    return value


def check_seconds(name: str, value: float, high: float) -> float:
    """`value` as a positive, finite number of seconds up to `high`."""
    if not (math.isfinite(value) and 0 < value <= high):
        raise ValueError(f"{name} must be a number of seconds in (0, {high:g}], got {value!r}")
    return value


def shown(value: object, limit: int = 40) -> str:
    """`value` for an error message, cut short: an error must not echo a megabyte back."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit conversion limit
        return "a number too long to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."
