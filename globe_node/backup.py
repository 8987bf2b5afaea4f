"""Backup and restore of a node directory (``globe-node backup`` / ``globe-node restore``).

A backup is a gzip-compressed tar archive (written atomically, mode 0600) of
``node.toml``, ``genesis.json``, ``keys.sealed``, ``application.json`` and
``application.id`` when present, a consistent snapshot of ``node.db`` taken
with SQLite's online backup API (safe while the daemon runs), the ``blobs/``
directory and a ``MANIFEST.json`` with the SHA-256 of every other member.

What the archive protects and what it does not: message content is sealed
under the node's storage key inside the database, attachments stay in their
blob encryption, and the storage key itself is only in ``keys.sealed``, sealed
with the passphrase.  Without the passphrase the archive holds no usable key.
The local API token (``api.token``) is deliberately left out: a restore issues
a fresh one.  Routing metadata (authority ids, times, states) is in the clear,
as it is in the database itself.

A restore refuses a non-empty target, any member with an absolute path, ``..``,
a link or a device, any member the manifest does not list (or the reverse) and
any SHA-256 mismatch; it removes everything it created when anything fails.

The node database remembers the last :data:`KEEP` backups ``globe-node backup`` wrote
(:class:`BackupRecord`: when, the archive's file name, size and SHA-256, the
authority), in its ``meta`` table, written with an audit row ``backup`` in one short
transaction after the archive is complete (:func:`remember`): so the daemon, which
never sees the command, can show them to operators (``GET /api/backups``,
:func:`recorded`) and warn when the newest is older than :data:`STALE_AFTER`.  The
snapshot is taken first, so an archive never holds its own record.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Final, cast

import orjson

from globe_node.config import CONFIG_NAME, load_config
from protocol.errors import GlobeError

if TYPE_CHECKING:  # the daemon and the command pass them in; restore needs no database
    from globe_node.audit import AuditLog
    from globe_node.store import Store

__all__ = [
    "BLOBS",
    "DB_NAME",
    "FILES",
    "KEEP",
    "MANIFEST",
    "META_KEY",
    "STALE_AFTER",
    "BackupError",
    "BackupRecord",
    "BackupsView",
    "create_backup",
    "recorded",
    "remember",
    "restore_backup",
    "snapshot_database",
]

log = logging.getLogger("globe.node.backup")

MANIFEST: Final = "MANIFEST.json"
DB_NAME: Final = "node.db"
BLOBS: Final = "blobs"
#: Plain files copied from the node directory when present (the first three must be).
FILES: Final = (CONFIG_NAME, "genesis.json", "keys.sealed", "application.json", "application.id")
REQUIRED: Final = frozenset({CONFIG_NAME, "genesis.json", "keys.sealed", DB_NAME})
MANIFEST_TYPE: Final = "globe-node-backup"
MAX_MANIFEST: Final = 16 << 20
CHUNK: Final = 1 << 20
#: How many backups the node database remembers, newest first.
KEEP: Final = 10
#: Seconds after which the newest backup is too old: the operator's status page warns
#: from then on (and when there is none).  A week: a daily or weekly schedule that
#: stopped shows within days, and a node backed up by hand once a week does not warn.
STALE_AFTER: Final = 7 * 86400
#: The ``meta`` row holding the records (a JSON array, newest first).
META_KEY: Final = "backups"


class BackupError(GlobeError):
    """A backup could not be written, or an archive cannot be restored."""

    slug = "backup"
    status = 400
    title = "Backup refused"


class _HashingReader:
    """A file wrapper that hashes what is read through it."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.sha256.update(data)
        return data


