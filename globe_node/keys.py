"""The node's long-term secrets, sealed with the passphrase (R12; PROTOCOL.md §3.5).

One key file, ``DIR/keys.sealed`` (mode 0600), holds the identity signing key,
the transport signing key, the certified key-agreement (KEM) key and the
storage key that encrypts message content at rest.  Prekey private halves live
in the database, sealed under the storage key, so erasing one is a row update.

The passphrase is changed by re-sealing the same keys (:func:`reseal_keys`) under
:func:`key_file_lock`: the new file replaces the old by one atomic rename
(:func:`globe_io.files.write_atomic`), so a crash at any moment leaves the old file
(the old passphrase opens it) or the new one (the new passphrase does), never neither.
The daemon reads the file only when it starts, so it may run meanwhile.

A key update (docs/PROTOCOL.md §6.8) keeps the **next** keys in the same file, beside the
current ones (:class:`NextKeys`, written by ``globe-node keys update`` under
:func:`key_file_lock`): one file, so a passphrase change re-seals both at once, and no
crash can leave the two under different passphrases.  The daemon picks them up when the
file changes (:class:`KeyFile`), switches to them when its verified log certifies them,
and then writes the file with the next keys as the current ones
(:mod:`globe_node.rekey`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from globe_io.errors import Conflict
from globe_io.files import write_atomic
from protocol import canonical, crypto
from protocol.canonical import ObjectReader
from protocol.errors import DecryptionFailed, StorageError
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keystore import MODERATE, KdfCost, open_secret, seal_secret
from protocol.membership import Certificate, authority_fingerprint

__all__ = [
    "PURPOSE",
    "ROLES",
    "KeyFile",
    "NextKeys",
    "NodeKeys",
    "file_cost",
    "key_file_lock",
    "load_keys",
    "reseal_keys",
    "save_keys",
    "write_private",
]

PURPOSE: Final = "node-keys"


#: The roles a key update may keep (``globe-node keys update --keep``).
ROLES: Final = ("identity", "transport", "ka")


@dataclass(frozen=True, slots=True)
class NextKeys:
    """The keys a key update asks for (a kept key is the current one), and the time of
    the request, so that the same request can be made again byte for byte."""

    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey
    created: int

    @classmethod
    def generate(
        cls, current: NodeKeys, *, keep: frozenset[str], created: int,
        rng: crypto.Rng = crypto.system_rng,
    ) -> NextKeys:  # fmt: skip
        """Fresh keys, except those of the roles in ``keep`` (see :data:`ROLES`)."""
        return cls(
            current.identity if "identity" in keep else SigningKey.generate(rng),
            current.transport if "transport" in keep else SigningKey.generate(rng),
            current.ka if "ka" in keep else KemPrivateKey.generate(rng),
            created,
        )

    def certified_by(self, cert: Certificate) -> bool:
        """Whether ``cert`` certifies exactly these three keys."""
        return _certifies(cert, self.identity, self.transport, self.ka)

    def fingerprint(self, authority: AuthorityId) -> str:
        """The authority fingerprint these keys will have (docs/PROTOCOL.md §3.4): what the
        admins compare out of band before they sign the key update."""
        return _fingerprint(authority, self.identity, self.transport, self.ka)

    def to_json(self) -> dict[str, object]:
        """The next keys as :meth:`NodeKeys.encode` writes them."""
        return {
            "identity": canonical.b64e(self.identity.seed),
            "transport": canonical.b64e(self.transport.seed),
            "ka": canonical.b64e(self.ka.raw),
            "created": self.created,
        }

    @classmethod
    def read(cls, r: ObjectReader) -> NextKeys:
        """Strictly read what :meth:`to_json` wrote."""
        out = cls(
            SigningKey(r.blob("identity", length=32)),
            SigningKey(r.blob("transport", length=32)),
            KemPrivateKey(r.blob("ka", length=crypto.KEM_PRIVATE_LEN)),
            r.integer("created"),
        )
        r.done()
        return out


def _certifies(cert: Certificate, identity: SigningKey, transport: SigningKey,
               ka: KemPrivateKey) -> bool:  # fmt: skip
    return (
        cert.identity_key == identity.verify_key
        and cert.transport_key == transport.verify_key
        and cert.ka_key_raw == bytes(ka.public_key)
    )


def _fingerprint(authority: AuthorityId, identity: SigningKey, transport: SigningKey,
                 ka: KemPrivateKey) -> str:  # fmt: skip
    return authority_fingerprint(
        authority=authority, identity=identity.verify_key, transport=transport.verify_key,
        ka=ka.public_key,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """Everything secret a node holds besides its prekeys (and, during a key update, the
    next keys it asked for)."""

    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey
    storage: bytes  # 32 bytes: the at-rest key of message content
    next: NextKeys | None = None

    def certified_by(self, cert: Certificate) -> bool:
        """Whether ``cert`` certifies exactly the current three keys."""
        return _certifies(cert, self.identity, self.transport, self.ka)

    def fingerprint(self, authority: AuthorityId) -> str:
        """The authority fingerprint of the current keys (docs/PROTOCOL.md §3.4): the value
        ``globe-node init`` printed and ``globe-admin show`` prints for the application."""
        return _fingerprint(authority, self.identity, self.transport, self.ka)

    def with_next(self, next_keys: NextKeys | None) -> NodeKeys:
        """These keys with ``next_keys`` beside them (``None``: none)."""
        return replace(self, next=next_keys)

    def promoted(self) -> NodeKeys:
        """The next keys as the current ones (the storage key stays)."""
        if self.next is None:
            raise StorageError("no next keys to switch to")
        n = self.next
        return NodeKeys(n.identity, n.transport, n.ka, self.storage)

    @classmethod
    def generate(cls, rng: crypto.Rng = crypto.system_rng) -> NodeKeys:
        """Fresh keys."""
        return cls(
            SigningKey.generate(rng), SigningKey.generate(rng), KemPrivateKey.generate(rng), rng(32)
        )

    def encode(self) -> bytes:
        """Canonical JSON of the secrets (only ever sealed)."""
        value: dict[str, object] = {
            "type": "node-keys",
            "v": 1,
            "identity": canonical.b64e(self.identity.seed),
            "transport": canonical.b64e(self.transport.seed),
            "ka": canonical.b64e(self.ka.raw),
            "storage": canonical.b64e(self.storage),
        }
        if self.next is not None:
            value["next"] = self.next.to_json()
        return canonical.encode(value)

    @classmethod
    def decode(cls, data: bytes) -> NodeKeys:
        """Strictly decode what :meth:`encode` wrote."""
        r = ObjectReader(canonical.decode(data, max_size=16 * 1024, what="node keys"), "node keys")
        r.string("type", max_len=16)
        r.integer("v", lo=1, hi=1)
        out = cls(
            SigningKey(r.blob("identity", length=32)),
            SigningKey(r.blob("transport", length=32)),
            KemPrivateKey(r.blob("ka", length=crypto.KEM_PRIVATE_LEN)),
            r.blob("storage", length=32),
            NextKeys.read(r.object("next")) if r.has("next") else None,
        )
        r.done()
        return out


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600."""
    write_atomic(path, data, mode=0o600)


