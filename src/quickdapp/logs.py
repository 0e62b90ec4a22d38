"""Logging for the processes of the system: one format, set up once by each entry point."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from quickdapp.redaction import MASK, secret_parts

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"
MIN_SECRET = 6  # shorter literal secrets are not masked: they would mangle ordinary words
# Libraries that say at INFO what only their own developers need (Alembic lists its plugins
# each time it is imported: lazily, in the middle of a command's output).
QUIET = {"alembic.runtime.plugins": logging.WARNING}


def configure_logging(level: str, *, secrets: Iterable[str | None] = ()) -> None:
    """Log to stderr at `level` in the system's format (entry points only; libraries never).

    Every line, exception text included, is cleaned of `secrets`: the secret pieces of URLs
    (password, keys, an RPC node's path token: quickdapp.redaction.secret_parts) and other
    values are masked wherever they appear. Our own code logs redacted URLs already; this
    catches what libraries log (web3 logs the node's full URL at DEBUG).
    """
    root = logging.getLogger()
    if root.handlers:
        return  # configured already: left alone, as logging.basicConfig would
    root.setLevel(level)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    values = [secret for secret in secrets if secret]
    if values:
        handler.addFilter(SecretFilter(values))
    root.addHandler(handler)
    for name, quiet_level in QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)


class SecretFilter(logging.Filter):
    """Rewrites each record without the secrets before a handler formats it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        pieces = {piece for secret in secrets if "://" in secret for piece in secret_parts(secret)}
        pieces.update(s for s in secrets if "://" not in s and len(s) >= MIN_SECRET)
        self._pieces = sorted(pieces, key=len, reverse=True)

    def clean(self, text: str) -> str:
        for piece in self._pieces:
            text = text.replace(piece, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # The formatter uses exc_text when it is set: give it the scrubbed traceback.
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
        return True
