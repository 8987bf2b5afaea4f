"""Durable files, one way for the whole project: what is written survives a crash whole,
or not at all (R10).

* :func:`write_atomic` — small files (keys, tokens, configuration): a temporary
  file in the same directory, fsync, then a rename (or a hard link, which never
  replaces an existing file), then an fsync of the directory so the name itself
  is durable.
* :func:`create_part`, :func:`finish_part` and :func:`rename_durably` — large
  streamed files (attachment blobs): written to a ``.part`` file, fsynced,
  checked by the caller, then renamed into place with the directory fsynced.
* :func:`load_genesis` and :func:`load_signing_key` — the two files every
  deployable reads at start-up, with one clear line when they cannot be used.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import IO

from globe_io.errors import ConfigError, KeyNotOpened
from protocol import keystore
from protocol.errors import DecryptionFailed, GlobeError
from protocol.genesis import Genesis
from protocol.keys import SigningKey

__all__ = [
    "create_part",
    "finish_part",
    "fsync_dir",
    "load_genesis",
    "load_signing_key",
    "rename_durably",
    "write_atomic",
]


def fsync_dir(directory: Path) -> None:
    """Make the names in ``directory`` durable (after a create, rename or unlink)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new, never half.

    With ``overwrite=False`` an existing file is never replaced
    (:class:`FileExistsError`): the final step is then a hard link, which fails if
    the name exists, so two writers cannot both win.
    """
    parent = path.absolute().parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                if path.exists():  # pragma: no cover - file systems without hard links
                    raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
                os.replace(tmp, path)  # pragma: no cover
        fsync_dir(parent)
    finally:
        tmp.unlink(missing_ok=True)


def create_part(path: Path, *, exclusive: bool = False) -> IO[bytes]:
    """A new ``.part`` file (mode 0600, never through a symbolic link), unbuffered."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), "wb", buffering=0)


def finish_part(file: IO[bytes], tail: bytes = b"") -> None:
    """Write ``tail`` and make the part file's content durable (it stays open)."""
    if tail:
        file.write(tail)
    file.flush()
    os.fsync(file.fileno())


def rename_durably(part: Path, final: Path) -> None:
    """Give a finished part file its final name, durably (the directory is fsynced)."""
    os.replace(part, final)
    fsync_dir(final.parent)


def load_genesis(path: Path) -> Genesis:
    """Read and verify a genesis file; :class:`ConfigError` naming the problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read genesis {path}: {exc.strerror}") from None
    try:
        return Genesis.decode(data)
    except GlobeError as exc:
        raise ConfigError(f"{path}: not a valid genesis ({exc.detail})") from None


def load_signing_key(path: Path, passphrase: bytes, *, purpose: str, what: str) -> SigningKey:
    """Open a sealed signing key file (``what`` names it in messages, e.g. "hub key")."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return SigningKey(keystore.open_secret(data, passphrase, purpose=purpose))
    except DecryptionFailed:
        raise KeyNotOpened(f"{path}: wrong passphrase, or the key file was altered") from None
    except GlobeError as exc:
        raise ConfigError(f"{path}: not a valid {what} file ({exc.detail})") from None
