"""The UI's languages: every message of the templates and of the labels is in each
catalogue and translated in French, Spanish and Arabic; no template holds a string that
is not a message; the browser's language is negotiated; formats follow the language."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from globe_io.webui.i18n import (
    LANGUAGES,
    Catalogues,
    Formats,
    compile_catalogue,
    negotiate,
)
from globe_node.webui.app import UI_ROOT

PACKAGE = UI_ROOT
LOCALE_DIR = UI_ROOT / "locale"
TEMPLATE_DIR = UI_ROOT / "templates"
#: Attributes a person reads (or hears): they must be messages too.
READ_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "data-failed", "data-uploading"}


def extracted() -> set[str]:
    """Every message the templates and the Python modules mark."""
    found = extract_from_dir(
        str(PACKAGE),
        [("templates/**.html", "jinja2"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "N_": None},
    )
    return {m if isinstance(m, str) else m[0] for _, _, m, _, _ in found}


def catalogue(language: str) -> dict[str, str]:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "webui.po").open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogue_holds_exactly_the_messages_of_the_ui(language: str) -> None:
    messages = extracted()
    assert len(messages) > 150
    assert set(catalogue(language)) == messages


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_every_message_is_translated_keeping_its_placeholders(language: str) -> None:
    for msgid, text in catalogue(language).items():
        assert text, f"{language}: {msgid!r} is not translated"
        assert re.findall(r"%\(\w+\)s", text) == re.findall(r"%\(\w+\)s", msgid), msgid


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_data(self, data: str) -> None:
        self.found.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [v or "" for k, v in attrs if k in READ_ATTRIBUTES]


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATE_DIR.glob("*.html")))
def test_no_template_shows_a_string_that_is_not_a_message(template: str) -> None:
    source = (TEMPLATE_DIR / template).read_text(encoding="utf-8")
    bare = re.sub(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", "", source, flags=re.S)
    parser = _Text()
    parser.feed(bare)
    # what is left may hold punctuation, symbols and the TLP prefix (the same in every
    # language), never a word
    leftovers = [t for t in parser.found if re.search(r"[^\W\d_]", t.replace("TLP:", ""))]
    assert leftovers == []


def test_the_no_string_check_catches_a_bare_word(tmp_path: Path) -> None:
    parser = _Text()
    parser.feed('<p>Inbox</p><input placeholder="Search">')
    assert parser.found == ["Inbox", "Search"]


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("es-419,es;q=0.9", "es"),
        ("ar-EG,ar;q=0.9", "ar"),
        ("de-DE,de;q=0.9", "en"),
        ("", "en"),
        (None, "en"),
        ("de, fr;q=0.5", "fr"),
    ],
)
def test_the_browsers_language_is_negotiated(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_formats_follow_the_language_and_the_nodes_clock() -> None:
    now = 1_800_000_000
    fr, ar = Formats("fr", lambda: now), Formats("ar", lambda: now)
    assert fr.countdown(now + 8 * 3600) == "dans 8 heures"
    assert fr.countdown(now - 3 * 3600) == "il y a 3 heures"
    assert ar.countdown(now + 8 * 3600) == "خلال 8 ساعات"
    assert fr.when(now) == "15 janv. 2027, 08:00:00"
    assert fr.when(None) == fr.iso(None) == ""
    assert fr.iso(now) == "2027-01-15T08:00:00Z"
    assert fr.number(123456) == "123\u202f456"
    assert fr.size(2048) == "2\u202f048\u202fo"
    assert (fr.country("BR-PF"), ar.country("BR-PF")) == ("Brésil", "البرازيل")
    assert fr.country("XX-NONE") == "XX"


def test_the_catalogues_compile_and_translate() -> None:
    assert compile_catalogue(UI_ROOT, "es").gettext("Inbox") == "Bandeja de entrada"
    catalogues = Catalogues(UI_ROOT, lambda: 0, {"labels": None, "prefix": "/ui"})
    assert catalogues.gettext("ar", "Inbox") == "الوارد"
    assert catalogues.gettext("en", "Inbox") == "Inbox"
    assert catalogues.envs["ar"].globals["dir"] == "rtl"
