"""The directory through the daemon: ``directory search`` and ``profile show|set``
(docs/OPERATIONS.md §11.9).

``directory search`` asks the daemon, which searches its own verified copy of the
membership log: a country by code or by name in Arabic, English, French or Spanish,
a competence, an offence area, a language or free text; the best matches first, each
with what it matched.  ``profile set`` changes this node's self-published profile
(PROTOCOL.md §6.7): the options given replace those fields of the current profile
(``--clear`` starts from an empty one), and the daemon signs it, has the hub append
it to the log and shows it as the verified log has it.
"""

from __future__ import annotations

from typing import Any

import click

from globe_io import cli
from globe_io.cli import iso
from globe_node.apiclient import ApiClient
from globe_node.cli.common import api_command, fetch, items, obj
from globe_node.cli.common import text as _t
from protocol.membership import AUTHORITY_KINDS
from protocol.profile import CONTACT_ROLES, OFFENCE_AREAS

__all__ = ["directory", "parse_contact", "profile", "render_profile", "render_search"]

_CONTACT_KEYS = ("role", "label", "hours", "languages", "email", "phone")


# --- rendering -------------------------------------------------------------------------------


def _reason(r: dict[str, Any]) -> str:
    lang = f"{_t(r.get('language'))}, " if r.get("language") else ""
    return f"{_t(r.get('field'))} {_t(r.get('value'))} ({lang}{_t(r.get('match'))})"


def _contact(c: dict[str, Any]) -> str:
    parts = [_t(c.get("role"))]
    if c.get("label"):
        parts.append(f'"{_t(c.get("label"))}"')
    if c.get("hours"):
        parts.append(_t(c.get("hours")))
    langs = c.get("languages")
    if isinstance(langs, list) and langs:
        parts.append("[" + ", ".join(map(_t, langs)) + "]")
    parts += [_t(c.get(k)) for k in ("email", "phone") if c.get(k)]
    return " ".join(parts)


def _profile_lines(p: dict[str, Any], indent: str) -> list[str]:
    offences = p.get("offences")
    lines = [
        f"{indent}offences    "
        + (", ".join(map(_t, offences)) if isinstance(offences, list) and offences else "-")
    ]
    if p.get("time_zone"):
        lines.append(f"{indent}time zone   {_t(p.get('time_zone'))}")
    lines += [f"{indent}contact     {_contact(c)}" for c in items(p, "contacts")]
    if p.get("note"):
        lines.append(f"{indent}note        {_t(p.get('note'))}")
    return lines


def render_search(d: dict[str, Any]) -> list[str]:
    """``globe-node directory search``: each member, its reasons and its profile."""
    lines = []
    for r in items(d, "results"):
        kinds, langs = r.get("kinds"), r.get("languages")
        lines.append(
            f"{_t(r.get('authority')):<20} {_t(r.get('status')):<10} "
            f"{','.join(map(_t, kinds)) if isinstance(kinds, list) else '-':<28} "
            f"{','.join(map(_t, langs)) if isinstance(langs, list) else '-':<10} "
            f"{_t(r.get('name'))}"
        )
        lines.append(
            f"{'':<20} fingerprint {_t(r.get('fingerprint'))}"
            + (f"  endpoint {_t(r.get('endpoint'))}" if r.get("endpoint") else "")
        )
        reasons = items(r, "reasons")
        if reasons:
            lines.append(f"{'':<20} matched {'; '.join(_reason(x) for x in reasons)}")
        if isinstance(r.get("profile"), dict):
            lines += _profile_lines(obj(r.get("profile")), f"{'':<21}")
    return lines or ["no matching members"]


def render_profile(d: dict[str, Any]) -> list[str]:
    """``globe-node profile show|set``."""
    p = d.get("profile")
    if not isinstance(p, dict):
        return [f"{_t(d.get('authority'))} has published no profile"]
    who, seq = _t(d.get("authority")), _t(p.get("seq"))
    return [f"{who} profile {seq}, published {iso(p.get('published'))}", *_profile_lines(p, "")]


# --- directory search ------------------------------------------------------------------------


def _country(value: str | None) -> str | None:
    """Two ASCII letters are a code (upper case); anything else is a name, sent as typed."""
    if value and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return value or None


