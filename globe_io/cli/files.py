"""Files a command line reads and writes: passphrases, atomic writes, genesis and sealed key
files, and progress on a terminal (part of the scaffold :mod:`globe_io.cli`)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from globe_io.errors import CommandError
from globe_io.files import load_genesis, load_signing_key, write_atomic
from protocol import keystore

__all__ = [
    "KDF_COSTS",
    "MIN_PASSPHRASE",
    "load_genesis",
    "load_signing_key",
    "progress",
    "read_passphrase",
    "write_file",
]

KDF_COSTS: Final = {"interactive": keystore.INTERACTIVE, "moderate": keystore.MODERATE}
#: A new key's passphrase must have at least this many characters.
MIN_PASSPHRASE: Final = 8
#: The name of the systemd credential holding the passphrase (``LoadCredential=``).
CREDENTIAL: Final = "passphrase"


def read_passphrase(
    passphrase_file: Path | None, *, env: str, what: str, new: bool = False
) -> bytes:
    """A passphrase from ``passphrase_file``, else ``$env``, else the systemd credential
    ``passphrase`` (``LoadCredential=passphrase:...``, read from
    ``$CREDENTIALS_DIRECTORY/passphrase``), else a prompt on a terminal.

    ``new`` (a key being sealed) asks twice on a terminal and wants at least
    :data:`MIN_PASSPHRASE` characters.  Never from the command line.
    """
    if passphrase_file is None and not os.environ.get(env):
        passphrase_file = _credential()
    if passphrase_file is not None:
        try:
            value = passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise CommandError(
                f"cannot read passphrase file {passphrase_file}: {exc.strerror}"
            ) from None
        if not value:
            raise CommandError(f"passphrase file {passphrase_file} is empty")
    elif os.environ.get(env):
        value = os.environ[env].encode()
    elif sys.stdin.isatty():
        value = getpass.getpass(f"Passphrase for {what}: ").encode()
        if new and getpass.getpass("Repeat the passphrase: ").encode() != value:
            raise CommandError("the two passphrases differ")
    else:
        raise CommandError(f"no passphrase for {what}: pass --passphrase-file FILE or set {env}")
    if not value:
        raise CommandError(f"an empty passphrase cannot protect {what}")
    if new and len(value.decode("utf-8", "replace")) < MIN_PASSPHRASE:
        raise CommandError(f"the passphrase for {what} needs at least {MIN_PASSPHRASE} characters")
    return value


def _credential() -> Path | None:
    """The passphrase systemd handed over with ``LoadCredential=passphrase:...``, if any."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory or not (Path(directory) / CREDENTIAL).is_file():
        return None
    return Path(directory) / CREDENTIAL


def write_file(path: Path, data: bytes, *, mode: int, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically (:func:`globe_io.files.write_atomic`): a crash
    leaves either no file or the whole file; with ``overwrite=False`` an existing file is
    never replaced."""
    path = path.absolute()
    if not path.parent.is_dir():
        raise CommandError(f"directory {path.parent} does not exist")
    exists = CommandError(f"{path} already exists; refusing to overwrite it")
    if not overwrite and path.exists():
        raise exists
    try:
        write_atomic(path, data, mode=mode, overwrite=overwrite)
    except FileExistsError:
        raise exists from None


def progress(label: str) -> Callable[[int, int | None], None] | None:
    """A progress display on stderr for ``(done, total)`` bytes, if stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        if total:
            sys.stderr.write(f"\r{label}: {done * 100 // total:3d}% of {total} bytes")
        else:
            sys.stderr.write(f"\r{label}: {done} bytes")
        if total is not None and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