class _HashingWriter:
    """A file wrapper that hashes what is written through it (the archive's SHA-256, as
    ``sha256sum`` prints it, without reading the archive again)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def snapshot_database(src: Path, dst: Path) -> None:
    """Copy the live database ``src`` into the new file ``dst`` (SQLite online backup)."""
    if not src.is_file():
        raise BackupError(f"{src} not found: not a node directory?")
    source = sqlite3.connect(src, timeout=30)
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot snapshot {src}: {exc}") from None
    finally:
        source.close()
    os.chmod(dst, 0o600)


def _members(directory: Path, snapshot: Path) -> list[tuple[str, Path]]:
    """``(name in the archive, file)`` of everything a backup holds, manifest aside."""
    members: list[tuple[str, Path]] = []
    for name in FILES:
        path = directory / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise BackupError(f"{path} is not a regular file")
        if path.is_file():
            members.append((name, path))
        elif name in REQUIRED:
            raise BackupError(f"{path} not found: not a complete node directory")
    members.append((DB_NAME, snapshot))
    blobs = directory / BLOBS
    if blobs.is_dir() and not blobs.is_symlink():
        for path in sorted(blobs.rglob("*")):
            name = path.relative_to(directory).as_posix()
            # skip links and half-written temporary files of the running daemon
            if path.is_symlink() or not path.is_file() or path.name.startswith("."):
                continue
            if path.name.endswith((".part", ".tmp")):
                continue
            members.append((name, path))
    return members


def _file_info(name: str, size: int, mtime: float, *, mode: int = 0o600) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def create_backup(
    directory: Path, out: Path, *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """Write the backup archive of the node in ``directory`` to the new file ``out``."""
    config = load_config(directory)
    out = out.absolute()
    if out.exists() or out.is_symlink():
        raise BackupError(f"{out} already exists; refusing to overwrite it")
    if not out.parent.is_dir():
        raise BackupError(f"directory {out.parent} does not exist")
    work = Path(tempfile.mkdtemp(prefix=".globe-node-backup.", dir=out.parent))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        snapshot = work / DB_NAME
        snapshot_database(config.db_path, snapshot)
        manifest: dict[str, Any] = {
            "type": MANIFEST_TYPE,
            "v": 1,
            "authority": config.authority,
            "created": int(clock()),
            "files": {},
        }
        total = 0
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw:
            hashed = _HashingWriter(raw)
            # gzip writes its output through write() and flush() only
            sink = cast(IO[bytes], hashed)
            with tarfile.open(fileobj=sink, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
                for name, path in _members(directory, snapshot):
                    with path.open("rb") as f:
                        st = os.fstat(f.fileno())
                        reader = _HashingReader(f)
                        tar.addfile(_file_info(name, st.st_size, st.st_mtime), reader)
                    manifest["files"][name] = {
                        "sha256": reader.sha256.hexdigest(),
                        "size": st.st_size,
                    }
                    total += st.st_size
                body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                tar.addfile(_file_info(MANIFEST, len(body), clock()), io.BytesIO(body))
            raw.flush()
            os.fsync(raw.fileno())
        try:
            os.link(tmp, out)
        except FileExistsError:
            raise BackupError(f"{out} already exists; refusing to overwrite it") from None
        _fsync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "out": str(out),
        "authority": config.authority,
        "created": manifest["created"],
        "files": len(manifest["files"]),
        "bytes": total,
        "archive_bytes": out.stat().st_size,
        "sha256": hashed.sha256.hexdigest(),
        "manifest": manifest["files"],
    }


# --- the record the node database keeps ---------------------------------------------------------

_FIELDS: Final[dict[str, type]] = {
    "created": int, "file": str, "size": int, "sha256": str, "authority": str,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BackupRecord:
    """A backup ``globe-node backup`` wrote, as the node database remembers it.

    When (Unix time), the archive's file name, its size in bytes and SHA-256 (hex, as
    ``sha256sum`` prints it), and the authority.

    The file name, not the path: archives are moved off the node, where the directory
    they were written to says nothing true any more, while the name (and the digest)
    still finds and checks one; and a path would show the node host's layout to anyone
    who may read the operator's pages."""

    created: int
    file: str
    size: int
    sha256: str
    authority: str

    def to_json(self) -> dict[str, Any]:
        """The stored and the local API's form."""
        return {"created": self.created, "file": self.file, "size": self.size,
                "sha256": self.sha256, "authority": self.authority}  # fmt: skip

    @classmethod
    def from_json(cls, value: object) -> BackupRecord:
        """Strictly read what :meth:`to_json` wrote; :class:`ValueError` otherwise."""
        if not isinstance(value, dict) or set(value) != set(_FIELDS):
            raise ValueError("not a backup record")
        if any(type(value[k]) is not t for k, t in _FIELDS.items()):
            raise ValueError("a backup record's field has the wrong type")
        return cls(**value)


