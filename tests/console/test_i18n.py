"""The console's languages: every message of its templates and labels is in each of its
catalogues and translated in French, Spanish and Arabic (placeholders kept); no template
holds a string that is not a message; the catalogues compile, and Arabic is right to
left.  The template check is the web UI's own (tests/webui/test_i18n.py)."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from globe_admin.console import labels
from globe_admin.console.app import ROOT
from globe_io.webui.i18n import LANGUAGES, Catalogues
from tests.webui.test_i18n import _Text

TEMPLATES = sorted(p.name for p in (ROOT / "templates").glob("*.html"))


def extracted() -> set[str]:
    """Every message the console's templates and Python modules mark."""
    found = extract_from_dir(
        str(ROOT),
        [("templates/**.html", "jinja2"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "gettext": None, "N_": None},
    )
    return {m if isinstance(m, str) else m[0] for _, _, m, _, _ in found}


def catalogue(language: str) -> dict[str, str]:
    with (ROOT / "locale" / language / "LC_MESSAGES" / "webui.po").open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalogue_holds_exactly_the_messages_of_the_console(language: str) -> None:
    messages = extracted()
    assert len(messages) > 150
    assert set(catalogue(language)) == messages


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_every_message_is_translated_keeping_its_placeholders(language: str) -> None:
    for msgid, text in catalogue(language).items():
        assert text, f"{language}: {msgid!r} is not translated"
        assert sorted(re.findall(r"%\(\w+\)s", text)) == sorted(re.findall(r"%\(\w+\)s", msgid)), (
            msgid
        )


def test_the_english_catalogue_only_lists_the_messages() -> None:
    assert set(catalogue("en").values()) == {""}


@pytest.mark.parametrize("template", TEMPLATES)
def test_no_template_shows_a_string_that_is_not_a_message(template: str) -> None:
    source = (ROOT / "templates" / template).read_text(encoding="utf-8")
    bare = re.sub(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", "", source, flags=re.S)
    parser = _Text()
    parser.feed(bare)
    assert [t for t in parser.found if re.search(r"[^\W\d_]", t)] == []


def test_the_catalogues_compile_and_arabic_runs_right_to_left() -> None:
    catalogues = Catalogues(ROOT, lambda: 0, {"labels": labels, "prefix": "/console"})
    assert catalogues.gettext("fr", "Proposals") == "Propositions"
    assert catalogues.gettext("es", "Membership log") == "Registro de miembros"
    assert catalogues.gettext("ar", "Applications") == "طلبات العضوية"
    assert catalogues.envs["ar"].globals["dir"] == "rtl"
    assert catalogues.envs["fr"].globals["dir"] == "ltr"


@pytest.mark.parametrize(
    ("code", "language", "name"),
    [("fr", "en", "French"), ("en", "fr", "anglais"), ("es", "ar", "الإسبانية"), ("zz", "en", "zz"),
     ("x", "es", "x")],
)  # fmt: skip
def test_working_languages_are_named_in_the_pages_language(
    code: str, language: str, name: str
) -> None:
    assert labels.language_name(code, language) == name
