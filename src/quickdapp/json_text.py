"""Compact JSON text, as BullMQ and the audit trail store it.

`json.dumps` builds a new encoder on every call that passes an option; these are built once,
which saves a microsecond or two on each of the several encodings a job goes through.
"""

from __future__ import annotations

import json
from typing import Any

_STRICT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_LENIENT = json.JSONEncoder(separators=(",", ":"), default=str)


def compact(value: Any) -> str:
    """`value` as compact JSON; raises ValueError for NaN or an infinity (JSON has neither)
    and TypeError for what JSON cannot hold."""
    return _STRICT.encode(value)


def compact_or_text(value: Any) -> str:
    """`value` as compact JSON, anything JSON cannot hold kept as its text (str)."""
    return _LENIENT.encode(value)
