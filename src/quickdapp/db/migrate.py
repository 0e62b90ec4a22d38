"""Apply the Alembic migrations that ship inside the package (no alembic.ini needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default: where it keeps the revision applied


def alembic_config(database_url: str) -> Config:
    """An Alembic config for `database_url`, pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Kept as an attribute, not an ini option: ini interpolation would mangle '%' in passwords.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` up to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """`upgrade` from inside a running event loop (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade, database_url, revision)


def head_revisions() -> set[str]:
    """The revisions the packaged migrations end at (one, unless branches are open)."""
    return set(ScriptDirectory.from_config(alembic_config("")).get_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The revisions the database at `engine` is at; empty for a database never migrated."""

    def read(connection: Connection) -> set[str]:
        # Read directly: Alembic's MigrationContext logs two INFO lines each time it is made.
        if not inspect(connection).has_table(VERSION_TABLE):
            return set()
        return {
            str(row[0]) for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        }

    async with engine.connect() as connection:
        return await connection.run_sync(read)
