"""The investigator's work through the daemon: ``requests``, ``cases``, ``case`` (``show``,
``open``, ``rename``, ``close``, ``reopen``, ``assign``, ``note``, ``file``), ``search``
and ``stats`` (docs/OPERATIONS.md §11.6).

Every command renders what the local API answers (:mod:`.workrender`); ``--json`` prints
that answer itself.  ``case CASE`` is short for ``case show CASE`` (a case named like a
subcommand needs the long form).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.apiclient import ApiClient, segment
from globe_node.cli import workrender
from globe_node.cli.common import api_command, authority_ids, fetch, parse_time, text
from protocol.messages import Restriction, Tlp, Urgency

__all__ = ["case", "cases", "requests", "search", "stats"]

_limit = click.option("--limit", type=cli.LIMIT, default=50, metavar="N", help="at most N (50)")
_offset = click.option(
    "--offset", type=cli.COUNT, default=0, metavar="N", help="skip the first N (paging)"
)


# --- requests --------------------------------------------------------------------------------


@api_command("requests", short_help="the requests to work on: open, overdue, due soon")
@click.option(
    "--sent", "direction", flag_value="out", help="sent by this node: awaiting their answer"
)
@click.option(
    "--received", "direction", flag_value="in", help="received by this node: awaiting our answer"
)
@click.option("--ended", "status", flag_value="ended", help="answered, declined, closed, withdrawn")
@click.option("--all", "status", flag_value="all", help="open and ended")
@click.option("--overdue", is_flag=True, help="past their deadline")
@click.option("--due-within", type=cli.COUNT, metavar="DAYS", help="due within DAYS days")
@click.option("--counterpart", metavar="ID", help="exchanged with this authority")
@click.option("--case", metavar="CASE", help="filed under this case")
@click.option("--uncased", is_flag=True, help="filed under no case")
@click.option("--urgency", type=cli.choice_of(Urgency))
@click.option("--tlp", type=cli.choice_of(Tlp))
@click.option("--restriction", type=cli.choice_of(Restriction))
@_limit
@_offset
async def requests(api: ApiClient, **o: Any) -> cli.Result:
    """Open requests by deadline (awaiting our answer: --received; theirs: --sent), or ended
    ones, filtered by counterpart, case, urgency and handling code."""
    query: dict[str, Any] = {
        "direction": o["direction"], "status": o["status"],
        "overdue": 1 if o["overdue"] else None, "due_within": o["due_within"],
        "counterpart": authority_ids((o["counterpart"],))[0] if o["counterpart"] else None,
        "case": o["case"], "uncased": 1 if o["uncased"] else None, "urgency": o["urgency"],
        "tlp": o["tlp"], "restriction": o["restriction"], "limit": o["limit"],
        "offset": o["offset"],
    }  # fmt: skip
    return await fetch(api, "/api/requests", workrender.requests, **query)


# --- cases -----------------------------------------------------------------------------------


@api_command("cases", short_help="the cases you see and their open requests")
@click.option("--state", type=click.Choice(["open", "closed"]), help="only open or closed ones")
@click.option("--team", metavar="TEAM", help="only this team's")
@click.option("--assignee", metavar="USER", help="only those assigned to USER")
@_limit
@_offset
async def cases(api: ApiClient, **o: Any) -> cli.Result:
    """The cases you see, most recently active first."""
    return await fetch(api, "/api/cases", workrender.cases, **o)


class _ShowByDefault(cli.GlobeGroup):
    """A group whose first argument, when it names no subcommand, is ``show``'s."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """``case C-1`` is ``case show C-1``."""
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


case = _ShowByDefault(
    name="case", short_help="one case: show, open, rename, close, reopen, assign, note, file"
)


def _case_path(ref: str, action: str = "") -> str:
    return f"/api/cases/{segment(ref)}" + (f"/{action}" if action else "")


def _changed(verb: str) -> Any:
    def lines(d: dict[str, Any]) -> list[str]:
        return [f"case {text(d.get('case'))} {verb}", *workrender.cases({"cases": [d]})]

    return lines


@api_command("show", short_help="a case: its requests, messages and notes")
@click.argument("ref", metavar="CASE")
async def show(api: ApiClient, *, ref: str) -> cli.Result:
    """One case: its record, requests (deadlines, expected dates), messages and notes."""
    return await fetch(api, _case_path(ref), workrender.case)


@api_command("open", short_help="open a case")
@click.argument("ref", metavar="CASE")
@click.option("--title", metavar="T", help="a title (this node's only)")
@click.option("--team", metavar="TEAM", help="its team (default: your first)")
@click.option("--assignee", metavar="USER", help="assign it to USER")
async def open_(api: ApiClient, *, ref: str, **o: Any) -> cli.Result:
    """Open a case under a new reference."""
    data = await api.post("/api/cases", {"case": ref, **{k: v for k, v in o.items() if v}})
    return data, _changed("opened")(data)


