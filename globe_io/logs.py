"""Logging for the two daemons, ``globe-hub serve`` and ``globe-node run``, set up once.

Both log to stderr (so to the journal under systemd), either one JSON object per line
(``--log-format json``: time, level, logger, message, and any ``extra`` fields the call
passed) or ``time level logger: message`` (``--log-format text``).  Log calls pass
identifiers, counts and error types, never message content, keys or passphrases; a
record's exception is rendered as its type only, so no traceback text (which may quote
the values in play) reaches a log collector.

Libraries are quiet by default: aiohttp, asyncio, Alembic, SQLAlchemy and asyncpg log
at WARNING and above unless the level is ``debug``, so an INFO log says what the
daemon did, not what its libraries noticed on the way (Alembic's per-start banner,
aiohttp's access lines).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

import orjson

__all__ = ["LEVELS", "LIBRARIES", "JsonFormatter", "configure"]

#: The ``--log-level`` choices.
LEVELS: Final = ("debug", "info", "warning", "error")
#: Loggers of third-party libraries held at WARNING unless the level is ``debug``.
LIBRARIES: Final = ("aiohttp", "asyncio", "alembic", "sqlalchemy", "asyncpg", "aiosqlite")
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Render records as single-line JSON objects."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__  # the type only: no traceback text
        return orjson.dumps(out).decode()


def configure(level: str, *, json_lines: bool) -> None:
    """Install the daemon's one handler on the root logger at ``level`` (one of :data:`LEVELS`).

    Libraries (:data:`LIBRARIES`) are held at WARNING unless ``level`` is ``debug``.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(_TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    library_level = logging.NOTSET if level == "debug" else logging.WARNING
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(library_level)