@api_command("search", short_help="search the verified directory")
@click.option("--country", metavar="C", help="ISO code, or a name in ar, en, fr or es")
@click.option("--kind", type=click.Choice(sorted(AUTHORITY_KINDS)), help="a competence")
@click.option("--offence", type=click.Choice(list(OFFENCE_AREAS)), help="an offence area")
@click.option("--language", metavar="L")
@click.option("--query", metavar="Q", help="text in the id, the name or the country")
@click.option("--inactive", is_flag=True, help="include suspended and revoked")
async def search(
    api: ApiClient,
    *,
    country: str | None,
    kind: str | None,
    offence: str | None,
    language: str | None,
    query: str | None,
    inactive: bool,
) -> cli.Result:
    """Members of the verified directory by country, competence, offence area, language or
    text, best first, each with what it matched."""
    return await fetch(
        api,
        "/api/directory/search",
        render_search,
        country=_country(country),
        kind=kind,
        offence=offence,
        language=language,
        q=query,
        inactive=1 if inactive else None,
    )


directory = cli.GlobeGroup(name="directory", short_help="the verified member directory")
directory.add_command(search)


# --- this node's profile ---------------------------------------------------------------------


def parse_contact(spec: str) -> dict[str, Any]:
    """``role=duty-desk;label=...;hours=...;languages=en,fr;email=...;phone=...``."""
    out: dict[str, Any] = {}
    for part in spec.split(";"):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _CONTACT_KEYS or key in out:
            raise click.BadParameter(
                f"{part!r}: KEY=VALUE pairs separated by ';', each key once, keys "
                f"{', '.join(_CONTACT_KEYS)}",
                param_hint="--contact",
            )
        if key == "languages":
            out[key] = [x.strip() for x in value.split(",") if x.strip()]
        else:
            out[key] = value
    if out.get("role") not in CONTACT_ROLES:
        raise click.BadParameter(
            f"role=ROLE is required, one of {', '.join(CONTACT_ROLES)}", param_hint="--contact"
        )
    return out


@api_command("show", short_help="this node's published profile")
async def show(api: ApiClient) -> cli.Result:
    """This node's profile, as its verified directory has it."""
    return await fetch(api, "/api/profile", render_profile)


@api_command("set", short_help="publish this node's profile (operator)")
@click.option(
    "--offence", "offences", multiple=True, type=click.Choice(list(OFFENCE_AREAS)),
    help="an offence area handled (repeat; replaces the list)",
)  # fmt: skip
@click.option("--time-zone", metavar="ZONE", help="UTC or an IANA zone; '' removes it")
@click.option(
    "--contact", "contacts", multiple=True, metavar="SPEC",
    help="role=ROLE;label=...;hours=...;languages=en,fr;email=...;phone=+... (repeat; "
    "replaces the list; e-mail and telephone are published as given)",
)  # fmt: skip
@click.option("--no-contacts", is_flag=True, help="publish no contact point")
@click.option("--note", metavar="TEXT", help="how to work with the authority; '' removes it")
@click.option("--clear", is_flag=True, help="start from an empty profile, not the current one")
async def set_profile(
    api: ApiClient,
    *,
    offences: tuple[str, ...],
    time_zone: str | None,
    contacts: tuple[str, ...],
    no_contacts: bool,
    note: str | None,
    clear: bool,
) -> cli.Result:
    """Publish this node's profile: the current one with the fields given replaced."""
    body: dict[str, Any] = {}
    if not clear:
        current = obj((await api.get("/api/profile")).get("profile"))
        kept = ("offences", "time_zone", "contacts", "note")
        body = {k: current[k] for k in kept if k in current}
    if offences:
        body["offences"] = list(offences)
    if time_zone is not None:
        body["time_zone"] = time_zone or None
    if contacts or no_contacts:
        body["contacts"] = [parse_contact(c) for c in contacts]
    if note is not None:
        body["note"] = note or None
    data = await api.request("PUT", "/api/profile", body=body)
    return data, render_profile(data)


profile = cli.GlobeGroup(name="profile", short_help="this node's directory profile")
profile.add_command(show)
profile.add_command(set_profile)
