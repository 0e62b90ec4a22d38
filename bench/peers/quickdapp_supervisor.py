"""`quickdapp workers` whose worker processes run no audit hook (bench/peers/quickdapp_worker.py).

Settings come from the environment as for the real command. Its AuditWriter runs as usual and
finds nothing to write.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop

from quickdapp.config import load_settings
from quickdapp.logs import configure_logging
from quickdapp.signals import on_stop_signals
from quickdapp.workers.supervisor import Supervisor


async def _supervise() -> int:
    settings = load_settings(None)
    configure_logging(settings.log_level, secrets=settings.secret_values)
    supervisor = Supervisor(settings, command=[sys.executable, "-m", "bench.peers.quickdapp_worker"])
    stop = asyncio.Event()
    on_stop_signals(stop, what="stopping the worker processes", now=supervisor.kill_all)
    return await supervisor.run(stop)


if __name__ == "__main__":
    sys.exit(uvloop.run(_supervise()))
