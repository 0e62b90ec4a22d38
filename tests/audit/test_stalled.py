"""What the stalled check captured becomes the stalled attempt's audit record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from quickdapp.attempts import UNKNOWN_TYPE
from quickdapp.audit import stream
from quickdapp.audit.stalled import STALLED_REASON, stalled_execution
from quickdapp.broker.job import StalledAttempt
from quickdapp.limits import AUDIT_DATA_MAX_BYTES

AT_MS = 1_764_400_000_000


def _capture(**overrides: Any) -> str:
    """A capture as the stalled check's script writes it (Lua's false for a missing field)."""
    fields = {
        "job_id": "j1",
        "attempt": 2,
        "stalls": 1,
        "name": "echo",
        "data": json.dumps({"userId": 7, "data": {"n": 1}}),
        "processed_on": AT_MS - 4_000,
        "deferred": False,
        "at": AT_MS,
        "limit": 3,
        "lock_ms": 30_000,
    }
    return json.dumps({"stalled": fields | overrides})


def test_a_capture_is_the_failed_attempt_that_stalled() -> None:
    execution = stream.decode(_capture())
    assert (execution.job_id, execution.attempt, execution.type) == ("j1", 2, "echo")
    assert (execution.user_id, execution.data, execution.status) == (7, {"n": 1}, "failed")
    assert execution.started_at == datetime.fromtimestamp((AT_MS - 4_000) / 1000, UTC)
    assert execution.completed_at == datetime.fromtimestamp(AT_MS / 1000, UTC)
    assert execution.error is not None
    assert execution.error.startswith("stalled (stall 1 of at most 3)")
    assert "within 30000 ms; moved back to wait" in execution.error


def test_a_job_that_stalled_too_often_says_it_will_fail() -> None:
    execution = stream.decode(_capture(deferred=STALLED_REASON, stalls=4))
    assert execution.error is not None and "it will fail without another run" in execution.error


def test_whatever_the_job_held_it_is_recorded() -> None:
    nameless = stalled_execution(StalledAttempt.from_json(_capture(name=False, data="{broken")))
    assert nameless.type == UNKNOWN_TYPE and nameless.data == {"unreadable": "{broken"}
    assert nameless.user_id is None
    never_started = stream.decode(_capture(processed_on=False, attempt=0, data=False))
    assert never_started.started_at == never_started.completed_at and never_started.attempt == 1
    # A user id that is not an integer is not one.
    assert stream.decode(_capture(data=json.dumps({"userId": True, "data": {}}))).user_id is None


def test_large_data_is_kept_as_a_marker() -> None:
    big = json.dumps({"userId": None, "data": {"blob": "x" * AUDIT_DATA_MAX_BYTES}})
    data = stream.decode(_capture(data=big)).data
    assert data["truncated"] is True and data["bytes"] > AUDIT_DATA_MAX_BYTES
