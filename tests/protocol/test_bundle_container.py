"""The evidence bundle's container: the one ZIP layout, written and read strictly
(protocol/bundlezip.py; docs/PROTOCOL.md §9.3.1)."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from protocol import bundlezip
from protocol.bundlezip import (
    MemberSpec,
    container_parts,
    container_size,
    crc32,
    encode_container,
    parse_container,
)
from protocol.errors import MalformedError, SizeLimitExceeded, Truncated, UsageError

A = MemberSpec.of("manifest.json", b'{"a":1}')
B = MemberSpec.of("genesis.json", b"genesis bytes")
C = MemberSpec.of("log/00000001.json", b"")


def two() -> bytes:
    return encode_container([A, B])


def test_a_container_reads_back_member_by_member_and_zipfile_agrees() -> None:
    data = encode_container([A, B, C])
    assert len(data) == container_size([A, B, C])
    got = parse_container(data)
    assert [(m.name, bytes(m.data), m.stated_crc) for m in got] == [
        ("manifest.json", b'{"a":1}', crc32(b'{"a":1}')),
        ("genesis.json", b"genesis bytes", crc32(b"genesis bytes")),
        ("log/00000001.json", b"", 0),
    ]
    # any archive tool opens it: Python's own reader checks every CRC and finds the layout
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert [
            (i.filename, i.compress_type, i.date_time, i.external_attr >> 16) for i in z.infolist()
        ] == [
            (n, zipfile.ZIP_STORED, (1980, 1, 1, 0, 0, 0), 0o100644)
            for n in ("manifest.json", "genesis.json", "log/00000001.json")
        ]
        assert z.read("genesis.json") == b"genesis bytes"


def test_the_layout_is_exactly_these_bytes() -> None:
    data = encode_container([MemberSpec.of("a", b"xy")])
    crc = crc32(b"xy")
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 10, 0, 0, 0, 0x21, crc, 2, 2, 1, 0) + b"a"
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 10, 0, 0, 0, 0x21, crc, 2, 2, 1, 0, 0, 0, 0,
            0o100644 << 16, 0,
        )
        + b"a"
    )  # fmt: skip
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + 2, 0)
    assert data == local + b"xy" + central + end


def test_members_without_bytes_are_streamed_by_the_caller() -> None:
    streamed = MemberSpec("attachment", 3, crc32(b"abc"))
    parts = list(container_parts([A, streamed]))
    assert parts[3] is streamed
    written = b"".join(b"abc" if p is streamed else p for p in parts)  # type: ignore[misc]
    assert written == encode_container([A, MemberSpec.of("attachment", b"abc")])
    with pytest.raises(UsageError, match="member 'attachment' has no bytes"):
        encode_container([A, streamed])


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "1-65535 members, each named once"),
        ([A, A], "1-65535 members, each named once"),
        ([MemberSpec.of("é", b"")], "1-255 ASCII characters"),
        ([MemberSpec.of("x" * 256, b"")], "1-255 ASCII characters"),
        ([MemberSpec("big", 2**32, 0)], "at most 4294967295 bytes"),
    ],
)
def test_what_the_layout_cannot_hold_is_refused_when_written(
    specs: list[MemberSpec], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        list(container_parts(specs))


def test_too_many_members_are_refused_when_written_and_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = encode_container([A, B, C])
    monkeypatch.setattr(bundlezip, "MAX_MEMBERS", 2)
    with pytest.raises(UsageError, match="1-2 members"):
        list(container_parts([A, B, C]))
    with pytest.raises(SizeLimitExceeded, match="more than 2 members"):
        parse_container(data)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = two()
    monkeypatch.setattr(bundlezip, "MAX_CONTAINER_SIZE", len(data) - 1)
    with pytest.raises(SizeLimitExceeded, match=f"{len(data)} bytes exceeds {len(data) - 1}"):
        parse_container(data)


def _set(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt) :]


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda d: b"", MalformedError, "no ZIP member at the start"),
        (lambda d: b"MZ" + d, MalformedError, "no ZIP member at the start"),
        (lambda d: d[:20], Truncated, "inside the header of member 1"),
        (lambda d: d[:40], Truncated, "inside the name of member 1"),
        (lambda d: d[:45], Truncated, "inside the bytes of manifest.json"),
        (lambda d: d[:-30], Truncated, "inside the central directory"),
        (lambda d: d[:-1], Truncated, "inside the central directory"),
        (lambda d: d + b"\0", MalformedError, "1 bytes after the end record"),
        (lambda d: _set(d, 8, "<H", 8), MalformedError, "member 1 is not a plain stored file"),
        (lambda d: _set(d, 6, "<H", 0x0800), MalformedError, "not a plain stored file"),
        (lambda d: _set(d, 28, "<H", 4), MalformedError, "not a plain stored file"),
        (lambda d: _set(d, 10, "<H", 1), MalformedError, "not a plain stored file"),
        (lambda d: _set(d, 4, "<H", 20), MalformedError, "not a plain stored file"),
        (lambda d: _set(d, 12, "<H", 0x22), MalformedError, "not a plain stored file"),
        (lambda d: _set(d, 18, "<I", 6), MalformedError, "member 1 states two different sizes"),
        (lambda d: _set(d, 14, "<I", 0), MalformedError, "central directory or end record"),
        (lambda d: d[:-22] + d[-22:-2] + b"\1\0x", MalformedError, "central directory or end"),
        (lambda d: d[:30] + b"M" + d[31:], MalformedError, "a name a bundle cannot hold"),
        (lambda d: d[:30] + b"\xe9" + d[31:], MalformedError, "a name a bundle cannot hold"),
        (lambda d: _set(d, 26, "<H", 0), MalformedError, "a name a bundle cannot hold"),
    ],
)
def test_every_other_byte_sequence_is_refused(edit, error, message) -> None:
    with pytest.raises(error, match=message):
        parse_container(edit(two()), name_ok=lambda n: n == n.lower())


def test_a_name_over_255_characters_is_refused_when_read() -> None:
    long = b"x" * 256
    data = two()
    forged = _set(data, 26, "<H", 256)[:30] + long + data[43:]
    with pytest.raises(MalformedError, match="a name a bundle cannot hold"):
        parse_container(forged)


def test_a_name_repeated_is_refused() -> None:
    data = encode_container([A, MemberSpec.of("manifest.jsoo", b"x")])
    at = data.index(b"manifest.jsoo")
    forged = data[:at] + b"manifest.json" + data[at + 13 :]
    with pytest.raises(MalformedError, match=r"member 'manifest\.json' appears twice"):
        parse_container(forged)


def test_a_member_whose_bytes_changed_is_read_with_the_crc_it_states() -> None:
    data = bytearray(two())
    data[30 + len("manifest.json")] ^= 1  # the first byte of the manifest's bytes
    first = parse_container(bytes(data))[0]
    assert crc32(first.data) != first.stated_crc == crc32(b'{"a":1}')


def test_a_memory_view_is_read_without_copies() -> None:
    data = bytearray(two())
    view = memoryview(data)
    got = parse_container(view)
    assert got[1].data.obj is data
