"""The errors several layers raise or catch, in one neutral place every layer may import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class SettingsError(Exception):
    """The environment holds a value the system cannot start with."""


class StartupRefusedError(Exception):
    """A process must not start as things are (say why in one line, and what to do)."""


class ServiceUnavailableError(RuntimeError):
    """A service the command needs (Redis, a chain node) does not answer and cannot be started."""


class PermanentJobError(Exception):
    """A failure that another attempt cannot fix: the job fails at once, without retries."""


class UnknownJobTypeError(PermanentJobError, LookupError):
    """No job type of that name is registered."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        # Cut short: the name comes from whoever submitted, and may be any size.
        shown = repr(name) if len(name) <= 100 else repr(name[:100]) + "..."
        super().__init__(f"unknown job type {shown}; known types: {', '.join(sorted(known))}")
        self.name = name


class PayloadTooLargeError(ValueError):
    """Job data whose JSON is larger than MAX_JOB_PAYLOAD_BYTES: refused, nothing enqueued."""


class JobValidationError(PermanentJobError, ValueError):
    """Job data that does not fit its type's model; names the type and each bad field."""

    def __init__(self, job_type: str, problems: Sequence[Mapping[str, Any]]) -> None:
        # Field names come from the submitter (an unknown key is named): each is cut short.
        described = "; ".join(
            f"{'.'.join(str(part)[:100] for part in issue['loc']) or '(data)'}: {issue['msg']}"
            for issue in problems[:20]
        )
        super().__init__(f"invalid data for job type {job_type!r}: {described}")
        self.job_type = job_type
        self.errors = list(problems)


class JobBatchError(ValueError):
    """One job of a batch was refused (so none of the batch was enqueued); names its index."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"jobs[{index}]: {error}")
        self.index = index
        self.error = error
