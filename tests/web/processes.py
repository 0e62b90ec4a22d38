"""Running `quickdapp` commands as subprocesses with the test's settings, never the defaults."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

from quickdapp.config import Settings
from tests.conftest import ROOT, TEST_JOB_MODULE


def process_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """The environment of a subprocess: the test's settings, plus `extra`, and nothing else."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": settings.database_url,
        "JOB_MODULES": TEST_JOB_MODULE,
        "APP_ENV": settings.app_env,
        "ADMIN_USERNAME": settings.admin_username,
        "ADMIN_PASSWORD": settings.admin_password,
        "ADMIN_TOKEN": settings.admin_token,
        "METRICS_DIR": settings.metrics_dir,
        "WORKER_QUEUE_JOB_ATTEMPTS": str(settings.worker_queue_job_attempts),
        "LOG_LEVEL": "WARNING",
    }
    env.update({key.upper(): str(value) for key, value in extra.items()})
    return env


def quickdapp_command(env_file: Path, *args: str) -> list[str]:
    """`quickdapp --env-file ENV_FILE ARGS...` run from the repository root (cwd=ROOT)."""
    env_file.write_text("")  # every setting comes from the environment
    return [sys.executable, "-m", "quickdapp.cli", "--env-file", str(env_file), *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


__all__ = ["ROOT", "free_port", "process_env", "quickdapp_command"]
