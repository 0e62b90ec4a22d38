"""The `quickdapp` command: dev, worker, submit, health, history, rollups, migrate, schedules.

Each command imports what it needs when it runs: `submit` must not pay for FastAPI, uvicorn,
Alembic or web3, nor a worker process for the web server (tests/test_imports.py checks it).
"""

from __future__ import annotations

import sys

from redis.exceptions import ConnectionError as RedisConnectionError

from quickdapp.cli.parser import build_parser
from quickdapp.config import load_settings
from quickdapp.errors import (
    PermanentJobError,
    ServiceUnavailableError,
    SettingsError,
    StartupRefusedError,
)
from quickdapp.logs import configure_logging

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names; its exit code (2 for a usage or settings error)."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.env_file)
    except SettingsError as exc:
        print(f"quickdapp: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, secrets=settings.secret_values)
    try:
        result: int = args.command(settings, args)
        return result
    except (
        PermanentJobError,
        ValueError,
        LookupError,
        SettingsError,
        RedisConnectionError,
        ConnectionError,  # the broker's connection (the builtin's subclass): Redis does not answer
        ServiceUnavailableError,
        StartupRefusedError,
    ) as exc:
        print(f"quickdapp: {exc}", file=sys.stderr)
        return 2
