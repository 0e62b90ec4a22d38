"""The audit trail as an attempt hook: every attempt that ends becomes an entry of the audit
stream, which the audit writer moves into `worker_jobs`."""

from __future__ import annotations

from collections.abc import Sequence

from quickdapp.attempts import AttemptHook, Command, JobExecution
from quickdapp.audit import stream
from quickdapp.keys import AUDIT_STREAM, job_lock_key


class AuditHook(AttemptHook):
    """Adds each attempt's entry atomically with its end in BullMQ; a stalled attempt's is
    added by the stalled check's own transaction (`stalled_stream`)."""

    stalled_stream = AUDIT_STREAM

    def finishing(self, execution: JobExecution, token: str) -> Sequence[Command]:
        entry = stream.encode(execution)
        lock = job_lock_key(execution.job_id)
        # EVAL, not EVALSHA: this runs inside MULTI, where a missing script would let BullMQ's
        # call go through without its audit entry.
        return [("EVAL", stream.GUARDED_ADD, 2, lock, AUDIT_STREAM, token, entry)]