@dataclass(frozen=True, slots=True)
class BackupsView:
    """The backups the node remembers, newest first, and whether the newest is too old.

    ``newest_age_s`` is its age in seconds (``None``: none is recorded), ``stale`` whether
    that is more than ``stale_after_s`` (:data:`STALE_AFTER`) or none is recorded."""

    backups: tuple[BackupRecord, ...]
    newest_age_s: int | None
    stale_after_s: int
    stale: bool

    def to_json(self) -> dict[str, Any]:
        """The local API's form (``GET /api/backups``)."""
        return {"backups": [b.to_json() for b in self.backups],
                "newest_age_s": self.newest_age_s, "stale_after_s": self.stale_after_s,
                "stale": self.stale}  # fmt: skip


def _decode(raw: str | None) -> list[BackupRecord]:
    """The stored records; none (and a warning) if the row is not what :func:`remember`
    writes: then the pages say no backup is known, which asks for a new one."""
    if raw is None:
        return []
    try:
        items = orjson.loads(raw)
        if not isinstance(items, list):
            raise ValueError("not a list")
        return [BackupRecord.from_json(item) for item in items]
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        log.warning("the node database's record of backups is unreadable (%s): ignored", exc)
        return []


async def recorded(store: Store, now: int) -> BackupsView:
    """The backups the node database remembers, as of ``now``."""
    records = _decode(await store.meta(META_KEY))
    age = None if not records else max(0, now - records[0].created)
    return BackupsView(tuple(records), age, STALE_AFTER, age is None or age > STALE_AFTER)


async def remember(audit: AuditLog, record: BackupRecord, *, by: str) -> None:
    """Add ``record`` to the backups the node database remembers (the newest
    :data:`KEEP`), with the audit row ``backup`` by ``by``, in one short transaction.

    Safe while the daemon runs: the audit row is written first, which takes the
    database's write lock, so no other writer (the daemon, another backup) commits
    between the read of the stored records below and their replacement.
    """
    store = audit.store
    subject = f"{record.file} ({record.size} bytes, sha256 {record.sha256})"
    async with audit.lock, store.write() as s:
        await audit.add(s, record.created, by, "backup", subject)
        # Read on another connection: it sees the last commit, and none can follow
        # while this transaction holds the write lock.
        kept = [record, *_decode(await store.meta(META_KEY))][:KEEP]
        body = orjson.dumps([r.to_json() for r in kept]).decode()
        await store.put_meta(s, META_KEY, body)


# --- restore ------------------------------------------------------------------------------------


def _check_name(member: tarfile.TarInfo) -> str:
    """The member's safe relative name; :class:`BackupError` for anything else."""
    name = member.name
    path = PurePosixPath(name)
    if (
        not name
        or path.is_absolute()
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in name.rstrip("/").split("/"))
    ):
        raise BackupError(f"unsafe member name {name!r} in the archive: refusing to restore it")
    if not (member.isfile() or member.isdir()):
        raise BackupError(f"archive member {name!r} is a link or a device: refusing to restore it")
    name = name.rstrip("/")
    top = name.split("/", 1)[0]
    if member.isdir():
        if top != BLOBS:
            raise BackupError(f"unexpected directory {name!r} in the archive")
    elif name not in (*FILES, DB_NAME, MANIFEST) and not (top == BLOBS and "/" in name):
        raise BackupError(f"unexpected member {name!r} in the archive")
    return name


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    """Write one member to the new file ``target`` (mode 0600); its SHA-256 (hex)."""
    src = tar.extractfile(member)
    if src is None:  # pragma: no cover - regular files always have data
        raise BackupError(f"cannot read {member.name!r} from the archive")
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def _read_manifest(data: bytes) -> dict[str, dict[str, Any]]:
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BackupError(f"{MANIFEST} is not JSON") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("type") != MANIFEST_TYPE
        or manifest.get("v") != 1
        or not isinstance(manifest.get("files"), dict)
    ):
        raise BackupError(f"{MANIFEST} is not a globe-node backup manifest (version 1)")
    files: dict[str, dict[str, Any]] = manifest["files"]
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BackupError(f"{MANIFEST}: malformed entry for {name!r}")
    return files


