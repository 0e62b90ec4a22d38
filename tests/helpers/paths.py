"""Where things are in the checkout, for every test and helper."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root: the working folder of `quickdapp` subprocesses."""
