"""Running `quickdapp` commands as subprocesses with the test's settings, never the defaults."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from quickdapp.config import Settings
from quickdapp.devtools.anvil import free_port
from tests.helpers.processes import settings_env


def process_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """The environment of a subprocess: the test's settings with `extra` (field names), PATH,
    and nothing else of this process's environment."""
    # model_copy does not validate: hand it the types the fields hold (paths as strings).
    values = {name: str(value) if isinstance(value, Path) else value for name, value in extra.items()}
    env = settings_env(settings.model_copy(update=values))
    return {"PATH": os.environ.get("PATH", ""), **env, "LOG_LEVEL": "WARNING"}


def quickdapp_command(env_file: Path, *args: str) -> list[str]:
    """`quickdapp --env-file ENV_FILE ARGS...` run from the repository root (cwd=ROOT)."""
    env_file.write_text("")  # every setting comes from the environment
    return [sys.executable, "-m", "quickdapp.cli", "--env-file", str(env_file), *args]


__all__ = ["free_port", "process_env", "quickdapp_command"]