def _clear(dest: Path, created: bool) -> None:
    """Remove what a failed restore wrote."""
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _unpack(archive: Path, dest: Path) -> dict[str, str]:
    """Extract ``archive`` into the empty ``dest``; the SHA-256 of every file, checked."""
    digests: dict[str, str] = {}
    manifest_data: bytes | None = None
    seen: set[str] = set()
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                name = _check_name(member)
                if name in seen:
                    raise BackupError(f"archive member {name!r} appears twice")
                seen.add(name)
                if name == MANIFEST:
                    if member.size > MAX_MANIFEST:
                        raise BackupError(f"{MANIFEST} is too large")
                    src = tar.extractfile(member)
                    manifest_data = src.read() if src is not None else b""
                elif member.isdir():
                    (dest / name).mkdir(mode=0o700, parents=True, exist_ok=True)
                else:
                    (dest / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    digests[name] = _extract(tar, member, dest / name)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupError(f"{archive}: not a readable backup archive ({exc})") from None
    if manifest_data is None:
        raise BackupError(f"{archive}: no {MANIFEST}: not a globe-node backup")
    _verify(digests, _read_manifest(manifest_data))
    return digests


def _verify(digests: dict[str, str], listed: dict[str, dict[str, Any]]) -> None:
    """Every extracted file is in the manifest with the same SHA-256, and the reverse."""
    missing = sorted(set(listed) - set(digests))
    extra = sorted(set(digests) - set(listed))
    if missing:
        raise BackupError(f"the archive lacks {', '.join(missing)} listed in {MANIFEST}")
    if extra:
        raise BackupError(f"the archive holds {', '.join(extra)}, not listed in {MANIFEST}")
    for name, digest in digests.items():
        if digest != listed[name]["sha256"]:
            raise BackupError(
                f"{name}: SHA-256 differs from {MANIFEST} (the archive was altered or damaged)"
            )
    absent = sorted(REQUIRED - set(digests))
    if absent:
        raise BackupError(f"the archive lacks {', '.join(absent)}: not a complete node backup")


def restore_backup(
    archive: Path, dest: Path, *, check: Callable[[Path], None] | None = None
) -> dict[str, Any]:
    """Restore ``archive`` into ``dest`` (absent or empty), then run ``check(dest)``.

    ``check`` (e.g. opening ``keys.sealed`` with the passphrase) runs before the
    restore counts as done; if it or anything else fails, everything written is removed.
    """
    dest = dest.absolute()
    if not archive.is_file():
        raise BackupError(f"{archive}: no such archive")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise BackupError(f"{dest} exists and is not a directory")
    created = not dest.exists()
    if not created and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; restore into a new or empty directory")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(dest, 0o700)
        digests = _unpack(archive, dest)
        (dest / BLOBS).mkdir(mode=0o700, exist_ok=True)
        for root, dirs, files in os.walk(dest):
            for d in dirs:
                os.chmod(Path(root) / d, 0o700)
            for f in files:
                os.chmod(Path(root) / f, 0o600)
        if check is not None:
            check(dest)
        _fsync_dir(dest)
    except BaseException:
        _clear(dest, created)
        raise
    return {"directory": str(dest), "files": len(digests), "verified": sorted(digests)}
