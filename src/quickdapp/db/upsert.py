"""INSERT ... ON CONFLICT DO NOTHING for whichever database the session is on."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from quickdapp.db.schema import Base


def insert_or_skip(
    session: AsyncSession, model: type[Base], conflict: Sequence[str]
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `model`'s table that skips rows clashing on the unique `conflict` columns.

    PostgreSQL and SQLite spell it the same way, but SQLAlchemy builds it per dialect.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(index_elements=list(conflict))


def insert_or_add(
    session: AsyncSession, model: type[Base], conflict: Sequence[str], add: Sequence[str]
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `model`'s table that, for a row clashing on `conflict`, adds the new
    values of the `add` columns to the stored ones (counters kept by upsert)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(model)
    table = model.__table__
    return statement.on_conflict_do_update(
        index_elements=list(conflict),
        set_={name: table.c[name] + statement.excluded[name] for name in add},
    )
