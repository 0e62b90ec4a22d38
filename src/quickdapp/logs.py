"""Logging for the processes of the system: one format, set up once by each entry point."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Log to stderr at `level` in the system's format (entry points only; libraries never)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