def save_keys(path: Path, keys: NodeKeys, passphrase: bytes, cost: KdfCost = MODERATE) -> None:
    """Seal ``keys`` with the passphrase into ``path``."""
    write_private(path, seal_secret(keys.encode(), passphrase, purpose=PURPOSE, cost=cost))


def load_keys(path: Path, passphrase: bytes) -> NodeKeys:
    """Open the key file; :class:`DecryptionFailed` for a wrong passphrase."""
    return NodeKeys.decode(open_secret(path.read_bytes(), passphrase, purpose=PURPOSE))


@contextlib.contextmanager
def key_file_lock(path: Path) -> Iterator[None]:
    """Hold the node directory's lock on its key file while re-sealing it, else
    :class:`Conflict` at once: two passphrase changes at the same time would each believe
    their passphrase is the one that opens the file.

    The lock is ``flock`` on the directory itself (no lock file to leave behind); the
    kernel releases it when the process ends, however it ends.
    """
    fd = os.open(path.absolute().parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise Conflict(
                f"{path}: another command (a passphrase change or a key update) is writing it;"
                " wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def reseal_keys(path: Path, keys: NodeKeys, passphrase: bytes, cost: KdfCost = MODERATE) -> None:
    """Replace the key file by ``keys`` sealed under a new ``passphrase`` (the caller holds
    :func:`key_file_lock` and opened ``keys`` from this file), then check that the new
    file opens with it and holds the same keys.

    Temporary files an interrupted change left (``.keys.sealed.*.tmp``: the keys under a
    passphrase that never took effect) are removed first.
    """
    for stale in path.absolute().parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    save_keys(path, keys, passphrase, cost)
    if load_keys(path, passphrase).encode() != keys.encode():  # pragma: no cover - the disk
        raise StorageError(f"{path}: the re-sealed keys do not read back; check the disk")


def file_cost(path: Path) -> KdfCost:
    """The Argon2id costs ``path`` was sealed with (a re-sealed file keeps them)."""
    r = ObjectReader(canonical.decode(path.read_bytes(), max_size=64 * 1024, what="key file"),
                     "key file")  # fmt: skip
    return KdfCost(r.integer("ops"), r.integer("mem"))


@dataclass(frozen=True, slots=True)
class KeyFile:
    """The daemon's handle on ``keys.sealed``: the path and the passphrase it started with.

    The daemon keeps the passphrase to read the next keys ``globe-node keys update``
    writes while it runs, and to write the file once it switched to them.  A passphrase
    changed since (``globe-node passphrase change``) no longer opens the file: both are
    then left to the next start, which has the new passphrase.
    """

    path: Path
    passphrase: bytes = field(repr=False)

    def stamp(self) -> tuple[int, int]:
        """What changes when the file is replaced: its inode and modification time."""
        st = self.path.stat()
        return st.st_ino, st.st_mtime_ns

    def load(self) -> NodeKeys | None:
        """The keys in the file, or ``None`` if the passphrase no longer opens it."""
        try:
            return load_keys(self.path, self.passphrase)
        except DecryptionFailed:
            return None

    def rewrite(self, keys: NodeKeys, *, replacing: NodeKeys) -> bool:
        """Replace the file by ``keys`` (same passphrase and costs) if it still holds
        ``replacing``; whether it did.  Under :func:`key_file_lock`; a file another
        command is changing, or one the passphrase no longer opens, is left as it is."""
        try:
            with key_file_lock(self.path):
                if (held := self.load()) is None or held.encode() != replacing.encode():
                    return False
                save_keys(self.path, keys, self.passphrase, file_cost(self.path))
        except Conflict:
            return False
        return True
