"""The hooks a worker process runs around every attempt, called in order with errors contained."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from quickdapp.app.server_app import ServerApp
from quickdapp.attempts import Attempt, AttemptHook, Command, JobExecution, Skip
from quickdapp.audit.hook import AuditHook
from quickdapp.exclusive import ExclusiveLock
from quickdapp.metrics import MetricsHook

logger = logging.getLogger(__name__)


class Hooks:
    """An ordered set of hooks: `before` in order; `finishing`, `after` and `stalled` in
    reverse order.

    A hook that fails in `before` fails the attempt; one that fails in `finishing`, `after` or
    `stalled` is logged and the others still run, so one broken hook never hides an attempt
    from the rest.
    """

    def __init__(self, hooks: Sequence[AttemptHook]) -> None:
        hooks = tuple(hooks)
        # Per call, only the hooks that override it (the rest would be no-ops, on every attempt).
        self._before = _overriding(hooks, "before")
        self._finishing = _overriding(hooks, "finishing")[::-1]
        self._after = _overriding(hooks, "after")[::-1]
        self._stalled = _overriding(hooks, "stalled")[::-1]
        streams = {hook.stalled_stream for hook in hooks} - {None}
        if len(streams) > 1:
            raise ValueError(f"hooks ask for stalled attempts in more than one stream: {streams}")
        self.stalled_stream: str | None = streams.pop() if streams else None
        """Where the stalled check adds each attempt it takes back, in its own transaction."""

    async def before(self, attempt: Attempt) -> Skip | None:
        for hook in self._before:
            skip = await hook.before(attempt)
            if skip is not None:
                return skip
        return None

    def finishing(self, execution: JobExecution, token: str) -> list[Command]:
        commands: list[Command] = []
        for hook in self._finishing:
            try:
                commands.extend(hook.finishing(execution, token))
            except Exception:
                logger.exception("%s.finishing failed for job %s", type(hook).__name__, execution.job_id)
        return commands

    async def after(self, execution: JobExecution, recorded: bool) -> None:
        for hook in self._after:
            try:
                await hook.after(execution, recorded)
            except Exception:
                logger.exception("%s.after failed for job %s", type(hook).__name__, execution.job_id)

    async def stalled(self, execution: JobExecution) -> None:
        for hook in self._stalled:
            try:
                await hook.stalled(execution)
            except Exception:
                logger.exception("%s.stalled failed for job %s", type(hook).__name__, execution.job_id)


def _overriding(hooks: Sequence[AttemptHook], method: str) -> tuple[AttemptHook, ...]:
    base = getattr(AttemptHook, method)
    return tuple(hook for hook in hooks if getattr(type(hook), method) is not base)


def standard_hooks(app: ServerApp, *, audit: bool = True) -> Hooks:
    """What every worker process runs: the exclusive lock, the audit trail, the metrics.

    `audit=False` leaves the audit trail out: only for measuring what it costs (bench/).
    """
    exclusive = [definition.name for definition in app.registry if definition.exclusive]
    lock = ExclusiveLock(app.redis, exclusive, app.settings.worker_queue_lock_duration)
    return Hooks([lock, AuditHook(), MetricsHook()] if audit else [lock, MetricsHook()])
