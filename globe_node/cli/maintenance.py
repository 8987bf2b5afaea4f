"""Backing a node up and restoring it: ``backup`` and ``restore`` (docs/OPERATIONS.md §11.7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.cli.common import (
    dir_option,
    node_fingerprint,
    open_keys,
    passphrase,
    passphrase_file_option,
)
from globe_node.cli.users import audited, cli_actor, private_db_files, replace_operator
from globe_node.config import load_config
from globe_node.keys import write_private
from protocol.errors import GlobeError
from protocol.ids import AuthorityId

__all__ = ["backup", "restore"]


@cli.command(
    "backup",
    help="Write a tar.gz (mode 0600, atomically) of node.toml, genesis.json, keys.sealed, the "
    "application, a consistent snapshot of node.db (safe while the daemon runs) and blobs/, "
    "with a MANIFEST.json of SHA-256 digests. Message content stays encrypted under the "
    "storage key inside the database and keys.sealed stays sealed with the passphrase: the "
    "archive holds no usable key without the passphrase. api.token is not included (restore "
    "issues a new one). The node database then records the backup (time, file name, size, "
    "SHA-256; the last 10 are kept) for the operator's pages, audited as cli:<OS user>.",
    short_help="write a backup archive of the node",
)
@dir_option
@click.option("--out", type=cli.PATH, required=True, metavar="FILE", help="the new archive")
def backup(*, directory: Path, out: Path) -> cli.Result:
    """Write a backup archive of the node directory, and record it in the node database."""
    from globe_node.backup import BackupRecord, create_backup, remember  # noqa: PLC0415

    data = create_backup(directory, out)
    record = BackupRecord(
        created=data["created"], file=Path(data["out"]).name, size=data["archive_bytes"],
        sha256=data["sha256"], authority=data["authority"],
    )  # fmt: skip
    lines = [
        f"backup of {data['authority']} written to {data['out']} "
        f"({data['files']} files, {data['archive_bytes']} bytes, mode 0600)",
        f"sha256 {data['sha256']}",
        "keys.sealed stays sealed with the passphrase and message content stays encrypted "
        "under the storage key; keep the passphrase apart from the archive.",
    ]
    by = cli_actor()
    try:
        audited(load_config(directory).db_path, lambda _s, audit: remember(audit, record, by=by))
    except GlobeError as exc:  # the archive is whole: say so, then why it is not recorded
        raise cli.RefusedWithOutput(
            f"the archive is complete, but the node database did not record it, so the "
            f"operator's pages do not show it: {exc.detail}",
            ({**data, "recorded": False}, lines),
        ) from None
    return {**data, "recorded": True}, lines


@cli.command(
    "restore",
    help="Restore FILE into --dir (new or empty): every member is checked against the "
    "manifest, links, devices, absolute paths and '..' are refused, and the passphrase must "
    "open keys.sealed; on any failure nothing is left behind. The archive holds no usable key "
    "without the passphrase. A new operator API token is issued.",
    short_help="restore a backup archive into a new directory",
)
@click.argument("file", type=cli.PATH, metavar="FILE")
@dir_option
@passphrase_file_option
def restore(*, file: Path, directory: Path, passphrase_file: Path | None) -> cli.Result:
    """Restore a backup archive into a new directory and check the passphrase opens its keys."""
    from globe_node.backup import restore_backup  # noqa: PLC0415

    secret = passphrase(passphrase_file)
    found: dict[str, Any] = {}

    def check(restored: Path) -> None:
        config = load_config(restored)
        cli.load_genesis(config.genesis_path)
        try:
            keys = open_keys(config.key_path, secret)
        except CommandError:
            raise CommandError(
                f"{file}: the passphrase does not open the archived keys.sealed (wrong "
                "passphrase, or the archive was altered); nothing was restored"
            ) from None
        token = replace_operator(config.db_path)
        write_private(config.token_path, f"{token}\n".encode())
        private_db_files(config.db_path)
        found.update(
            authority=config.authority,
            fingerprint=node_fingerprint(AuthorityId.parse(config.authority), keys),
        )

    data = restore_backup(file, directory, check=check)
    data.update(found, token_file=str((directory / "api.token").absolute()))
    lines = [
        f"node {found['authority']} restored into {data['directory']} ({data['files']} files "
        "verified against the manifest; the passphrase opens keys.sealed)",
        f"node fingerprint: {found['fingerprint']}",
        f"a new operator API token is in {data['token_file']}; other users' tokens still work",
        "stop the old node for good before running this one: one node per authority.",
    ]
    return data, lines
