"""``globe-node passphrase change``: the same keys, sealed under a new passphrase
(docs/OPERATIONS.md, "Change the key passphrase").

The daemon may run meanwhile: it reads ``keys.sealed`` only when it starts and never
writes it, and the new file replaces the old by one atomic rename
(:func:`globe_node.keys.reseal_keys`), so the running daemon is not disturbed and a
crash at any moment leaves a file that the old or the new passphrase opens.  Its next
start needs the new passphrase.  The change is written to the audit log after the
rename (a crash between the two leaves the change without its row).
"""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path
from typing import Final

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.cli.common import dir_option, open_keys, passphrase_file_option
from globe_node.cli.common import passphrase as old_passphrase
from globe_node.cli.users import audited, cli_actor
from globe_node.config import load_config
from globe_node.keys import key_file_lock, reseal_keys

__all__ = ["passphrase"]

_WHAT: Final = "the node keys"

passphrase = cli.GlobeGroup(name="passphrase", short_help="the passphrase of the node keys")


def _new_passphrase(new_file: Path | None) -> bytes:
    """The new passphrase: ``--new-passphrase-file``, else asked twice on a terminal (never
    from ``$GLOBE_PASSPHRASE`` or the systemd credential: those hold the old one)."""
    if new_file is not None:
        # the file alone: an empty variable name reads no environment
        return cli.read_passphrase(new_file, env="", what=_WHAT, new=True)
    if not sys.stdin.isatty():
        raise CommandError(
            f"no new passphrase for {_WHAT}: pass --new-passphrase-file FILE (or run on a "
            "terminal to be asked)"
        )
    value = getpass.getpass(f"New passphrase for {_WHAT}: ").encode()
    if getpass.getpass("Repeat the new passphrase: ").encode() != value:
        raise CommandError("the two new passphrases differ")
    if not value:
        raise CommandError(f"an empty passphrase cannot protect {_WHAT}")
    if len(value.decode("utf-8", "replace")) < cli.MIN_PASSPHRASE:
        raise CommandError(
            f"the passphrase for {_WHAT} needs at least {cli.MIN_PASSPHRASE} characters"
        )
    return value


@passphrase.command(
    "change",
    help="Re-seal keys.sealed under a new passphrase: the old one from --passphrase-file, "
    "$GLOBE_PASSPHRASE or a prompt, the new one from --new-passphrase-file or a prompt asked "
    "twice. The file is replaced atomically (a crash leaves the old or the new file), the "
    "daemon may keep running, and the change is in the audit log. Backups made before "
    "still need the old passphrase.",
    short_help="change the passphrase of keys.sealed",
)
@dir_option
@passphrase_file_option
@click.option(
    "--new-passphrase-file",
    type=cli.PATH,
    metavar="FILE",
    help="the new passphrase (default: asked twice on a terminal)",
)
@cli.kdf_option("--kdf", what="the re-sealed keys.sealed")
def change(
    *, directory: Path, passphrase_file: Path | None, new_passphrase_file: Path | None, kdf: str
) -> cli.Result:
    """Change the passphrase of the node keys."""
    config = load_config(directory)
    if not config.db_path.is_file():  # the change must be audited: check before making it
        raise CommandError(f"{config.db_path} not found: run 'globe-node init' first")
    old = old_passphrase(passphrase_file)
    new = _new_passphrase(new_passphrase_file)
    if new == old:
        raise CommandError("the new passphrase is the old one; nothing was changed")
    with key_file_lock(config.key_path):
        keys = open_keys(config.key_path, old)
        reseal_keys(config.key_path, keys, new, cli.KDF_COSTS[kdf])
    by, now = cli_actor(), int(time.time())
    try:
        audited(
            config.db_path,
            lambda _sessions, audit: audit.append(now, by, "change-passphrase", "keys.sealed"),
        )
    except CommandError as exc:
        raise CommandError(
            f"the passphrase was changed, but the audit log could not record it: {exc.detail}"
        ) from None
    data = {"key_file": str(config.key_path.absolute()), "kdf": kdf}
    lines = [
        f"{config.key_path} is now sealed with the new passphrase (Argon2id {kdf})",
        "a running daemon keeps its keys; its next start needs the new passphrase: update "
        "the passphrase file or systemd credential it starts with",
        "backups made before this change still need the old passphrase",
    ]
    return data, lines
