"""The web UIs in the GlobE working languages: Arabic, English, French and Spanish.

Shared by the node's investigator UI and the administrators' console: each keeps its
templates in ``<root>/templates`` and its catalogues in ``<root>/locale``.  Every
string a page shows is a gettext message: in the templates as ``_("…")``, in Python
marked with :func:`N_` where it is defined and translated where it is shown.  The
catalogues are the committed ``locale/<lang>/LC_MESSAGES/webui.po`` files; they are
compiled in memory when the UI starts (Babel reads the ``.po``, writes the ``.mo`` to a
buffer), so there is no build step and no compiled file to go stale.  English is the
source language: its catalogue only lists the messages.

Dates, times, durations and numbers are formatted by Babel with CLDR's data for the
page's language; country names are CLDR's too, through :mod:`protocol.countries`.
Times are shown in UTC and say so: the network's users work across time zones, and a
deadline must read the same to both parties.  Arabic pages are right to left.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import jinja2
from babel import Locale, negotiate_locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from babel.units import format_unit

from protocol.countries import country_names

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "N_",
    "RTL",
    "Catalogues",
    "Formats",
    "negotiate",
]

#: The UI's languages, the GlobE working languages; the first is the default.
LANGUAGES: Final = ("en", "fr", "es", "ar")
#: Languages written right to left: their pages have ``dir="rtl"`` and a mirrored layout.
RTL: Final = frozenset({"ar"})
#: Each language's own name, as the switcher shows it.
NATIVE: Final = {"en": "English", "fr": "Français", "es": "Español", "ar": "العربية"}
DOMAIN: Final = "webui"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention (extraction keyword)
    """Mark ``message`` for the catalogues; it is translated where it is shown."""
    return message


def negotiate(accept_language: str | None) -> str:
    """The UI language a browser prefers (``Accept-Language``), else English."""
    wanted = []
    for part in (accept_language or "").split(",")[:20]:
        tag = part.split(";")[0].strip().replace("-", "_")
        if tag:
            wanted.append(tag)
    return negotiate_locale(wanted, list(LANGUAGES)) or LANGUAGES[0]


def compile_catalogue(root: Path, language: str) -> Translations:
    """``language``'s committed ``.po`` file under ``root/locale``, compiled in memory."""
    path = root / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        catalogue = read_po(f, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


class Formats:
    """Dates, durations, numbers and countries in one language, at the clock's time."""

    def __init__(self, language: str, clock: Callable[[], int]) -> None:
        self.language = language
        self.locale = Locale.parse(language)
        self.clock = clock

    def when(self, ts: int | None) -> str:
        """A moment, in UTC (the caller's template says so)."""
        if ts is None:
            return ""
        return format_datetime(
            datetime.fromtimestamp(ts, UTC), "medium", tzinfo=UTC, locale=self.locale
        )

    def iso(self, ts: int | None) -> str:
        """A moment for a ``datetime`` attribute (machine-readable)."""
        if ts is None:
            return ""
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def countdown(self, ts: int) -> str:
        """How far ``ts`` is from now: "in 8 hours", "3 hours ago" (in the language)."""
        return format_timedelta(
            timedelta(seconds=ts - self.clock()), add_direction=True, locale=self.locale
        )

    def duration(self, seconds: int) -> str:
        """A length of time in its largest whole unit: "50 minutes", "2 days" (a response
        time; ``countdown`` says how far a moment is from now instead)."""
        return format_timedelta(timedelta(seconds=seconds), threshold=1, locale=self.locale)

    def number(self, n: int) -> str:
        """A whole number with the language's grouping."""
        return format_decimal(n, locale=self.locale)

    def size(self, n: int) -> str:
        """A size in bytes."""
        return format_unit(n, "digital-byte", length="short", locale=self.locale)

    def country(self, authority: str) -> str:
        """The country of an authority id (``FR-PNF``), by name in this language."""
        code = authority.split("-", 1)[0]
        return country_names(code).get(self.language, code)


class Catalogues:
    """One Jinja environment per language, with its translations and formats: the
    templates of ``root/templates``, the catalogues of ``root/locale``."""

    def __init__(self, root: Path, clock: Callable[[], int], globals_: Mapping[str, Any]) -> None:
        self.envs: dict[str, jinja2.Environment] = {}
        self.translations: dict[str, Translations] = {}
        for language in LANGUAGES:
            translations = self.translations[language] = compile_catalogue(root, language)
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(root / "templates"),
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(  # type: ignore[attr-defined]
                translations, newstyle=True
            )
            env.globals.update(globals_)
            env.globals.update(
                lang=language,
                dir="rtl" if language in RTL else "ltr",
                fmt=Formats(language, clock),
                languages=[(code, NATIVE[code]) for code in LANGUAGES],
            )
            self.envs[language] = env

    def render(self, language: str, template: str, **context: Any) -> str:
        """``template`` rendered in ``language``."""
        return self.envs[language].get_template(template).render(**context)

    def gettext(self, language: str, message: str) -> str:
        """``message`` translated into ``language``."""
        return self.translations[language].gettext(message)
