"""The next iteration of a job scheduler, computed when its current job starts.

BullMQ's workers (Node and Python alike) advance a scheduler when one of its jobs becomes
active: bullmq's `JobScheduler.upsertJobScheduler(..., override=False, producer_id=job.id)`
builds the next job's options and runs `updateJobScheduler`. This module does the same
computation from the job's stored options, without a bullmq Job instance: `every`
schedulers are computed inside the Lua script; cron `pattern`s here, with croniter, as
bullmq's `default_repeat_strategy` does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from quickdapp.broker.job import ActiveJob
from quickdapp.broker.scripts import now_ms


def _to_millis(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
            except ValueError:
                return None
    return None


def next_cron_millis(millis: int, repeat: dict[str, Any]) -> int | None:
    """The next fire time of a cron `pattern` after `millis` (bullmq default_repeat_strategy)."""
    from croniter import croniter  # only cron schedulers pay for the import

    pattern = repeat.get("pattern")
    if not pattern:
        return None
    if repeat.get("immediately"):
        return now_ms()
    base = millis
    start = _to_millis(repeat.get("startDate"))
    if start is not None and start > base:
        base = start
    tz = repeat.get("tz")
    zone = ZoneInfo(tz) if tz else UTC
    itr = croniter(pattern, datetime.fromtimestamp(base / 1000.0, tz=zone), second_at_beginning=True)
    return int(itr.get_next(datetime).timestamp() * 1000)


def next_iteration(job: ActiveJob) -> tuple[int, str, dict[str, Any]] | None:
    """(next_millis, template data JSON, next job's opts) or None when the schedule is over."""
    opts = job.safe_opts()
    repeat = opts.get("repeat")
    if not isinstance(repeat, dict):
        return None
    every, pattern = repeat.get("every"), repeat.get("pattern")
    if not every and not pattern:
        return None
    count = repeat.get("count") or 0
    iteration = (count if isinstance(count, int) else 0) + 1
    limit = repeat.get("limit")
    if isinstance(limit, int) and iteration > limit:
        return None
    now = now_ms()
    end = _to_millis(repeat.get("endDate"))
    if end is not None and now > end:
        return None
    prev = opts.get("prevMillis") or 0
    if isinstance(prev, int | float) and prev > now:
        now = int(prev)
    next_millis: int | None = None
    if pattern:
        next_millis = next_cron_millis(now, repeat)
        if next_millis is None:
            return None
        next_millis = max(next_millis, now)
    offset = repeat.get("offset") if every else None
    base_next = next_millis or now
    next_repeat = {key: value for key, value in repeat.items() if key != "immediately"}
    next_repeat.update(offset=offset, count=iteration)
    for key in ("startDate", "endDate"):
        next_repeat[key] = _to_millis(repeat.get(key))
    next_opts = {
        **opts,
        "jobId": f"repeat:{job.repeat_job_key}:{base_next}",
        "delay": max(base_next + (offset or 0) - now_ms(), 0),
        "timestamp": now_ms(),
        "prevMillis": base_next,
        "repeatJobKey": job.repeat_job_key,
        "repeat": {key: value for key, value in next_repeat.items() if value is not None},
    }
    template = job.raw_data if job.raw_data is not None else json.dumps({})
    return base_next, template, next_opts
