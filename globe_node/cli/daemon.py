"""The node as the daemon sees it: ``status``, ``inbox``, ``outbox``, ``cases``, ``case``,
``stats``, ``directory search``, ``ping``, ``keys rotate``, ``sync``, ``alerts`` and
``audit`` (docs/OPERATIONS.md §11.6, §11.9)."""

from __future__ import annotations

import click

from globe_io import cli
from globe_node.apiclient import ApiClient, segment
from globe_node.cli import render
from globe_node.cli.common import api_command, fetch, text
from protocol.ids import AuthorityId
from protocol.membership import AUTHORITY_KINDS

__all__ = [
    "alerts",
    "audit",
    "case",
    "cases",
    "directory",
    "inbox",
    "keys",
    "outbox",
    "ping",
    "stats",
    "status",
    "sync",
]

_limit = click.option("--limit", type=cli.LIMIT, default=50, metavar="N", help="at most N (50)")


@api_command("status", short_help="node, directory, hub and queue status")
async def status(api: ApiClient) -> cli.Result:
    """The node's membership, directory, hub connection, queues and alerts."""
    return await fetch(api, "/api/status", render.status)


@api_command("inbox", short_help="received messages")
@click.option("--unread", is_flag=True, help="only unread messages")
@_limit
async def inbox(api: ApiClient, *, unread: bool, limit: int) -> cli.Result:
    """Received messages, newest first."""
    return await fetch(api, "/api/inbox", render.inbox, limit=limit, unread=1 if unread else None)


@api_command("outbox", short_help="sent messages and their delivery state")
@_limit
async def outbox(api: ApiClient, *, limit: int) -> cli.Result:
    """Sent messages and where each recipient's copy is."""
    return await fetch(api, "/api/outbox", render.outbox, limit=limit)


@api_command("cases", short_help="cases and their open requests")
async def cases(api: ApiClient) -> cli.Result:
    """The cases, their open and overdue requests."""
    return await fetch(api, "/api/cases", render.cases)


@api_command("case", short_help="one case: requests and messages")
@click.argument("case", metavar="CASE")
async def case(api: ApiClient, *, case: str) -> cli.Result:
    """One case: its requests and messages."""
    return await fetch(api, f"/api/cases/{segment(case)}", render.case)


@api_command("stats", short_help="response times by counterpart")
async def stats(api: ApiClient) -> cli.Result:
    """How fast each counterpart responds to and answers requests."""
    return await fetch(api, "/api/stats", render.stats)


@api_command("search", short_help="search the verified directory")
@click.option("--country", metavar="CC")
@click.option("--kind", type=click.Choice(sorted(AUTHORITY_KINDS)))
@click.option("--language", metavar="L")
@click.option("--query", metavar="Q", help="text in the name or id")
@click.option("--inactive", is_flag=True, help="include suspended and revoked")
async def search(
    api: ApiClient,
    *,
    country: str | None,
    kind: str | None,
    language: str | None,
    query: str | None,
    inactive: bool,
) -> cli.Result:
    """Members of the verified directory by country, kind, language or name."""
    return await fetch(
        api,
        "/api/directory/search",
        render.search,
        country=country.upper() if country else None,
        kind=kind,
        language=language,
        q=query,
        inactive=1 if inactive else None,
    )


directory = cli.GlobeGroup(name="directory", short_help="the verified member directory")
directory.add_command(search)


@api_command("ping", short_help="test the direct and hub paths to a member")
@click.argument("authority", metavar="ID")
async def ping(api: ApiClient, *, authority: str) -> cli.Result:
    """Try the direct path and the hub path to a member."""
    path = f"/api/ping/{segment(str(AuthorityId.parse(authority)))}"
    data = await api.post(path, {})
    return data, render.ping(data)


@api_command("rotate", short_help="publish a fresh signed prekey now")
async def rotate(api: ApiClient) -> cli.Result:
    """Publish a fresh signed prekey now."""
    data = await api.post("/api/keys/rotate", {})
    return data, [f"new prekey {text(data.get('prekey'))} published"]


keys = cli.GlobeGroup(name="keys", short_help="key management")
keys.add_command(rotate)


@api_command("sync", short_help="sync the directory from the hub now")
async def sync(api: ApiClient) -> cli.Result:
    """Fetch and verify the new membership log entries now."""
    data = await api.post("/api/sync", {})
    return data, [f"{text(data.get('added'))} new log entries verified"]


@api_command("alerts", short_help="alerts an operator must see")
async def alerts(api: ApiClient) -> cli.Result:
    """What an operator must see: conflicts, suspect messages, a lagging hub."""
    return await fetch(api, "/api/alerts", render.alerts)


@api_command("audit", short_help="the local audit log and its verification")
async def audit(api: ApiClient) -> cli.Result:
    """Print the local audit log; exit 1 if its hash chain does not verify."""
    data, lines = await fetch(api, "/api/audit", render.audit)
    if data.get("verified") is not True:
        raise cli.RefusedWithOutput(
            "the audit log's hash chain does not verify: it was altered", (data, lines[:-1])
        )
    return data, lines
