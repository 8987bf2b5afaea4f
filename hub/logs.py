"""Structured (JSON lines) logging for the hub.

One JSON object per line on stderr: time, level, logger, message, and any
``extra`` fields the call passed.  Log calls in the hub pass identifiers,
counts and error types, never message content, keys or passphrases.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

import orjson

__all__ = ["JsonFormatter", "configure"]

_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
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


def configure(level: int, *, json_lines: bool = True) -> None:
    """Install the hub's log handler on the root logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