@api_command("rename", short_help="give a case a new title")
@click.argument("ref", metavar="CASE")
@click.argument("title", metavar="TITLE")
async def rename(api: ApiClient, *, ref: str, title: str) -> cli.Result:
    """Give a case a new title."""
    data = await api.post(_case_path(ref, "rename"), {"title": title})
    return data, _changed("renamed")(data)


@api_command("close", short_help="close a case")
@click.argument("ref", metavar="CASE")
async def close(api: ApiClient, *, ref: str) -> cli.Result:
    """Close a case (nothing is sent into it until it is reopened)."""
    data = await api.post(_case_path(ref, "close"), {})
    return data, _changed("closed")(data)


@api_command("reopen", short_help="reopen a closed case")
@click.argument("ref", metavar="CASE")
async def reopen(api: ApiClient, *, ref: str) -> cli.Result:
    """Reopen a closed case."""
    data = await api.post(_case_path(ref, "reopen"), {})
    return data, _changed("reopened")(data)


@api_command("assign", short_help="give a case to a team or a user")
@click.argument("ref", metavar="CASE")
@click.option("--team", metavar="TEAM", help="the team (its messages and requests follow)")
@click.option("--assignee", metavar="USER", help="the user (who must see the team's cases)")
async def assign(api: ApiClient, *, ref: str, team: str | None, assignee: str | None) -> cli.Result:
    """Give a case to a team, a user, or both."""
    if team is None and assignee is None:
        raise CommandError("give --team, --assignee or both")
    body = {k: v for k, v in (("team", team), ("assignee", assignee)) if v}
    data = await api.post(_case_path(ref, "assign"), body)
    return data, _changed("assigned")(data)


@api_command("note", short_help="add a note to a case (never sent)")
@click.argument("ref", metavar="CASE")
@click.option("--body", metavar="TEXT", help="the note")
@click.option("--body-file", type=cli.PATH, metavar="FILE", help="read it from FILE ('-': stdin)")
async def note(api: ApiClient, *, ref: str, body: str | None, body_file: Path | None) -> cli.Result:
    """Add a note to a case: kept on this node, sealed, never sent."""
    cli.one_of({"--body": body, "--body-file": body_file}, required=True)
    if body_file is not None:
        try:
            raw = sys.stdin.buffer.read() if str(body_file) == "-" else body_file.read_bytes()
            body = raw.decode("utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {body_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{body_file} is not UTF-8 text") from None
    data = await api.post(_case_path(ref, "notes"), {"body": body})
    return data, [f"note {text(data.get('id'))} added to case {text(data.get('case'))}"]


@api_command("file", short_help="file a message that names no case under a case")
@click.argument("ref", metavar="CASE")
@click.argument("msg", metavar="MSG")
async def file(api: ApiClient, *, ref: str, msg: str) -> cli.Result:
    """File a message (an id or a unique prefix) that names no case under CASE."""
    data = await api.post(f"/api/messages/{segment(msg)}/file", {"case": ref})
    return data, [f"message {text(data.get('message'))} filed under case {text(data.get('case'))}"]


for _command in (show, open_, rename, close, reopen, assign, note, file):
    case.add_command(_command)


# --- search and statistics -------------------------------------------------------------------


@api_command("search", short_help="search the messages, cases and notes you see")
@click.argument("words", nargs=-1, required=True, metavar="WORD...")
@_limit
@_offset
async def search(api: ApiClient, *, words: tuple[str, ...], limit: int, offset: int) -> cli.Result:
    """Messages, case titles and notes holding every WORD (WORD* matches a prefix)."""
    return await fetch(
        api, "/api/search", workrender.search, q=" ".join(words), limit=limit, offset=offset
    )


@api_command("stats", short_help="statistics of a period, by counterpart and kind")
@click.option("--from", "start", metavar="DATE", help="start of the period (ISO 8601, UTC)")
@click.option("--to", "end", metavar="DATE", help="end of the period, excluded (default: now)")
@click.option(
    "--format", "form", type=click.Choice(["text", "json", "csv"]), default="text",
    help="text (default), json (as --json) or csv",
)  # fmt: skip
async def stats(api: ApiClient, *, start: str | None, end: str | None, form: str) -> cli.Outcome:
    """Messages sent and received per counterpart and kind over a period; for requests,
    how many were answered, declined, withdrawn or are open, and the first-response and
    answer times (median and 90th percentile)."""
    query = {
        "from": parse_time(start, "--from") if start else None,
        "to": parse_time(end, "--to") if end else None,
    }
    if form == "csv":
        sys.stdout.write(await api.get_text("/api/stats/csv", query))
        sys.stdout.flush()
        return 0
    data, lines = await fetch(api, "/api/stats", workrender.stats, **query)
    if form == "json":  # the same document as --json
        return data, orjson.dumps(data, option=orjson.OPT_INDENT_2).decode().splitlines()
    return data, lines
