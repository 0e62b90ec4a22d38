"""The commands that run the system in the foreground: dev, worker, workers and serve."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from quickdapp.app.server_app import ServerApp
from quickdapp.cli.audit_commands import roll_up_existing_rows
from quickdapp.cli.connections import with_app, with_database
from quickdapp.config import Settings
from quickdapp.redaction import redact

if TYPE_CHECKING:
    from quickdapp.workers.supervisor import Supervisor

logger = logging.getLogger("quickdapp")

DEV_REDIS_DIR = Path(".data/redis")
DEV_ANVIL_DIR = Path(".data/anvil")


def dev(settings: Settings, args: argparse.Namespace) -> int:
    """Local Redis (and anvil) when none answers, migrations, then the server with workers."""
    from quickdapp.db.migrate import upgrade
    from quickdapp.devtools.anvil import dev_anvil
    from quickdapp.devtools.redis_manager import RedisManager
    from quickdapp.workers.supervisor import Supervisor

    with (
        RedisManager(settings.redis_url, data_dir=DEV_REDIS_DIR, reuse=True),
        dev_anvil(settings, DEV_ANVIL_DIR),
    ):
        upgrade(settings.database_url)
        with_database(settings, roll_up_existing_rows)
        logger.info("database ready at %s", redact(settings.database_url))
        return _run_server(settings, Supervisor(settings))


def worker(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp worker`: one worker process, after the start-up checks."""
    from quickdapp.app.preflight import preflight
    from quickdapp.workers.process import run_worker_process

    asyncio.run(preflight(settings))
    return run_worker_process(settings)


def workers(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp workers`: WORKER_COUNT worker processes under the supervisor."""
    from quickdapp.app.preflight import preflight
    from quickdapp.workers.supervisor import run_supervisor

    asyncio.run(preflight(settings))  # once: the processes it restarts do not check again
    return run_supervisor(settings)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """`quickdapp serve`: the web server alone."""
    return _run_server(settings)


def _run_server(settings: Settings, supervisor: Supervisor | None = None) -> int:
    """The web server (with the supervisor's workers when given) until it is stopped."""
    from quickdapp.app.preflight import check_database, check_redis
    from quickdapp.web.auth import admin_credentials
    from quickdapp.web.server import dashboard_url, run_server

    credentials = admin_credentials(settings)
    exit_code = 0

    async def run(app: ServerApp) -> None:
        nonlocal exit_code
        await check_database(app.engine, settings.database_url)
        await check_redis(app.redis, settings)
        print(f"dashboard: {dashboard_url(settings)}  (user {credentials.username!r})", flush=True)
        exit_code = await run_server(app, credentials, supervisor)

    with_app(settings, run)
    return exit_code
