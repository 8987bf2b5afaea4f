"""The node as the daemon sees it: ``status``, ``inbox``, ``outbox``, ``ping``,
``keys rotate``, ``sync``, ``alerts`` and ``audit`` (docs/OPERATIONS.md §11.6, §11.9;
``directory search`` and ``profile`` are in :mod:`.directory`, the investigator's work in
:mod:`.work`)."""

from __future__ import annotations

import click

from globe_io import cli
from globe_node.apiclient import ApiClient, segment
from globe_node.cli import render
from globe_node.cli.common import api_command, fetch, text
from protocol.ids import AuthorityId

__all__ = [
    "alerts",
    "audit",
    "inbox",
    "keys",
    "outbox",
    "ping",
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
