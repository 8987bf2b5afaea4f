"""The evidence bundle's container: one layout of an uncompressed ZIP file (PROTOCOL.md §9.3.1).

A bundle is a ZIP file any archive tool opens, restricted to exactly one way of
writing it, so that a verifier can refuse every other byte sequence::

    for each member:  local file header (30 bytes + name) || the member's bytes
    for each member:  central directory header (46 bytes + name)
    end of central directory record (22 bytes)

Every member is *stored* (no compression), dated 1980-01-01 00:00, a regular
file (no directory, no link), with an ASCII name, no extra field and no
comment; the whole file is below 4 GiB (no ZIP64).  ZIP integers are
little-endian (APPNOTE.TXT), the one exception to §1.3.

:func:`parse_container` reads a buffer (a ``bytes`` object or a memory map of the
file: nothing is extracted, a member is a view into the buffer) from the first
byte to the last and refuses anything but this layout.  It does not judge a
member's CRC-32: a member whose bytes were altered is named by the bundle's
verification (``item-altered``), not refused here as an unreadable file.
:func:`container_parts` writes the layout, streaming the members whose bytes the
caller supplies itself (an attachment decrypted as it is sent).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from protocol.crypto import BytesLike
from protocol.errors import MalformedError, SizeLimitExceeded, Truncated, UsageError

__all__ = [
    "MAX_CONTAINER_SIZE",
    "MAX_MEMBERS",
    "Member",
    "MemberSpec",
    "container_parts",
    "container_size",
    "crc32",
    "encode_container",
    "parse_container",
]

#: A bundle is below 4 GiB: every offset and size fits the 32-bit fields (no ZIP64).
MAX_CONTAINER_SIZE: Final = 0xFFFFFFFF
#: The 16-bit member count of the end record.
MAX_MEMBERS: Final = 0xFFFF

_LOCAL: Final = b"PK\x03\x04"
_CENTRAL: Final = b"PK\x01\x02"
_END: Final = b"PK\x05\x06"
_LOCAL_FIXED: Final = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
_CENTRAL_FIXED: Final = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
_END_FIXED: Final = struct.Struct("<4sHHHHIIH")  # 22 bytes
_NEEDED: Final = 10  # "version needed to extract": 1.0, a stored file
_MADE_BY: Final = (3 << 8) | 20  # UNIX, APPNOTE 2.0: the external attributes are a file mode
_DOS_DATE: Final = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_FILE_MODE: Final = 0o100644 << 16  # a regular file, rw-r--r--
_MAX_NAME: Final = 255


def crc32(data: BytesLike, value: int = 0) -> int:
    """The ZIP CRC-32 of ``data``, continuing from ``value`` (for data in pieces)."""
    return zlib.crc32(data, value)


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """A member to write: its name, size and CRC-32, and its bytes unless the caller streams
    them (``data`` is ``None``: the caller writes exactly ``size`` bytes of that CRC)."""

    name: str
    size: int
    crc: int
    data: bytes | None = None

    @classmethod
    def of(cls, name: str, data: bytes) -> MemberSpec:
        """A member whose bytes are at hand."""
        return cls(name, len(data), crc32(data), data)


@dataclass(frozen=True, slots=True)
class Member:
    """A member read from a container: its name, its bytes (a view into the buffer) and the
    CRC-32 its headers state (:func:`crc32` of ``data`` for an unaltered member)."""

    name: str
    data: memoryview
    stated_crc: int


def _local(spec: MemberSpec, name: bytes) -> bytes:
    return (
        _LOCAL_FIXED.pack(
            _LOCAL, _NEEDED, 0, 0, 0, _DOS_DATE, spec.crc, spec.size, spec.size, len(name), 0
        )
        + name
    )


def _central(spec: MemberSpec, name: bytes, offset: int) -> bytes:
    return _CENTRAL_FIXED.pack(
        _CENTRAL, _MADE_BY, _NEEDED, 0, 0, 0, _DOS_DATE, spec.crc, spec.size, spec.size,
        len(name), 0, 0, 0, 0, _FILE_MODE, offset,
    ) + name  # fmt: skip


def _name(name: str) -> bytes:
    if not name.isascii() or not 1 <= len(name) <= _MAX_NAME:
        raise UsageError(f"a member name is 1-{_MAX_NAME} ASCII characters: {name!r}")
    return name.encode("ascii")


def _tail(specs: Sequence[MemberSpec]) -> tuple[list[int], bytes]:
    """Each member's local header offset, and the central directory with the end record."""
    offsets: list[int] = []
    at = 0
    for spec in specs:
        offsets.append(at)
        at += 30 + len(_name(spec.name)) + spec.size
    central = b"".join(
        _central(spec, _name(spec.name), off) for spec, off in zip(specs, offsets, strict=True)
    )
    end = _END_FIXED.pack(_END, 0, 0, len(specs), len(specs), len(central), at, 0)
    return offsets, central + end


