"""Retention on the node: ``purge`` on the node directory (docs/OPERATIONS.md §11.11), and
legal holds through the daemon: ``case hold``, ``case release`` and ``case holds``.

``purge`` needs the passphrase: the rules read each message's kind, handling code and
attachments inside its sealed content, and what is left of a purged message is sealed
again.  It works with or without the daemon running (SQLite in WAL mode; a running
daemon notices the purge within a minute and drops the purged words from its search
index).  ``--dry-run`` writes nothing at all.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.apiclient import ApiClient, segment
from globe_node.cli.common import (
    api_command,
    dir_option,
    open_keys,
    passphrase,
    passphrase_file_option,
    text,
)
from globe_node.cli.users import cli_actor
from globe_node.config import NodeConfig, load_config
from globe_node.keys import NodeKeys

__all__ = ["hold", "holds", "purge", "release"]


def _size(n: int) -> str:
    return f"{n} bytes" if n < 10_000 else f"{n / 1e6:.1f} MB"


def _line(p: dict[str, Any], verb: str) -> str:
    files = f"; {len(p['files'])} file(s), {_size(p['bytes'])}" if p["files"] else ""
    return (
        f"{verb} the {p['purge']} of {p['message']} ({p['direction']}, {p['kind']},"
        f" {','.join(p['counterparts']) or '-'}, case {p['case'] or '-'}) under rule"
        f" {p['rule']}{files}"
    )


def _lines(run: dict[str, Any]) -> list[str]:
    """``purge`` for people: each message, then what was kept and the totals."""
    dry = run["dry_run"]
    lines = [_line(p, "would purge" if dry else "purged") for p in run["purged"]]
    lines += [f"kept (legal hold on case {h['case']}): {h['message']}" for h in run["held"]]
    lines += [f"kept (delivery not ended yet): {m}" for m in run["waiting"]]
    c = run["counts"]
    lines.append(
        f"{'dry run: ' if dry else ''}{c['content']} message(s) purged of their content,"
        f" {c['attachments']} of their attachments; {c['held']} kept by a legal hold,"
        f" {c['waiting']} until their delivery ends; {'would remove' if dry else 'removed'}"
        f" {c['files']} file(s), {_size(c['bytes'])}"
    )
    if not dry:
        vacuumed = ", the database vacuumed" if run["vacuumed"] else ""
        lines.append(f"audit entry {run['audit']}{vacuumed}")
    return lines


async def _purge(
    config: NodeConfig, keys: NodeKeys, *, dry_run: bool, vacuum: bool
) -> dict[str, Any]:
    from globe_io.database import schema_state  # noqa: PLC0415 - SQLAlchemy only where needed
    from globe_node import db  # noqa: PLC0415
    from globe_node.audit import AuditLog  # noqa: PLC0415
    from globe_node.check import MIGRATIONS  # noqa: PLC0415
    from globe_node.context import NodeContext  # noqa: PLC0415
    from globe_node.retention import Retention  # noqa: PLC0415
    from globe_node.store import Store  # noqa: PLC0415

    if not config.db_path.exists():
        raise CommandError(f"{config.db_path} not found: not a node directory")
    genesis = cli.load_genesis(config.genesis_path)
    store = Store(db.make_engine(config.db_path))
    try:
        state = await schema_state(store.engine, MIGRATIONS)
        if not state.up_to_date:
            raise CommandError(
                f"{config.db_path} is at schema revision {state.current}, this globe-node"
                f" expects {state.head}: start the daemon once (it upgrades the database),"
                " then purge"
            )
        ctx = NodeContext(config=config, keys=keys, genesis=genesis, store=store)
        retention = Retention(ctx, AuditLog(store))
        run = await retention.purge(user=cli_actor(), dry_run=dry_run, vacuum=vacuum)
        return run.to_json()
    finally:
        await store.close()


@cli.command(
    "purge",
    help="Apply the [retention] rules of node.toml now: remove the content or the "
    "attachments of the messages they name (their files and keys), keeping each message's "
    "ids, times, counterparts, hashes, receipts and evidence, and saying in its place when "
    "and under which rule it was purged. Nothing filed under a case with a legal hold is "
    "touched, nor a sent message whose delivery has not ended. One audit entry per run. "
    "--dry-run lists exactly what would go and writes nothing. Needs the passphrase; the "
    "daemon may run meanwhile.",
    short_help="purge what the retention rules say (--dry-run: list it)",
)
@dir_option
@passphrase_file_option
@click.option("--dry-run", is_flag=True, help="list what would go; change nothing")
@click.option(
    "--vacuum",
    is_flag=True,
    help="after the purge, convert the database to incremental vacuum (a full VACUUM: needs "
    "free space for a copy of node.db), so that this and every later purge gives the freed "
    "space back to the file system",
)
def purge(
    *, directory: Path, passphrase_file: Path | None, dry_run: bool, vacuum: bool
) -> cli.Result:
    """Purge what the retention rules say (or, with --dry-run, list it)."""
    if dry_run and vacuum:
        raise click.UsageError("--vacuum changes the database: not with --dry-run")
    config = load_config(directory)
    keys = open_keys(config.key_path, passphrase(passphrase_file))
    if not config.retention.rules:
        note = [f"{directory / 'node.toml'} names no [[retention.rules]]: nothing is purged"]
    else:
        note = []
    data = asyncio.run(_purge(config, keys, dry_run=dry_run, vacuum=vacuum))
    return data, note + _lines(data)


# --- legal holds (through the daemon) ------------------------------------------------------------


def _hold_line(d: dict[str, Any]) -> str:
    released = d.get("released")
    when = (
        f"released {cli.iso(released)} by {text(d.get('released_by'))}"
        if released is not None
        else "standing"
    )
    return (
        f"case {text(d.get('case'))}: held since {cli.iso(d.get('placed'))} by"
        f" {text(d.get('placed_by'))}, {when}; reason: {text(d.get('reason'))}"
    )


@api_command("hold", short_help="put a case under a legal hold (supervisors)")
@click.argument("ref", metavar="CASE")
@click.option("--reason", required=True, metavar="TEXT", help="why (a court order, ...)")
async def hold(api: ApiClient, *, ref: str, reason: str) -> cli.Result:
    """Put CASE under a legal hold: no retention rule purges anything filed under it until
    it is released."""
    data = await api.post(f"/api/cases/{segment(ref)}/hold", {"reason": reason})
    return data, [_hold_line(data)]


@api_command("release", short_help="end a case's legal hold (supervisors)")
@click.argument("ref", metavar="CASE")
async def release(api: ApiClient, *, ref: str) -> cli.Result:
    """End CASE's legal hold: the retention rules apply to it again from the next purge."""
    data = await api.post(f"/api/cases/{segment(ref)}/release", {})
    return data, [_hold_line(data)]


@api_command("holds", short_help="the legal holds standing (supervisors)")
async def holds(api: ApiClient) -> cli.Result:
    """The legal holds standing now, by case."""
    data = await api.get("/api/holds")
    found = [h for h in data.get("holds", []) if isinstance(h, dict)]
    return data, [_hold_line(h) for h in found] or ["no legal hold stands"]
