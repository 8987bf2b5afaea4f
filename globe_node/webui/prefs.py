"""Each user's UI language, kept in the node directory (``webui.json``, mode 0600).

A small file rather than a column of the users table: the preference is the UI's
alone, and it needed no schema change.  It is written atomically and durably
(:func:`globe_io.files.write_atomic`); an unreadable or malformed file is a
preference lost (the browser's language applies), never a page refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import orjson

from globe_io.files import write_atomic
from globe_io.webui.i18n import LANGUAGES

__all__ = ["PREFS_FILE", "Preferences"]

log = logging.getLogger("globe.node.webui")

#: The file's name in the node directory.
PREFS_FILE: Final = "webui.json"


class Preferences:
    """Users' UI languages, read once and written on each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._languages: dict[str, str] = {}
        try:
            data = orjson.loads(path.read_bytes())
            stored = data["languages"]
            self._languages = {
                str(user): lang for user, lang in stored.items() if lang in LANGUAGES
            }
        except FileNotFoundError:
            pass
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring the web UI preferences in %s: %s", path, exc)

    def language(self, user: str) -> str | None:
        """The language ``user`` chose, if any."""
        return self._languages.get(user)

    def set_language(self, user: str, language: str) -> None:
        """Keep ``language`` (one of :data:`LANGUAGES`) as ``user``'s."""
        if language not in LANGUAGES:
            raise ValueError(f"not a UI language: {language!r}")
        self._languages[user] = language
        data = {"languages": dict(sorted(self._languages.items()))}
        write_atomic(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
