"""``globe-node check``: what is wrong with this node's deployment (docs/OPERATIONS.md,
"Check a deployment"); without the daemon and without the passphrase."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from globe_io import cli
from globe_node.cli.common import dir_option

__all__ = ["check"]


@cli.command(
    "check",
    help="Report what is wrong with this node: file permissions, the database and its "
    "schema, the membership log and this node's standing, its certificate (ending within 30 "
    "days) and prekeys, the directory's age, free disk, the hub's reachability and clock, and "
    "this node's own public endpoint. Exit status 0: nothing found, 1: findings, 2: could not "
    "check. Needs neither the passphrase nor the daemon; changes nothing.",
    short_help="check the deployment (permissions, schema, expiry, clock, reachability)",
)
@dir_option
@click.option(
    "--min-free",
    type=cli.COUNT,
    default=1 << 30,
    metavar="BYTES",
    help="free disk below this is a finding (default: 1 GiB)",
)
@click.option("--offline", is_flag=True, help="skip the hub, clock and endpoint checks")
def check(*, directory: Path, min_free: int, offline: bool) -> int:
    """Check the node deployment and print the findings."""
    from globe_node.check import check_node  # noqa: PLC0415 - SQLAlchemy only where needed

    report = asyncio.run(check_node(directory, min_free=min_free, network=not offline))
    return report.emit(as_json=cli.wants_json())
