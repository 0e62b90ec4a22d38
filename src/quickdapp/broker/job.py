"""The light job a worker slot holds, parsed from a moveToActive/moveToFinished reply.

BullMQ's scripts answer a job hand-out with `[HGETALL of the job hash, job id, limitUntil,
delayUntil]`, or `[0, 0, limitUntil, delayUntil]` when there is no job. The job is kept as
the text Redis holds: data and opts are parsed only when asked for, and a job whose JSON is
broken or whose name is missing is still returned (so the processor can fail it cleanly)
instead of breaking the loop that took it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

_PARENT_FLAGS = ("fpof", "cpof", "idof", "rdof")


def _int(text: str | None) -> int:
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


@dataclass(slots=True)
class ActiveJob:
    """A job this worker holds the lock of, as Redis stored it."""

    id: str
    name: str | None
    token: str
    raw_data: str | None  # JSON text as Redis holds it
    raw_opts: str | None  # JSON text, BullMQ's short option names
    attempts_started: int  # ats: this attempt included
    attempts_made: int  # atm: attempts finished before this one
    stalled_counter: int
    deferred_failure: str | None
    repeat_job_key: str | None  # the job scheduler that produced it
    timestamp_ms: int
    processed_on_ms: int
    fields: dict[str, str] = field(repr=False)  # the whole job hash, for anything else
    _opts: dict[str, Any] | ValueError | None = field(default=None, repr=False)  # parsed once

    def data(self) -> Any:
        """The job's data; raises ValueError when it is not valid JSON."""
        if self.raw_data is None:
            raise ValueError(f"job {self.id} has no data")
        return json.loads(self.raw_data)

    def check_opts(self) -> None:
        """Raise ValueError when the options are not a JSON object."""
        parsed = self._parsed_opts()
        if isinstance(parsed, ValueError):
            raise parsed

    def safe_opts(self) -> dict[str, Any]:
        """The options in Redis form, `{}` when unreadable: what the engine itself reads."""
        parsed = self._parsed_opts()
        return {} if isinstance(parsed, ValueError) else parsed

    def _parsed_opts(self) -> dict[str, Any] | ValueError:
        if self._opts is None:
            try:
                parsed = json.loads(self.raw_opts or "{}")
                if not isinstance(parsed, dict):
                    raise ValueError(f"job {self.id} options are not an object")
            except ValueError as exc:
                self._opts = exc
            else:
                self._opts = parsed
        return self._opts

    @property
    def attempts(self) -> int:
        """How many attempts the job may have in all (at least 1)."""
        value = self.safe_opts().get("attempts")
        return value if isinstance(value, int) and value > 0 else 1

    def parent_flags(self) -> dict[str, Any]:
        """The parent-on-failure flags moveToFinished takes from the job's options."""
        opts = self.safe_opts()
        return {flag: opts.get(flag, False) for flag in _PARENT_FLAGS}

    def backoff_ms(self) -> int | None:
        """The delay before the next attempt as bullmq computes it (None: retry at once).

        `fixed`: the delay each time; `exponential`: round(2 ** (attempt - 1) * delay), attempt
        being the one that just failed (1 for the first); an integer backoff means fixed.
        Custom strategies (a worker-side function in bullmq) are not supported: immediate.
        """
        backoff = self.safe_opts().get("backoff")
        if isinstance(backoff, bool) or backoff is None:
            return None
        if isinstance(backoff, int | float):
            return int(backoff) if math.isfinite(backoff) and backoff > 0 else None
        if not isinstance(backoff, dict):
            return None
        delay = backoff.get("delay")
        if not isinstance(delay, int | float) or isinstance(delay, bool):
            return None
        if backoff.get("type") == "exponential":
            return int(2**self.attempts_made * delay + 0.5)  # JS Math.round
        if backoff.get("type") == "fixed":
            return int(delay)
        return None


def parse_job(raw_fields: list[Any], job_id: str, token: str) -> ActiveJob:
    """Build the light job from HGETALL's flat list, tolerating missing or odd fields."""
    it = iter(raw_fields)
    fields: dict[str, str] = dict(zip(it, it, strict=False))
    get = fields.get
    return ActiveJob(
        id=job_id,
        name=get("name"),
        token=token,
        raw_data=get("data"),
        raw_opts=get("opts"),
        attempts_started=_int(get("ats")),
        attempts_made=_int(get("atm") or get("attemptsMade")),
        stalled_counter=_int(get("stc")),
        deferred_failure=get("defa") or None,
        repeat_job_key=get("rjk") or None,
        timestamp_ms=_int(get("timestamp")),
        processed_on_ms=_int(get("processedOn")),
        fields=fields,
    )


@dataclass(frozen=True, slots=True)
class NextJob:
    """What a hand-out reply says: a job, or when the next delayed job comes due."""

    job: ActiveJob | None
    delay_until_ms: int  # 0: no delayed job (or a job was handed out)
    limit_until_ms: int


NO_JOB = NextJob(None, 0, 0)


def parse_next(reply: Any, token: str) -> NextJob:
    """Read a moveToActive reply, or the fetch-next part of moveToFinished/moveToDelayed."""
    if not isinstance(reply, list) or len(reply) < 2:
        return NO_JOB  # 0: finished without fetching
    raw, job_id = reply[0], reply[1]
    limit_until = _int(str(reply[2])) if len(reply) > 2 else 0
    delay_until = 0
    if len(reply) > 3 and reply[3]:
        # A delayed score / 0x1000 (a float in Lua, an integer reply here): due at floor(ms).
        try:
            delay_until = math.floor(float(reply[3]))
        except (TypeError, ValueError):
            delay_until = 0
    if isinstance(raw, list) and job_id:
        return NextJob(parse_job(raw, str(job_id), token), 0, limit_until)
    return NextJob(None, delay_until, limit_until)


@dataclass(frozen=True, slots=True)
class StalledAttempt:
    """An attempt BullMQ's stalled check took back, captured in the check's own transaction
    (broker/scripts.py `stalled_check`): the job as it was when its worker lost it."""

    job_id: str
    attempt: int  # ats when the check ran: the attempt that stalled
    stalls: int  # stc after the check: this stall included
    name: str | None
    raw_data: str | None  # JSON text as Redis held it
    processed_on_ms: int | None  # when the attempt started
    deferred_failure: str | None  # set once the job stalled too often: it fails without a run
    at_ms: int  # when the check took it back
    limit: int  # the check's max stalled count
    lock_ms: int  # the lock duration the worker failed to renew within

    @classmethod
    def from_json(cls, text: str | bytes) -> StalledAttempt:
        """Read one capture; raises ValueError for anything else."""
        try:
            fields = json.loads(text)["stalled"]
            return cls(
                job_id=str(fields["job_id"]),
                attempt=max(int(fields["attempt"]), 1),
                stalls=int(fields["stalls"]),
                name=_text(fields["name"]),
                raw_data=_text(fields["data"]),
                processed_on_ms=int(fields["processed_on"]) if fields["processed_on"] else None,
                deferred_failure=_text(fields["deferred"]),
                at_ms=int(fields["at"]),
                limit=int(fields["limit"]),
                lock_ms=int(fields["lock_ms"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a stalled-attempt capture: {exc}") from exc


def _text(value: Any) -> str | None:
    """A Lua capture's string field; `false` (Lua's stand-in for nil) is None."""
    return value if isinstance(value, str) else None
