"""INSERT ... ON CONFLICT for whichever database the session is on (PostgreSQL or SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from sqlalchemy import Table
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


@cache
def skip_statement(
    dialect: str, table: Table, conflict: tuple[str, ...]
) -> postgresql.Insert | sqlite.Insert:
    """insert_or_skip for a table, built once per dialect: executed with a list of rows it is
    one statement per ~1,000 rows (insertmanyvalues), compiled once and then cached."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict))


@cache
def add_statement(
    dialect: str, table: Table, conflict: tuple[str, ...], add: tuple[str, ...]
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that, for a row clashing on `conflict`, adds the new values of the `add`
    columns to the stored ones (counters kept by upsert); built once per dialect."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(conflict),
        set_={name: table.c[name] + statement.excluded[name] for name in add},
    )
