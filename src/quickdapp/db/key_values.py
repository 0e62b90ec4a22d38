"""The `settings` table: small key/value state of the system, such as watchChain's cursor."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from quickdapp.db.schema import Setting, utcnow


@dataclass(frozen=True)
class LockedSetting:
    """A settings row this transaction holds locked until it ends; `value` None means unset."""

    key: str
    value: str | None


async def ensure_setting(sessions: async_sessionmaker[AsyncSession], key: str) -> None:
    """Make sure row `key` exists (value unset when new), so there is a row to lock."""
    async with sessions.begin() as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert(Setting)
            .values(key=key, value=None, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["key"])
        )


async def lock_setting(session: AsyncSession, key: str) -> LockedSetting | None:
    """Lock row `key` for this transaction; None when another transaction holds it.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so a second holder never waits and never
    reads a value the first is about to change. SQLite has one writer at a time anyway.
    """
    row = await session.execute(
        select(Setting.key, Setting.value).where(Setting.key == key).with_for_update(skip_locked=True)
    )
    found = row.first()
    return LockedSetting(found.key, found.value) if found else None


async def get_setting(sessions: async_sessionmaker[AsyncSession], key: str) -> str | None:
    async with sessions() as session:
        value: str | None = await session.scalar(select(Setting.value).where(Setting.key == key))
        return value


async def set_setting(session: AsyncSession, key: str, value: str | None) -> None:
    """Set row `key` (which must exist) in the session's transaction."""
    await session.execute(
        update(Setting).where(Setting.key == key).values(value=value, updated_at=utcnow())
    )
