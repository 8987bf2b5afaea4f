"""The fast parsing paths accept exactly what the strict reference paths accept."""

from __future__ import annotations

import copy
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import canonical
from protocol.crypto import WRAPPED_KEY_LEN
from protocol.envelope import (
    SealTo,
    _header_fast,
    _header_strict,
    _parse_slow,
    parse_envelope,
    seal_envelope,
)
from protocol.errors import GlobeError, MalformedError

from .conftest import NOW

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=2**54),
    st.sampled_from(["", "FR-PNF", "fr-pnf", "DE-BKA", "ES-FCC", "envelope", "A" * 43, "x" * 44]),
    st.lists(st.sampled_from(["0" * 32, "f" * 32, "F" * 32, "0" * 31]), max_size=3),
    st.text(max_size=50),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(
        st.sampled_from(["seq", "head", "id", "prekey"]), st.integers(0, 3), max_size=3
    ),
)


def _header(net: Any, recipients: int = 2) -> dict[str, Any]:
    fr = net.members["FR-PNF"]
    to = [net.members[a] for a in ("DE-BKA", "ES-FCC", "IT-ANAC")[:recipients]]
    env = seal_envelope(
        genesis=net.genesis,
        sender=fr.authority,
        identity=fr.identity,
        recipients=[SealTo(m.authority, 1, m.prekey.public_key) for m in to],
        content=b'{"x":1}',
        created=NOW,
        expires=NOW + 3600,
        dir_seq=net.directory.seq,
        dir_head=net.directory.head,
    )
    value: dict[str, Any] = orjson.loads(parse_envelope(env).header.raw)
    return value


_CACHE: dict[int, dict[str, Any]] = {}


def _cached_header(net: Any) -> dict[str, Any]:
    if id(net) not in _CACHE:
        _CACHE[id(net)] = _header(net)
    return _CACHE[id(net)]


def _outcome(fn: Any, obj: Any, raw: bytes) -> Any:
    try:
        return fn(obj, raw)
    except GlobeError as exc:
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_header_fast_path_agrees_with_strict_path(net, data):
    obj = copy.deepcopy(_cached_header(net))
    paths = [
        ("type",), ("v",), ("suite",), ("network",), ("id",), ("sender",), ("sender_key",),
        ("created",), ("expires",), ("commit",), ("dir",), ("dir", "seq"), ("dir", "head"),
        ("recipients",), ("recipients", 0), ("recipients", 0, "id"), ("recipients", 1, "id"),
        ("recipients", 0, "seq"), ("recipients", 1, "prekey"), ("extra",), ("blobs",),
        ("blobs", 0),
    ]  # fmt: skip
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        delete = data.draw(st.booleans())
        value = data.draw(VALUES)
        target: Any = obj
        for key in path[:-1]:
            ok = (isinstance(target, dict) and key in target) or (
                isinstance(target, list) and isinstance(key, int) and key < len(target)
            )
            target = target[key] if ok else None
        last = path[-1]
        if isinstance(target, dict) and isinstance(last, str):
            if delete:
                target.pop(last, None)
            else:
                target[last] = value
        elif isinstance(target, list) and isinstance(last, int) and last < len(target):
            target[last] = value
    raw = b""  # the raw bytes are carried, not interpreted, by both paths
    fast = _outcome(_header_fast, copy.deepcopy(obj), raw)
    strict = _outcome(_header_strict, copy.deepcopy(obj), raw)
    if fast is None:
        assert strict is not None
    else:
        assert fast == strict  # same header object when the fast path accepts


def test_header_fast_path_accepts_a_valid_header(net):
    obj = _header(net, recipients=3)
    raw = canonical.encode(obj)
    assert _header_fast(obj, raw) == _header_strict(obj, raw)
    assert _header_fast(obj, raw) is not None


