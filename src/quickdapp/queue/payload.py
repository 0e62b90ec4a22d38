"""The payload of every job on the queue: `{"userId": <int or null>, "data": {...}}`.

QueueManager writes it and the processor reads it; a Node service sharing the queue writes
the same form. The job's own fields live under `data` (validated by the job type's model),
so a payload without the wrapper is refused here, with a reason that says so, rather than
failing later as a model error about the job's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quickdapp.errors import PermanentJobError
from quickdapp.limits import MAX_BIGINT, check_user_id

# `owner` marks who manages a job scheduler's runs (queue/schedules.py marks its own).
PAYLOAD_KEYS = frozenset({"userId", "data", "owner"})
FORM = '{"userId": <integer or null>, "data": {<the job\'s fields>}}'


class PayloadFormError(PermanentJobError, ValueError):
    """A job payload that is not in the `{userId, data}` form."""


@dataclass(frozen=True)
class Payload:
    user_id: int | None
    data: Any


def job_payload(user_id: int | None, data: Any) -> dict[str, Any]:
    """The payload of a job acting for `user_id` (None: no user) with the job's `data`."""
    return {"userId": user_id, "data": data}


def read_payload(raw: Any) -> Payload:
    """`raw` job data as a Payload; raises PayloadFormError naming what is wrong.

    A missing `data` means the job type's defaults, as `submit_job` treats `data=None`; so does
    an empty or null payload (Node's `queue.add(name)` stores `{}`, `queue.add(name, null)` null).
    """
    if raw is None:
        return Payload(user_id=None, data=None)
    if not isinstance(raw, dict):
        raise _not_in_form(f"got {_kind(raw)}")
    unknown = sorted(set(raw) - PAYLOAD_KEYS)
    if unknown:
        raise _not_in_form(f"unexpected keys {', '.join(unknown)}")
    user_id = raw.get("userId")
    try:
        check_user_id(user_id)
    except ValueError:
        raise PayloadFormError(
            f"job payload: userId must be an integer in 0..{MAX_BIGINT} or null, got {user_id!r}"
        ) from None
    return Payload(user_id=user_id, data=raw.get("data"))


def _not_in_form(problem: str) -> PayloadFormError:
    return PayloadFormError(f"job payload is not in the {{userId, data}} form: {problem}; send {FORM}")


def _kind(value: Any) -> str:
    """How JSON would call `value`."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
