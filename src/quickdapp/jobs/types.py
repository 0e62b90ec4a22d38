"""The shapes a job handler sees: its definition and the context of one run."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, ValidationError

from quickdapp.config import Settings
from quickdapp.errors import JobValidationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from quickdapp.chain.client import ChainClient

DataT = TypeVar("DataT", bound=BaseModel)


class JobData(BaseModel):
    """Base of every job's data model: unknown fields and wrong types are refused, never coerced.

    NaN and infinities are kept as they are when dumped (not turned into null), so that
    submit refuses them: they are not JSON.
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        ser_json_inf_nan="constants",
    )


class JobResources(Protocol):
    """What handlers reach through `ctx.app`: the process's settings and connections.

    The ServerApp of each process provides them; a handler needs nothing above this layer.
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def redis(self) -> aioredis.Redis: ...

    @property
    def chain(self) -> ChainClient | None:
        """The chain client when CHAIN_RPC_URL is set, else None."""


class JobReporter(Protocol):
    """What a handler can tell BullMQ about its job while it runs (Bull Board shows both)."""

    async def update_progress(self, value: Any) -> None:
        """Store the job's progress (a number or any JSON value) and emit BullMQ's event."""

    async def add_log(self, line: str) -> None:
        """Append a line to the job's log."""


class SilentReporter(JobReporter):
    """A reporter that keeps nothing: for running a handler outside a worker (a script, a test)."""

    async def update_progress(self, value: Any) -> None:
        return None

    async def add_log(self, line: str) -> None:
        return None


@dataclass(frozen=True)
class JobContext(Generic[DataT]):
    """Everything a handler gets for one run of one job."""

    app: JobResources
    logger: logging.LoggerAdapter[logging.Logger]
    job_id: str
    type: str
    user_id: int | None
    data: DataT
    attempt: int
    report: JobReporter = field(default_factory=SilentReporter)


AsyncHandler = Callable[[JobContext[Any]], Awaitable[Any]]
BlockingHandler = Callable[[JobContext[Any]], Any]


@dataclass(frozen=True)
class JobDefinition(Generic[DataT]):
    """A job type: its name, data model, BullMQ priority (lower runs first) and handler.

    A handler that blocks (CPU work, synchronous libraries) is declared `blocking=True` and
    runs in a thread, so the event loop keeps renewing job locks meanwhile. An `exclusive`
    type runs at most once at a time across all workers; a run that would overlap is skipped.
    """

    name: str
    model: type[DataT]
    priority: int
    handler: AsyncHandler | BlockingHandler | str
    """The handler, or "module:function" to import it on the type's first run, so processes
    that never run the type never load what it needs (web3, for the chain jobs)."""
    blocking: bool = False
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    exclusive: bool = False

    def parse(self, data: Any) -> DataT:
        """Validate `data` against the model; raises JobValidationError naming each bad field."""
        try:
            return self.model.model_validate(data if data is not None else {})
        except ValidationError as exc:
            raise JobValidationError(self.name, exc.errors()) from None

    async def run(self, context: JobContext[DataT]) -> Any:
        handler = _load(self.handler) if isinstance(self.handler, str) else self.handler
        if self.blocking:
            return await asyncio.to_thread(handler, context)
        return await handler(context)


@cache
def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)
