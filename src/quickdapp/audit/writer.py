"""The audit writer: moves attempts from the Redis stream into `worker_jobs`, a batch per commit.

Entries are acknowledged (and deleted from the stream) only after their batch is committed, so
a database that is slow or down delays the rows and loses none: while it is away the entries
wait in Redis, and the writer retries the same batch until it lands. Entries go to the store as
read (PostgreSQL parses their JSON itself); one that is not an attempt is dropped with an error
logged when its batch fails for it. A row the database refuses for what it holds, while it
stores the rest of its batch, is dropped with an error logged (the store already makes the
known cases fit: U+0000, NaN, over-long names), so that it cannot hold back every row after
it; a batch of which nothing can be stored waits and is retried. Several writers (one per
supervisor) share the stream as one consumer group; the pending entries of a writer that died
are claimed by another after CLAIM_IDLE_MS. Storing is idempotent (unique
(job_id, attempt)), so an entry stored twice is still one row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.audit.store import record_entries
from quickdapp.audit.stream import FIELD, NotAnEntry, decode
from quickdapp.broker.connection import Arg, Connection, ReplyError
from quickdapp.keys import AUDIT_GROUP, AUDIT_STREAM

logger = logging.getLogger(__name__)

BATCH = 1_000  # entries per commit at most
BLOCK_MS = 50  # how long a read waits for the next entry: bounds how late a row lands
PERIOD = 0.025  # seconds: while entries keep coming, at most one batch per PERIOD (see _move)
CLAIM_IDLE_MS = 10_000  # a pending entry idle this long belongs to a writer that died
CLAIM_EVERY = 1.0  # seconds between looks for such entries
RETRY_FIRST, RETRY_MAX = 0.2, 5.0  # seconds between tries of a batch the database refused

Entry = tuple[str, str | None]  # its id in the stream, and its text (None: not an audit entry)
Readable = tuple[str, str]  # an entry with its text


class AuditWriter:
    """One consumer of the audit stream, named `consumer` (unique per process), on its own
    pipelined connection to `redis_url` (closed when `run` returns). Made on an event loop."""

    def __init__(
        self,
        redis_url: str,
        sessions: async_sessionmaker[AsyncSession],
        *,
        consumer: str,
        batch: int = BATCH,
        period: float = PERIOD,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ) -> None:
        self._conn = Connection(redis_url, name=f"quickdapp:audit-writer:{consumer}")
        self._sessions = sessions
        self._consumer = consumer
        self._batch = batch
        self._period = period
        self._claim_idle_ms = claim_idle_ms
        self._next_claim = 0.0
        self._failing_since: float | None = None
        self._stop = asyncio.Event()
        self._deadline: float | None = None

    async def run(self, stop: asyncio.Event, *, drain_timeout: float = 5.0) -> None:
        """Move entries until `stop` is set, then those still arriving for up to
        `drain_timeout` seconds (the last jobs of workers that are closing), then return."""
        self._stop = stop
        try:
            await self._join_group()
            await self._move(drain_timeout)
        finally:
            await self._conn.close()

    async def _move(self, drain_timeout: float) -> None:
        """Read and store batches. A batch costs this process about as much as a few dozen
        rows (about 1 ms of CPU), so while entries keep coming the writer reads at most once
        per `period` (PERIOD) and takes what gathered meanwhile; the first entry after a quiet
        spell is stored at once. A row thus lands within `period` plus one commit of its
        attempt's end (`bench/audit_writer.py --rate` measures what the period saves)."""
        while not self._out_of_time(drain_timeout):
            started = time.monotonic()
            try:
                entries = await self._next_entries(block=not self._stop.is_set())
            except Exception as exc:  # Redis away: the entries wait there, try again
                logger.warning("audit writer cannot read the stream: %s: %s", type(exc).__name__, exc)
                await self._pause(RETRY_MAX)
                continue
            if not entries and self._stop.is_set():
                return
            if entries and not await self._store(entries, drain_timeout):
                break
            rest = started + self._period - time.monotonic()
            if 0 < len(entries) < self._batch and rest > 0 and not self._stop.is_set():
                await self._pause(rest)
        logger.warning("audit writer stopped with entries left: another writer stores them")

    def _out_of_time(self, drain_timeout: float) -> bool:
        if not self._stop.is_set():
            return False
        if self._deadline is None:
            self._deadline = time.monotonic() + drain_timeout
        return time.monotonic() > self._deadline

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less when the writer is asked to stop (never less once stopping)."""
        if self._stop.is_set():
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _join_group(self) -> None:
        try:
            await self._conn.execute("XGROUP", "CREATE", AUDIT_STREAM, AUDIT_GROUP, "0", "MKSTREAM")
        except ReplyError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _next_entries(self, *, block: bool) -> list[Entry]:
        """Entries of writers that died first (now and then), else new ones."""
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + CLAIM_EVERY
            claimed: Any = await self._conn.execute(
                "XAUTOCLAIM", AUDIT_STREAM, AUDIT_GROUP, self._consumer, self._claim_idle_ms,
                "0-0", "COUNT", self._batch,
            )  # fmt: skip
            if claimed[1]:
                logger.info(
                    "audit writer took over %d entries of a writer that stopped", len(claimed[1])
                )
                return [_entry(entry_id, fields) for entry_id, fields in claimed[1]]
        wait: tuple[Arg, ...] = ("BLOCK", BLOCK_MS) if block else ()
        replies: Any = await self._conn.execute(
            "XREADGROUP", "GROUP", AUDIT_GROUP, self._consumer, "COUNT", self._batch, *wait,
            "STREAMS", AUDIT_STREAM, ">",
        )  # fmt: skip
        return [
            _entry(entry_id, fields) for _, messages in replies or [] for entry_id, fields in messages
        ]

    async def _store(self, entries: Sequence[Entry], drain_timeout: float) -> bool:
        """Commit `entries`, retrying while the database refuses; then acknowledge them.
        False when the writer ran out of time while stopping (they stay pending)."""
        readable = [(entry_id, text) for entry_id, text in entries if text is not None]
        delay = RETRY_FIRST
        while readable:
            try:
                await record_entries(self._sessions, [text for _, text in readable])
            except Exception as exc:
                if _about_rows(exc):
                    attempts = _attempts(readable)
                    if len(attempts) < len(readable):  # dropped what is not an attempt: again
                        readable = attempts
                        continue
                    if await self._store_around_refused(readable):
                        break
                self._failed(exc, len(entries))
                if self._out_of_time(drain_timeout):
                    return False
                await self._pause(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            self._stored()
            break
        ids = [entry_id for entry_id, _ in entries]
        try:
            await self._conn.transaction(
                [("XACK", AUDIT_STREAM, AUDIT_GROUP, *ids), ("XDEL", AUDIT_STREAM, *ids)]
            )
        except Exception as exc:  # stored but not acknowledged: claimed and stored again, harmlessly
            logger.warning("audit writer cannot acknowledge entries: %s: %s", type(exc).__name__, exc)
        return True

    async def _store_around_refused(self, entries: list[Readable]) -> bool:
        """After the database refused a batch for what a row holds: store the batch in parts
        and drop, with an error logged, each row it refuses on its own, so that one row it
        can never hold does not hold back every row after it. False (nothing dropped) when
        no part could be stored: then the cause is not a row, and the batch is retried."""
        refused = await self._isolate(entries) if len(entries) > 1 else None
        if refused is None or len(refused) == len(entries):
            return False
        for (_, text), error in refused:
            execution = decode(text)
            logger.error(
                "audit row of job %s attempt %d dropped: the database refuses it: %s",
                execution.job_id,
                execution.attempt,
                error,
            )
        self._stored()
        return True

    async def _isolate(self, entries: list[Readable]) -> list[tuple[Readable, BaseException]] | None:
        """Store `entries` (two or more) in halves, and halves of the halves that fail; the
        entries refused on their own, or None when a part failed for another reason (the
        database went away)."""
        refused: list[tuple[Readable, BaseException]] = []
        half = len(entries) // 2
        for part in (entries[:half], entries[half:]):
            try:
                await record_entries(self._sessions, [text for _, text in part])
            except Exception as exc:
                if not _about_rows(exc):
                    return None
                if len(part) == 1:
                    refused.append((part[0], exc))
                    continue
                found = await self._isolate(part)
                if found is None:
                    return None
                refused += found
        return refused

    def _failed(self, error: BaseException, waiting: int) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            logger.warning(
                "audit rows cannot be stored (%s: %s); %d wait in Redis, retrying",
                type(error).__name__,
                error,
                waiting,
            )

    def _stored(self) -> None:
        if self._failing_since is not None:
            seconds = time.monotonic() - self._failing_since
            self._failing_since = None
            logger.info("audit rows are stored again after %.1fs", seconds)


def _about_rows(error: BaseException) -> bool:
    """Whether the batch failed for the values it holds: an entry that is not an attempt, or
    PostgreSQL refused a statement for the values it was given (SQLSTATE classes 22, data
    exception, and 23, integrity constraint violation); not for a lost connection or another
    cause that no row of its own can be blamed for."""
    if isinstance(error, NotAnEntry):
        return True
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23")


def _attempts(entries: list[Readable]) -> list[Readable]:
    """`entries` without those that are not attempts, each dropped with an error logged."""
    kept = []
    for entry_id, text in entries:
        try:
            decode(text)
        except NotAnEntry as exc:
            logger.error("dropping audit stream entry %s: %s", entry_id, exc)
            continue
        kept.append((entry_id, text))
    return kept


def _entry(entry_id: str, fields: list[str] | None) -> Entry:
    """An entry as XREADGROUP returns it: its id and [field, value, ...] (None once deleted).
    Its text is read where it is stored (audit/store.py); one that is not an attempt makes
    its batch fail, and is then dropped (`_attempts`)."""
    text = None if fields is None else dict(zip(fields[::2], fields[1::2], strict=False)).get(FIELD)
    if text is None:
        # Not ours, or deleted: keeping it would block nothing but would be retried forever.
        logger.error("dropping audit stream entry %s: not an audit entry", entry_id)
    return entry_id, text