@pytest.mark.parametrize("cut", [0, 3, 9, 10, 50, 400, -65, -64, -1])
def test_parse_fast_and_slow_agree_on_framing(net, cut):
    fr, de = net.members["FR-PNF"], net.members["DE-BKA"]
    env = seal_envelope(
        genesis=net.genesis, sender=fr.authority, identity=fr.identity,
        recipients=[SealTo(de.authority, 1, de.prekey.public_key)], content=b"{}",
        created=NOW, expires=NOW + 60, dir_seq=0, dir_head=net.genesis.digest,
    )  # fmt: skip
    for data in (env, env[:cut], env + b"\x00", env[:cut] + env[cut + 1 :]):
        results: list[Any] = []
        for fn in (parse_envelope, _parse_slow):
            try:
                results.append(fn(data))
            except GlobeError as exc:
                results.append(type(exc))
        assert results[0] == results[1]


def test_parse_fast_and_slow_agree_on_a_wrapped_key_count_that_differs_from_the_header(net):
    """A well-framed envelope whose header names two recipients but carries one wrapped key."""
    fr, de, es = (net.members[a] for a in ("FR-PNF", "DE-BKA", "ES-FCC"))
    env = seal_envelope(
        genesis=net.genesis, sender=fr.authority, identity=fr.identity,
        recipients=[SealTo(m.authority, 1, m.prekey.public_key) for m in (de, es)],
        content=b"{}", created=NOW, expires=NOW + 60, dir_seq=0, dir_head=net.genesis.digest,
    )  # fmt: skip
    parsed = parse_envelope(env)
    assert len(parsed.wrapped) == len(parsed.header.recipients) == 2
    (header_len,) = struct.unpack_from(">I", env, 6)
    at = 10 + header_len  # the u16 wrapped-key count
    one = env[:at] + struct.pack(">H", 1) + env[at + 2 + WRAPPED_KEY_LEN :]
    for fn in (parse_envelope, _parse_slow):
        with pytest.raises(MalformedError) as info:
            fn(one)
        assert info.value.detail == "envelope: wrapped key count differs from the recipients"


EDGE_MUTATIONS: list[tuple[tuple[Any, ...], Any]] = [
    (("recipients", 0, "seq"), 0),
    (("recipients", 0, "seq"), True),
    (("recipients", 0, "seq"), 2**53),
    (("recipients", 1, "id"), "FR-PNF"),  # the sender among the recipients (still sorted)
    (("recipients", 1, "id"), "DE-BKA"),  # a repeated recipient
    (("recipients", 0, "id"), "ZZ-ABC"),  # unknown country
    (("recipients", 0, "prekey"), "ed25519:" + "0" * 31),
    (("v",), True),
    (("v",), 2),
    (("suite",), 2),
    (("created",), NOW + 3600),  # not before expiry
    (("expires",), NOW + 30 * 86400 + 1),  # lifetime too long
    (("created",), -1),
    (("dir", "seq"), -1),
    (("dir", "head"), "A" * 42 + "B"),  # stray bits
    (("network",), "A" * 44),
    (("commit",), "+" * 43),
    (("id",), "0" * 31 + "G"),
    (("sender",), "fr-pnf"),
    (("sender_key",), "mlkem768x25519:" + "0" * 32),
    (("type",), "Envelope"),
    (("extra",), 1),
    # the optional attachment blob ids (§7.2)
    (("blobs",), ["f" * 32, "0" * 32]),  # unsorted
    (("blobs",), ["a" * 32, "a" * 32]),  # repeated
    (("blobs",), []),  # empty: absent instead
    (("blobs",), ["A" * 32]),  # upper case
    (("blobs",), ["0" * 31]),  # too short
    (("blobs",), ["0" * 33]),  # too long
    (("blobs",), ["0" * 31 + "g"]),
    (("blobs",), [0]),
    (("blobs",), "0" * 32),  # not an array
    (("blobs",), [f"{i:032x}" for i in range(65)]),  # one too many
    (("blobs",), ["0" * 32, "f" * 32]),  # valid
    (("blobs",), [f"{i:032x}" for i in range(64)]),  # valid: the most
]
VALID_BLOBS = (["0" * 32, "f" * 32], [f"{i:032x}" for i in range(64)])


@pytest.mark.parametrize(("path", "value"), EDGE_MUTATIONS)
def test_header_fast_path_agrees_on_edge_cases(net, path, value):
    obj = copy.deepcopy(_cached_header(net))
    target: Any = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    fast = _outcome(_header_fast, copy.deepcopy(obj), b"")
    strict = _outcome(_header_strict, copy.deepcopy(obj), b"")
    if fast is None:
        assert isinstance(strict, type)
        assert issubclass(strict, GlobeError)
    else:
        assert fast == strict
    if path == ("blobs",) and value in VALID_BLOBS:
        assert fast is not None  # a valid list takes the fast path
        assert fast.blobs == tuple(value)


