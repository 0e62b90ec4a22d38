"""Settings handed to `quickdapp` subprocesses, so they use exactly the test's services."""

from __future__ import annotations

from quickdapp.config import Settings
from tests.helpers.paths import ROOT


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting that has a value, as environment variables (unset ones stay unset), and
    PYTHONPATH, so the test job modules import whatever the subprocess's working folder."""
    env = {
        name.upper(): str(value) for name, value in settings.model_dump().items() if value is not None
    }
    return {**env, "PYTHONPATH": str(ROOT)}
