"""The optional ``blobs`` header field: attachment blob ids the hub can see (§7.2, §8.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from protocol import canonical
from protocol.devnet import DevNetwork
from protocol.envelope import MAX_BLOBS, SealTo, open_envelope, parse_envelope, seal_envelope
from protocol.errors import InvalidIdentifier, MalformedError, UsageError
from protocol.ids import AuthorityId

from .conftest import NOW

ONE, TWO = "0" * 31 + "1", "f" * 32


def _seal(net: DevNetwork, blobs: Sequence[str] = ()) -> bytes:
    fr, de = net.members["FR-PNF"], net.members["DE-BKA"]
    return seal_envelope(
        genesis=net.genesis,
        sender=fr.authority,
        identity=fr.identity,
        recipients=[SealTo(de.authority, 1, de.prekey.public_key)],
        content=b'{"x":1}',
        created=NOW,
        expires=NOW + 3600,
        dir_seq=net.directory.seq,
        dir_head=net.directory.head,
        blobs=blobs,
    )


def test_without_blobs_the_header_has_no_blobs_field(net):
    header = parse_envelope(_seal(net)).header
    assert header.blobs == ()
    assert b'"blobs"' not in header.raw


def test_blobs_are_sorted_into_the_header_and_parsed_back(net):
    env = parse_envelope(_seal(net, [TWO, ONE]))
    assert env.header.blobs == (ONE, TWO)
    obj: dict[str, Any] = orjson.loads(env.header.raw)
    assert obj["blobs"] == [ONE, TWO]
    assert canonical.encode(obj) == env.header.raw
    de = net.members["DE-BKA"]
    opened = open_envelope(
        env,
        directory=net.directory,
        me=AuthorityId.parse("DE-BKA"),
        private_key=lambda kid: de.prekey if kid == de.prekey.key_id else None,
        now=NOW,
    )
    assert opened.content == b'{"x":1}'


def test_most_blobs(net):
    ids = [f"{i:032x}" for i in range(MAX_BLOBS)]
    assert parse_envelope(_seal(net, ids)).header.blobs == tuple(ids)


@pytest.mark.parametrize(
    "blobs",
    [
        [ONE, ONE],
        ["A" * 32],
        ["0" * 31],
        ["0" * 33],
        [1],
        ONE,  # a string, not a list of ids
        [f"{i:032x}" for i in range(MAX_BLOBS + 1)],
    ],
    ids=["repeated", "upper-case", "short", "long", "not-a-string", "string", "too-many"],
)
def test_seal_refuses_bad_blob_ids(net, blobs):
    with pytest.raises(UsageError):
        _seal(net, blobs)


def _reheader(net: DevNetwork, blobs: object) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(parse_envelope(_seal(net)).header.raw)
    obj["blobs"] = blobs
    return obj


@pytest.mark.parametrize(
    ("blobs", "error"),
    [
        ([], MalformedError),
        ([TWO, ONE], MalformedError),
        ([ONE, ONE], MalformedError),
        (["A" * 32], InvalidIdentifier),
        ([ONE, 7], MalformedError),
        ([f"{i:032x}" for i in range(MAX_BLOBS + 1)], MalformedError),
    ],
    ids=["empty", "unsorted", "repeated", "upper-case", "not-a-string", "too-many"],
)
def test_parse_refuses_bad_blobs_fields(net, blobs, error):
    from protocol.envelope import _decode_header  # noqa: PLC0415 - the header decoder alone

    raw = canonical.encode(_reheader(net, blobs))
    with pytest.raises(error):
        _decode_header(raw)