def container_size(specs: Sequence[MemberSpec]) -> int:
    """The size in bytes of the container of ``specs``."""
    return sum(76 + 2 * len(spec.name) + spec.size for spec in specs) + 22


def container_parts(specs: Sequence[MemberSpec]) -> Iterator[bytes | MemberSpec]:
    """The container, in order: bytes to write as they are, and for each member whose
    ``data`` is ``None`` that member's spec, where the caller writes its bytes.

    Refuses (:class:`UsageError`) what the layout cannot hold: no member, more than
    :data:`MAX_MEMBERS`, a name that is not 1-255 ASCII characters or is repeated, a total
    of :data:`MAX_CONTAINER_SIZE` bytes or more.
    """
    names = [spec.name for spec in specs]
    if not specs or len(specs) > MAX_MEMBERS or len(set(names)) != len(names):
        raise UsageError(f"a container has 1-{MAX_MEMBERS} members, each named once")
    if container_size(specs) > MAX_CONTAINER_SIZE:
        raise UsageError(f"a container is at most {MAX_CONTAINER_SIZE} bytes")
    _, tail = _tail(specs)
    for spec in specs:
        yield _local(spec, _name(spec.name))
        yield spec if spec.data is None else spec.data
    yield tail


def encode_container(specs: Sequence[MemberSpec]) -> bytes:
    """The whole container of members whose bytes are all at hand."""
    out: list[bytes] = []
    for part in container_parts(specs):
        if isinstance(part, MemberSpec):
            raise UsageError(f"member {part.name!r} has no bytes")
        out.append(part)
    return b"".join(out)


class _Reader:
    """Bounds-checked reads from the buffer; running past its end is :class:`Truncated`."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if n > len(self.buf) - self.pos:
            raise Truncated(f"bundle: the file ends inside {what}")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def at(self, signature: bytes) -> bool:
        return bytes(self.buf[self.pos : self.pos + 4]) == signature


def parse_container(
    data: BytesLike, *, name_ok: Callable[[str], bool] = lambda _name: True
) -> list[Member]:
    """The members of a container in the one layout, in order (PROTOCOL.md §9.3.1).

    Refusals, in the order of the bytes: more than :data:`MAX_CONTAINER_SIZE` bytes or
    :data:`MAX_MEMBERS` members (``size-limit``); the file ending inside a header, a name,
    a member or the directory (``truncated``); no member, a local header whose fixed fields
    are not those of the layout, a name that is not ASCII or that ``name_ok`` refuses or
    that repeats, a central directory or end record that is not exactly the one the members
    imply, bytes after the end record (``malformed``).
    """
    buf = memoryview(data).cast("B")
    if len(buf) > MAX_CONTAINER_SIZE:
        raise SizeLimitExceeded(f"bundle: {len(buf)} bytes exceeds {MAX_CONTAINER_SIZE}")
    r = _Reader(buf)
    members: list[Member] = []
    specs: list[MemberSpec] = []
    seen: set[str] = set()
    while r.at(_LOCAL):
        if len(members) == MAX_MEMBERS:
            raise SizeLimitExceeded(f"bundle: more than {MAX_MEMBERS} members")
        member = _read_member(r, len(members) + 1, name_ok)
        if member.name in seen:
            raise MalformedError(f"bundle: member {member.name!r} appears twice")
        seen.add(member.name)
        members.append(member)
        specs.append(MemberSpec(member.name, len(member.data), member.stated_crc))
    if not members:
        raise MalformedError("bundle: not a bundle (no ZIP member at the start of the file)")
    _, tail = _tail(specs)
    found = r.take(min(len(tail), len(buf) - r.pos), "the central directory")
    if bytes(found) != tail[: len(found)]:
        raise MalformedError(
            "bundle: the central directory or end record is not the one its members imply"
        )
    if len(found) < len(tail):
        raise Truncated("bundle: the file ends inside the central directory")
    if r.pos != len(buf):
        raise MalformedError(f"bundle: {len(buf) - r.pos} bytes after the end record")
    return members


def _read_member(r: _Reader, index: int, name_ok: Callable[[str], bool]) -> Member:
    what = f"member {index}"
    fields = _LOCAL_FIXED.unpack(r.take(30, f"the header of {what}"))
    _, needed, flags, method, mtime, mdate, crc, csize, usize, name_len, extra_len = fields
    if (needed, flags, method, mtime, mdate, extra_len) != (_NEEDED, 0, 0, 0, _DOS_DATE, 0):
        raise MalformedError(
            f"bundle: {what} is not a plain stored file (compression, flags, date or extra"
            " field differ from the layout)"
        )
    if csize != usize:
        raise MalformedError(f"bundle: {what} states two different sizes")
    raw = bytes(r.take(name_len, f"the name of {what}"))
    if not raw.isascii() or not 1 <= len(raw) <= _MAX_NAME or not name_ok(raw.decode("ascii")):
        raise MalformedError(f"bundle: {what} has a name a bundle cannot hold: {raw[:80]!r}")
    name = raw.decode("ascii")
    return Member(name, r.take(usize, f"the bytes of {name}"), crc)