# --- log entries -------------------------------------------------------------------------------

from protocol.fastlog import decode_entry, entry_fast  # noqa: E402
from protocol.membership import LogEntry  # noqa: E402
from protocol.signed import MAX_SIGNATURES, SignedObject  # noqa: E402


def _entry_parts(net: Any, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = orjson.loads(net.entries[index])
    payload = orjson.loads(canonical.b64d(entry["action"]["payload"], what="p"))
    return entry, payload


def _rebuild(entry: dict[str, Any], payload: dict[str, Any]) -> bytes:
    entry = copy.deepcopy(entry)
    entry["action"]["payload"] = canonical.b64e(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def _both(data: bytes, genesis: Any) -> tuple[Any, Any]:
    fast: Any
    try:
        obj = canonical.decode(data, max_size=1 << 20, what="e", check_values=False)
        fast = entry_fast(obj, data, genesis)
    except GlobeError as exc:
        fast = type(exc)
    try:
        strict: Any = LogEntry.decode(data, genesis)
    except GlobeError as exc:
        strict = type(exc)
    return fast, strict


ENTRY_MUTATIONS: list[tuple[str, tuple[Any, ...], Any]] = [
    ("entry", ("v",), True),
    ("entry", ("v",), 2),
    ("entry", ("seq",), 0),
    ("entry", ("time",), -1),
    ("entry", ("prev",), "A" * 42 + "B"),
    ("entry", ("network",), "A" * 43),
    ("entry", ("type",), "log"),
    ("entry", ("extra",), 1),
    ("entry", ("action", "sigs"), []),
    ("entry", ("action", "sigs", 0, "kid"), "ed25519:" + "f" * 32),
    ("entry", ("action", "sigs", 0, "sig"), "A" * 86),
    ("entry", ("action", "sigs", 0, "sig"), "A" * 85),
    ("entry", ("action", "extra"), 1),
    ("payload", ("v",), True),
    ("payload", ("action",), "Admit"),
    ("payload", ("action",), "suspend"),
    ("payload", ("authority",), "fr-pnf"),
    ("payload", ("issued",), 2**53),
    ("payload", ("prev",), "A" * 43),
    ("payload", ("reason",), "bad\u202ereason"),
    ("payload", ("reason",), "multi\nline"),
    ("payload", ("certificate", "serial"), "0" * 31),
    ("payload", ("certificate", "name"), "two\nlines"),
    ("payload", ("certificate", "name"), ""),
    ("payload", ("certificate", "country"), "DE"),
    ("payload", ("certificate", "kinds"), ["fiu", "anti-corruption"]),
    ("payload", ("certificate", "kinds"), ["fiu", "fiu"]),
    ("payload", ("certificate", "kinds"), ["police"]),
    ("payload", ("certificate", "kinds"), []),
    ("payload", ("certificate", "languages"), ["fr", "en"]),
    ("payload", ("certificate", "languages"), ["EN"]),
    ("payload", ("certificate", "endpoint"), "ftp://example.org"),
    ("payload", ("certificate", "endpoint"), "https://node.example.org/globe"),
    ("payload", ("certificate", "identity_key"), "A" * 42),
    ("payload", ("certificate", "ka_key"), "A" * 1621),
    ("payload", ("certificate", "not_after"), 0),
    ("payload", ("certificate", "application"), "A" * 44),
    ("payload", ("certificate", "extra"), 1),
    ("payload", ("extra",), 1),
]


@pytest.mark.parametrize(("part", "path", "value"), ENTRY_MUTATIONS)
def test_log_entry_fast_path_agrees(net, part, path, value):
    entry, payload = _entry_parts(net, 0)
    target: Any = entry if part == "entry" else payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    fast, strict = _both(_rebuild(entry, payload), net.genesis)
    if isinstance(strict, LogEntry):
        assert fast == strict  # a valid entry takes the fast path, to the same result
    else:
        assert fast is None  # an invalid one falls back, and the reference decoder refuses it


def test_log_entry_fast_path_takes_every_valid_entry(net):
    for data in net.entries:
        fast, strict = _both(data, net.genesis)
        assert isinstance(fast, LogEntry)
        assert fast == strict
        assert decode_entry(data, net.genesis) == strict


def test_log_entry_fast_path_removed_signature_agrees(net):
    entry, _payload = _entry_parts(net, 0)
    signed = SignedObject.from_json(entry["action"], what="a")
    entry["action"] = SignedObject(signed.payload, signed.signatures[:1]).to_json()
    data = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    fast, strict = _both(data, net.genesis)
    assert fast == strict


#: Removes the field (for :data:`STRICT_REFUSALS`).
DELETE = object()

#: Entries the fast path leaves to the reference decoder, with the reference's exact
#: verdict: (part, path, value or DELETE, error class, detail).
STRICT_REFUSALS: list[tuple[str, tuple[str, ...], Any, type[GlobeError], str]] = [
    ("entry", ("action", "sigs"), {}, MalformedError, "log entry.action.sigs: must be an array"),
    (
        "payload", ("certificate", "kinds"), [7], MalformedError,
        "action.certificate.kinds: items must be strings",
    ),
    (
        "payload", ("certificate", "kinds"), ["x" * 33], MalformedError,
        "action.certificate.kinds: items must be strings",
    ),
    ("payload", ("prev",), "A" * 42, MalformedError, "action.prev: must be 32 bytes"),
    (
        "payload", ("certificate",), "not an object", MalformedError,
        "action.certificate: must be an object",
    ),
    (
        "payload", ("certificate", "endpoint"), 443, MalformedError,
        "action.certificate.endpoint: must be a string",
    ),
    (
        "payload", ("certificate", "endpoint"), "https://n.example.org/" + "p" * 2048,
        MalformedError, "action.certificate.endpoint: length must be 0..2048",
    ),
    (
        "payload", ("certificate", "application"), DELETE, MalformedError,
        "action: an admit names the application it approves",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", STRICT_REFUSALS, ids=lambda c: f"{c[0]}.{'.'.join(c[1])}")
def test_log_entry_fast_path_leaves_the_verdict_to_the_reference_decoder(net, case):
    part, path, value, error, detail = case
    entry, payload = _entry_parts(net, 0)
    target: Any = entry if part == "entry" else payload
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    data = _rebuild(entry, payload)
    obj = canonical.decode(data, max_size=1 << 20, what="e", check_values=False)
    assert entry_fast(obj, data, net.genesis) is None
    with pytest.raises(error) as info:
        decode_entry(data, net.genesis)
    assert (type(info.value), info.value.detail) == (error, detail)


def test_a_suspension_without_a_reason_is_refused(net):
    entry, payload = _entry_parts(net, 0)
    del payload["certificate"]
    payload.update(action="suspend", prev=entry["prev"])
    data = _rebuild(entry, payload)
    obj = canonical.decode(data, max_size=1 << 20, what="e", check_values=False)
    assert entry_fast(obj, data, net.genesis) is None
    with pytest.raises(MalformedError) as info:
        decode_entry(data, net.genesis)
    assert info.value.detail == "action: suspend, reinstate and revoke need a reason"
    payload["reason"] = "under investigation"  # the same action with a reason is accepted
    data = _rebuild(entry, payload)
    fast, strict = _both(data, net.genesis)
    assert isinstance(strict, LogEntry)
    assert fast == strict
    assert strict.action.reason == "under investigation"


def test_an_action_payload_that_is_not_a_string_is_refused(net):
    entry, _payload = _entry_parts(net, 0)
    entry["action"]["payload"] = 1
    data = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    fast, strict = _both(data, net.genesis)
    assert fast is None
    assert strict is MalformedError


def test_more_signatures_than_allowed_are_refused(net):
    entry, _payload = _entry_parts(net, 0)
    entry["action"]["sigs"] = entry["action"]["sigs"][:1] * (MAX_SIGNATURES + 1)
    data = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    fast, strict = _both(data, net.genesis)
    assert fast is None
    assert strict is MalformedError
