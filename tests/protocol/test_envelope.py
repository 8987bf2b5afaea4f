"""Adversarial tests for envelope v1 (protocol/envelope.py; docs/PROTOCOL.md §7).

Every refusal is asserted with its exact class from ``protocol.errors``.  Hostile
envelopes are built by :func:`forge`, an independent re-implementation of the
wire format described in the envelope module docstring, so one step (a label,
a binding, a key, a signature) can be altered while every other step stays
valid; ``test_forge_baseline_opens`` proves the unaltered forgery is accepted,
so each refusal below is caused by the one alteration it makes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from protocol import canonical, crypto, envelope, labels
from protocol.devnet import GENESIS_TIME, DevNetwork, build_devnet
from protocol.directory import DirectoryState, HeadRelation
from protocol.envelope import (
    MAGIC,
    MAX_BLOBS,
    MAX_BODY_BUCKET,
    MAX_CONTENT_SIZE,
    MAX_ENVELOPE_SIZE,
    MAX_HEADER_SIZE,
    MAX_LIFETIME,
    MAX_RECIPIENTS,
    MAX_SKEW,
    MIN_BODY_BUCKET,
    SUITE,
    VERSION,
    Envelope,
    OpenedEnvelope,
    SealTo,
    check_recipients_active,
    envelope_hash,
    open_envelope,
    parse_envelope,
    seal_envelope,
)
from protocol.errors import (
    BadSignature,
    ConflictError,
    DecryptionFailed,
    DuplicateKey,
    ExpiredError,
    GlobeError,
    InvalidIdentifier,
    MalformedError,
    MemberNotActive,
    NonCanonical,
    NotARecipient,
    NotCertified,
    NotYetValid,
    ProtocolError,
    ReflectedMessage,
    ReplayError,
    SizeLimitExceeded,
    Truncated,
    UnknownField,
    UnknownMember,
    UnsupportedSuite,
    UnsupportedVersion,
    UsageError,
)
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import Action
from protocol.receipts import make_receipt
from protocol.replay import SeenSet
from protocol.requestauth import HUB_AUDIENCE, parse_request_auth, sign_request

#: Same value as tests/protocol/conftest.py NOW: every devnet certificate and prekey is valid.
NOW = GENESIS_TIME + 7200
A, B, C, D = "FR-PNF", "DE-BKA", "ES-FCC", "IT-ANAC"
CONTENT = b'{"kind":"request","text":"freeze account 42"}'
FIXED_ID = MessageId(bytes.fromhex("00112233445566778899aabbccddeeff"))
FIXED_KEY = bytes(range(32))
SIG = crypto.ED25519_SIG_LEN
WRAP = crypto.WRAPPED_KEY_LEN
TAG = crypto.AEAD_TAG_LEN


# --- helpers -------------------------------------------------------------------------------------


@contextmanager
def raises_exactly(cls: type[GlobeError]) -> Iterator[None]:
    """Like ``pytest.raises`` but a subclass of ``cls`` does not count."""
    with pytest.raises(cls) as info:
        yield
    assert info.type is cls, f"expected exactly {cls.__name__}, got {info.type.__name__}"


def aid(name: str) -> AuthorityId:
    return AuthorityId.parse(name)


def keys_of(net: DevNetwork, name: str) -> Callable[[KeyId], KemPrivateKey | None]:
    """The private-key callback of a member: its prekey and its certified KA key."""
    member = net.members[name]

    def lookup(key_id: KeyId) -> KemPrivateKey | None:
        for key in (member.prekey, member.ka):
            if key.key_id == key_id:
                return key
        return None

    return lookup


def seal(
    net: DevNetwork,
    *,
    sender: str = A,
    to: Sequence[str] = (B,),
    content: bytes = CONTENT,
    created: int = NOW,
    expires: int = NOW + 3600,
    dir_seq: int | None = None,
    dir_head: bytes | None = None,
    message_id: MessageId | None = None,
    rng: crypto.Rng = crypto.system_rng,
) -> bytes:
    """Seal through the public API with each recipient's signed prekey."""
    member = net.members[sender]
    return seal_envelope(
        genesis=net.genesis,
        sender=member.authority,
        identity=member.identity,
        recipients=[SealTo(aid(n), 1, net.members[n].signed_prekey.key) for n in to],
        content=content,
        created=created,
        expires=expires,
        dir_seq=net.directory.seq if dir_seq is None else dir_seq,
        dir_head=net.directory.head if dir_head is None else dir_head,
        rng=rng,
        message_id=message_id,
    )


def open_as(
    net: DevNetwork,
    data: bytes,
    me: str,
    *,
    now: int = NOW,
    directory: DirectoryState | None = None,
    private_key: Callable[[KeyId], KemPrivateKey | None] | None = None,
) -> OpenedEnvelope:
    """Parse and open ``data`` as member ``me`` would."""
    return open_envelope(
        parse_envelope(data),
        directory=directory or net.directory,
        me=aid(me),
        private_key=private_key or keys_of(net, me),
        now=now,
    )


def bucket(n: int) -> int:
    size = MIN_BODY_BUCKET
    while size < n:
        size <<= 1
    return size


def key_commit(message_id: MessageId, content_key: bytes) -> bytes:
    return crypto.sha256(crypto.labelled(labels.KEY_COMMIT, message_id.raw, content_key))


def frame(
    header: bytes,
    wrapped: Sequence[bytes],
    body: bytes,
    *,
    version: int = VERSION,
    suite: int = SUITE,
    count: int | None = None,
) -> bytes:
    """The signed part of an envelope (everything but the signature)."""
    return b"".join(
        (
            MAGIC,
            bytes((version, suite)),
            struct.pack(">I", len(header)),
            header,
            struct.pack(">H", len(wrapped) if count is None else count),
            *wrapped,
            struct.pack(">I", len(body)),
            body,
        )
    )


def reframe(
    env: Envelope,
    *,
    header: bytes | None = None,
    wrapped: Sequence[bytes] | None = None,
    body: bytes | None = None,
    signature: bytes | None = None,
    resign: SigningKey | None = None,
) -> bytes:
    """Re-assemble a parsed envelope with some parts replaced (as a hub could)."""
    signed = frame(
        env.header.raw if header is None else header,
        env.wrapped if wrapped is None else wrapped,
        env.body if body is None else body,
    )
    if resign is not None:
        return signed + resign.sign(labels.ENVELOPE, signed)
    return signed + (env.signature if signature is None else signature)


def header_dict(env: Envelope) -> dict[str, Any]:
    return dict(canonical.decode(env.header.raw, max_size=MAX_HEADER_SIZE, what="test"))


def forge(
    net: DevNetwork,
    *,
    sender: str = A,
    to: Sequence[str] = (B,),
    content: bytes = CONTENT,
    created: int = NOW,
    expires: int = NOW + 3600,
    message_id: MessageId = FIXED_ID,
    content_key: bytes = FIXED_KEY,
    identity: SigningKey | None = None,
    outer_key: SigningKey | None = None,
    inner_key: SigningKey | None = None,
    inner: bytes | None = None,
    commit: bytes | None = None,
    patch: Callable[[dict[str, Any]], None] | None = None,
    plaintext: bytes | None = None,
    wrap_key: Mapping[str, bytes] | None = None,
    wrap_info: Mapping[str, bytes] | None = None,
    directory: DirectoryState | None = None,
) -> bytes:
    """Build an envelope by hand, following the envelope module docstring step by step.

    ``identity`` is the key named in the header (default: the sender's); the
    outer and inner signatures use it unless ``outer_key`` / ``inner_key`` /
    ``inner`` say otherwise.  ``patch`` edits the header object before encoding.
    """
    ident = identity or net.members[sender].identity
    d = directory or net.directory
    names = sorted(to)
    prekeys = {n: net.members[n].signed_prekey.key for n in names}
    hdr: dict[str, Any] = {
        "type": "envelope",
        "v": 1,
        "suite": 1,
        "network": canonical.b64e(net.genesis.digest),
        "id": str(message_id),
        "sender": sender,
        "sender_key": str(ident.key_id),
        "recipients": [{"id": n, "seq": 1, "prekey": str(prekeys[n].key_id)} for n in names],
        "created": created,
        "expires": expires,
        "dir": {"seq": d.seq, "head": canonical.b64e(d.head)},
        "commit": canonical.b64e(key_commit(message_id, content_key) if commit is None else commit),
    }
    if patch is not None:
        patch(hdr)
    header = canonical.encode(hdr)
    digest = crypto.sha256(header)
    if inner is None:
        inner = (inner_key or ident).sign(labels.CONTENT, digest + content)
    if plaintext is None:
        framed = struct.pack(">I", len(content)) + content + inner
        plaintext = framed + bytes(bucket(len(framed)) - len(framed))
    aad = crypto.labelled(labels.BODY_AAD, header)
    body = crypto.aead_encrypt(content_key, bytes(crypto.AEAD_NONCE_LEN), plaintext, aad)
    wrapped = [
        prekeys[n].seal(
            (wrap_key or {}).get(n, content_key),
            (wrap_info or {}).get(n, crypto.labelled(labels.WRAP, digest, n.encode("ascii"))),
        )
        for n in names
    ]
    signed = frame(header, wrapped, body)
    return signed + (outer_key or ident).sign(labels.ENVELOPE, signed)


# --- sealing and opening -------------------------------------------------------------------------


@pytest.mark.parametrize("recipients", [(B,), (D, B, C)], ids=["one", "three"])
def test_seal_and_open_by_every_recipient(net, now, recipients):
    data = seal(net, to=recipients, message_id=FIXED_ID)
    env = parse_envelope(data)
    h = env.header
    assert data.startswith(MAGIC + bytes((VERSION, SUITE)))
    assert h.sender == aid(A)
    assert h.sender_key == net.members[A].identity.key_id
    assert h.message_id == FIXED_ID
    assert [str(r.authority) for r in h.recipients] == sorted(recipients)
    assert all(r.prekey == net.members[str(r.authority)].prekey.key_id for r in h.recipients)
    assert len(env.wrapped) == len(recipients)
    assert all(len(w) == WRAP for w in env.wrapped)
    inner_sigs = set()
    for name in recipients:
        opened = open_as(net, data, name, now=now)
        assert opened.content == CONTENT
        assert opened.head_relation is HeadRelation.SAME
        assert opened.header == env.header
        net.members[A].identity.verify_key.verify(
            labels.CONTENT, crypto.sha256(h.raw) + CONTENT, opened.inner_signature
        )
        inner_sigs.add(opened.inner_signature)
    assert len(inner_sigs) == 1  # every recipient sees the same signed plaintext


def test_open_with_certified_key_agreement_key(net):
    """A sender may wrap to the certified KA key when no prekey is available."""
    b = net.members[B]
    data = seal_envelope(
        genesis=net.genesis,
        sender=aid(A),
        identity=net.members[A].identity,
        recipients=[SealTo(aid(B), 7, b.ka.public_key)],
        content=CONTENT,
        created=NOW,
        expires=NOW + 60,
        dir_seq=net.directory.seq,
        dir_head=net.directory.head,
    )
    env = parse_envelope(data)
    assert env.header.recipients[0].prekey == b.ka.key_id
    assert env.header.recipients[0].seq == 7
    assert open_as(net, data, B).content == CONTENT


def test_private_key_callback_asked_for_the_header_prekey_only(net):
    asked: list[KeyId] = []
    lookup = keys_of(net, C)

    def record(key_id: KeyId) -> KemPrivateKey | None:
        asked.append(key_id)
        return lookup(key_id)

    data = seal(net, to=(B, C, D))
    assert open_as(net, data, C, private_key=record).content == CONTENT
    assert asked == [net.members[C].prekey.key_id]


def test_forge_baseline_opens(net):
    """The hand-built envelope follows the spec: unaltered, every recipient accepts it."""
    data = forge(net, to=(B, C))
    for name in (B, C):
        opened = open_as(net, data, name)
        assert opened.content == CONTENT
        assert opened.header.message_id == FIXED_ID
        assert opened.head_relation is HeadRelation.SAME


def test_empty_and_maximum_content(net):
    assert open_as(net, seal(net, content=b""), B).content == b""
    big = bytes(range(256)) * (MAX_CONTENT_SIZE // 256) + b"x" * (MAX_CONTENT_SIZE % 256)
    assert len(big) == MAX_CONTENT_SIZE
    data = seal(net, content=big)
    assert len(parse_envelope(data).body) == MAX_BODY_BUCKET + TAG
    assert open_as(net, data, B).content == big


# --- local misuse of seal_envelope ---------------------------------------------------------------


def _seal_kwargs(net: DevNetwork) -> dict[str, Any]:
    a = net.members[A]
    return {
        "genesis": net.genesis,
        "sender": a.authority,
        "identity": a.identity,
        "recipients": [SealTo(aid(B), 1, net.members[B].signed_prekey.key)],
        "content": CONTENT,
        "created": NOW,
        "expires": NOW + 60,
        "dir_seq": net.directory.seq,
        "dir_head": net.directory.head,
    }


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("recipients", []),
        ("recipients", "dup"),
        ("recipients", "self"),
        ("recipients", "too-many"),
        ("content", b"x" * (MAX_CONTENT_SIZE + 1)),
        ("expires", NOW),
        ("expires", NOW - 1),
        ("expires", NOW + MAX_LIFETIME + 1),
    ],
    ids=[
        "no-recipient",
        "duplicate",
        "sender-as-recipient",
        "257-recipients",
        "content-too-big",
        "expires-at-created",
        "expires-before-created",
        "lifetime-too-long",
    ],
)
def test_seal_refuses_local_misuse(net, change, value):
    kwargs = _seal_kwargs(net)
    b_key = net.members[B].signed_prekey.key
    if value == "dup":
        value = [SealTo(aid(B), 1, b_key), SealTo(aid(B), 2, b_key)]
    elif value == "self":
        value = [*kwargs["recipients"], SealTo(aid(A), 1, net.members[A].signed_prekey.key)]
    elif value == "too-many":
        value = [SealTo(aid(f"FR-X{i:03d}"), 1, b_key) for i in range(MAX_RECIPIENTS + 1)]
    kwargs[change] = value
    with raises_exactly(UsageError):
        seal_envelope(**kwargs)


def test_the_largest_header_seal_can_build_fits_the_header_limit(net):
    """256 recipients with the longest ids and sequence numbers and 64 blobs: no header
    that :func:`seal_envelope` builds from valid arguments exceeds MAX_HEADER_SIZE."""
    kwargs = _seal_kwargs(net)
    b_key = net.members[B].signed_prekey.key
    kwargs["recipients"] = [
        SealTo(aid(f"FR-{i:03d}{'X' * 13}"), canonical.MAX_INT, b_key)
        for i in range(MAX_RECIPIENTS)
    ]
    kwargs["blobs"] = [f"{i:032x}" for i in range(MAX_BLOBS)]
    header = parse_envelope(seal_envelope(**kwargs)).header.raw
    assert len(header) < MAX_HEADER_SIZE // 2


def test_seal_refuses_a_header_over_the_limit(net, monkeypatch):
    """The guard behind the argument checks: with today's limits no valid arguments
    reach it (above), so the limit is lowered to show it refuses as a local error."""
    kwargs = _seal_kwargs(net)
    size = len(parse_envelope(seal_envelope(**kwargs)).header.raw)
    monkeypatch.setattr(envelope, "MAX_HEADER_SIZE", size - 1)
    with raises_exactly(UsageError):
        seal_envelope(**kwargs)
    monkeypatch.setattr(envelope, "MAX_HEADER_SIZE", size)
    assert len(parse_envelope(seal_envelope(**kwargs)).header.raw) == size


def test_seal_accepts_lifetime_boundary(net):
    kwargs = _seal_kwargs(net)
    kwargs["expires"] = NOW + MAX_LIFETIME
    assert parse_envelope(seal_envelope(**kwargs)).header.expires == NOW + MAX_LIFETIME


# --- every single-bit flip -----------------------------------------------------------------------

_HEADER_FLIP_ERRORS = frozenset(
    {
        MalformedError,
        NonCanonical,
        DuplicateKey,
        UnknownField,
        InvalidIdentifier,
        UnsupportedVersion,
        UnsupportedSuite,
        BadSignature,
        NotYetValid,
        ExpiredError,
        UnknownMember,
        NotCertified,
    }
)


def _regions(env: Envelope) -> list[tuple[str, int, int, frozenset[type[ProtocolError]]]]:
    """Contiguous byte regions of an envelope and the refusals a bit flip there may cause."""
    hl = len(env.header.raw)
    nw = len(env.wrapped) * WRAP
    spans: list[tuple[str, int, set[type[ProtocolError]] | frozenset[type[ProtocolError]]]] = [
        ("magic", 4, {MalformedError}),
        ("version", 1, {UnsupportedVersion}),
        ("suite", 1, {UnsupportedSuite}),
        # A changed length misframes the rest: the cap, the end of input or a bad field.
        ("header length", 4, {SizeLimitExceeded, Truncated, MalformedError}),
        # Refused while decoding the header or by the outer signature, never later.
        ("header", hl, _HEADER_FLIP_ERRORS),
        ("recipient count", 2, {MalformedError, Truncated}),
        ("wrapped keys", nw, {BadSignature}),
        # 1,040 with one bit flipped is never 16 + a power-of-two bucket.
        ("body length", 4, {MalformedError}),
        ("body", len(env.body), {BadSignature}),
        ("signature", SIG, {BadSignature}),
    ]
    out: list[tuple[str, int, int, frozenset[type[ProtocolError]]]] = []
    pos = 0
    for name, size, allowed in spans:
        out.append((name, pos, pos + size, frozenset(allowed)))
        pos += size
    assert pos == len(env.raw)
    return out


def test_every_single_bit_flip_is_refused_with_a_typed_error(net):
    data = seal(net, content=b"flip", rng=crypto.deterministic_rng(b"bit flips"))
    env = parse_envelope(data)
    assert len(env.body) == MIN_BODY_BUCKET + TAG
    lookup = keys_of(net, B)
    me, directory = aid(B), net.directory
    wrong: list[tuple[str, int, str]] = []
    seen: dict[str, set[str]] = {}
    flips = 0
    for name, lo, hi, allowed in _regions(env):
        seen[name] = set()
        for bit in range(lo * 8, hi * 8):
            buf = bytearray(data)
            buf[bit >> 3] ^= 1 << (bit & 7)
            flips += 1
            try:
                open_envelope(
                    parse_envelope(bytes(buf)),
                    directory=directory,
                    me=me,
                    private_key=lookup,
                    now=NOW,
                )
            except ProtocolError as exc:
                seen[name].add(type(exc).__name__)
                if type(exc) not in allowed:
                    wrong.append((name, bit, type(exc).__name__))
            else:
                wrong.append((name, bit, "ACCEPTED"))
    assert flips == 8 * len(data)
    assert wrong == [], f"{len(wrong)} of {flips} flips misclassified: {wrong[:20]}"
    # The header's own checks and the outer signature both take part.
    assert {"BadSignature", "MalformedError", "InvalidIdentifier"} <= seen["header"]


@pytest.mark.parametrize("part", ["wrapped", "body"])
def test_bit_flips_re_signed_by_the_sender_fail_decryption(net, part):
    """Even with a valid outer signature, a flipped wrapped key or body never opens.

    Every third bit (a stride coprime with 8, so each bit position of a byte
    is covered) keeps the runtime low: each flip costs a signature.
    """
    data = seal(net, content=b"flip", rng=crypto.deterministic_rng(b"re-signed flips"))
    env = parse_envelope(data)
    a_key = net.members[A].identity
    target = env.wrapped[0] if part == "wrapped" else env.body
    wrong: list[tuple[int, str]] = []
    for bit in range(0, len(target) * 8, 3):
        buf = bytearray(target)
        buf[bit >> 3] ^= 1 << (bit & 7)
        if part == "wrapped":
            forged = reframe(env, wrapped=[bytes(buf)], resign=a_key)
        else:
            forged = reframe(env, body=bytes(buf), resign=a_key)
        try:
            open_as(net, forged, B)
        except ProtocolError as exc:
            if type(exc) is not DecryptionFailed:
                wrong.append((bit, type(exc).__name__))
        else:
            wrong.append((bit, "ACCEPTED"))
    assert wrong == []


# --- framing: truncation, trailing bytes, size caps, versions ------------------------------------


def test_truncated_at_every_offset_is_truncated(net):
    data = seal(net, to=(B, C))
    wrong = []
    for n in range(len(data)):
        try:
            parse_envelope(data[:n])
        except ProtocolError as exc:
            if type(exc) is not Truncated:
                wrong.append((n, type(exc).__name__))
        else:
            wrong.append((n, "ACCEPTED"))
    assert wrong == []
    assert parse_envelope(data).raw == data


@pytest.mark.parametrize(
    "extra", [b"\x00", b"\xff", b"GLBE", bytes(SIG)], ids=["nul", "ff", "magic", "64-zeros"]
)
def test_trailing_bytes_are_malformed(net, extra):
    with raises_exactly(MalformedError):
        parse_envelope(seal(net) + extra)


def test_size_cap(net):
    data = seal(net)
    assert parse_envelope(data, max_size=len(data)).raw == data
    with raises_exactly(SizeLimitExceeded):
        parse_envelope(data, max_size=len(data) - 1)
    # The default cap holds before anything else is looked at.
    with raises_exactly(SizeLimitExceeded):
        parse_envelope(data[:10] + bytes(MAX_ENVELOPE_SIZE))


@pytest.mark.parametrize(
    ("prefix", "alone", "followed"),
    [
        (b"", Truncated, MalformedError),
        (b"GLB", Truncated, MalformedError),
        (b"GLBF\x01\x01", MalformedError, MalformedError),
        (b"glbe\x01\x01", MalformedError, MalformedError),
        (b"GLBE", Truncated, UnsupportedVersion),
        (b"GLBE\x00", UnsupportedVersion, UnsupportedVersion),
        (b"GLBE\x02", UnsupportedVersion, UnsupportedVersion),
        (b"GLBE\xff", UnsupportedVersion, UnsupportedVersion),
        (b"GLBE\x01", Truncated, UnsupportedSuite),
        (b"GLBE\x01\x00", UnsupportedSuite, UnsupportedSuite),
        (b"GLBE\x01\x02", UnsupportedSuite, UnsupportedSuite),
        (b"GLBE\x01\xff", UnsupportedSuite, UnsupportedSuite),
        (b"GLBE\x02\x02", UnsupportedVersion, UnsupportedVersion),
        (b"GLBE\x01\x01", Truncated, SizeLimitExceeded),
    ],
)
def test_magic_version_and_suite_are_checked_first(prefix, alone, followed):
    """Version and suite bytes are judged before the rest is even present (R8)."""
    with raises_exactly(alone):
        parse_envelope(prefix)
    with raises_exactly(followed):
        parse_envelope(prefix + b"\xff" * 64)


@pytest.mark.parametrize(
    ("offset", "value", "error"),
    [(4, 0, UnsupportedVersion), (4, 2, UnsupportedVersion), (5, 0, UnsupportedSuite)],
)
def test_version_and_suite_bytes_of_a_valid_envelope(net, offset, value, error):
    buf = bytearray(seal(net))
    buf[offset] = value
    with raises_exactly(error):
        parse_envelope(bytes(buf))


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def patch(hdr: dict[str, Any]) -> None:
        hdr[key] = value

    return patch


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        (_set("v", 2), UnsupportedVersion),
        (_set("v", 0), UnsupportedVersion),
        (_set("suite", 2), UnsupportedSuite),
        (_set("type", "receipt"), MalformedError),
        (_set("extra", 1), UnknownField),
        (_set("created", NOW + MAX_LIFETIME), MalformedError),  # expires before created
        (_set("expires", NOW + MAX_LIFETIME + 1), MalformedError),
        (_set("id", "00112233445566778899AABBCCDDEEFF"), InvalidIdentifier),
        (_set("sender", "fr-pnf"), InvalidIdentifier),
        (_set("network", canonical.b64e(bytes(31))), MalformedError),
    ],
    ids=[
        "v2",
        "v0",
        "suite2",
        "type",
        "unknown-field",
        "created-after-expiry",
        "lifetime",
        "id-case",
        "sender-case",
        "network-length",
    ],
)
def test_header_checks_validly_signed(net, patch, error):
    """Header defects are refused at parse even though the sender signed them."""
    with raises_exactly(error):
        parse_envelope(forge(net, patch=patch))


def test_header_recipients_must_be_sorted(net):
    def unsort(hdr: dict[str, Any]) -> None:
        hdr["recipients"].reverse()

    with raises_exactly(MalformedError):
        parse_envelope(forge(net, to=(B, C), patch=unsort))


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda h, w, b: frame(h, w, b, count=0), MalformedError),
        (lambda h, w, b: frame(h, w, b, count=MAX_RECIPIENTS + 1), MalformedError),
        (lambda h, w, b: frame(h, [*w, w[0]], b), MalformedError),  # 2 keys, 1 recipient
        (lambda h, w, b: frame(h, w, b + b"\x00"), MalformedError),  # body not a bucket
        (lambda h, w, b: frame(h, w, b[:-1]), MalformedError),
        (lambda h, w, b: frame(h, w, bytes(MIN_BODY_BUCKET // 2 + TAG)), MalformedError),
        (lambda h, w, b: frame(h + b" ", w, b), NonCanonical),
        (lambda h, w, b: frame(b"[]", w, b), MalformedError),
        (lambda h, w, b: frame(bytes(MAX_HEADER_SIZE + 1), w, b), SizeLimitExceeded),
    ],
    ids=[
        "count0",
        "count257",
        "count-mismatch",
        "body+1",
        "body-1",
        "body-too-small",
        "header-space",
        "header-array",
        "header-too-big",
    ],
)
def test_framing_defects(net, build, error):
    env = parse_envelope(seal(net))
    with raises_exactly(error):
        parse_envelope(build(env.header.raw, list(env.wrapped), env.body) + env.signature)


def test_body_above_the_largest_bucket(net):
    env = parse_envelope(seal(net))
    data = frame(env.header.raw, env.wrapped, bytes(2 * MAX_BODY_BUCKET + TAG)) + env.signature
    with raises_exactly(SizeLimitExceeded):
        parse_envelope(data)
    with raises_exactly(MalformedError):
        parse_envelope(data, max_size=len(data))


# --- the hub rewrites, forges or reflects --------------------------------------------------------


def test_hub_drops_a_recipient(net):
    env = parse_envelope(seal(net, to=(B, C, D)))
    hdr = header_dict(env)
    hdr["recipients"] = [r for r in hdr["recipients"] if r["id"] != D]
    index = [str(r.authority) for r in env.header.recipients].index(D)
    kept = [w for i, w in enumerate(env.wrapped) if i != index]
    forged = reframe(env, header=canonical.encode(hdr), wrapped=kept)
    assert len(parse_envelope(forged).header.recipients) == 2
    for name in (B, C):
        with raises_exactly(BadSignature):
            open_as(net, forged, name)


def test_hub_replaces_a_recipient(net):
    """The hub re-addresses C's entry to D; it cannot re-sign, so all refuse."""
    env = parse_envelope(seal(net, to=(B, C)))
    hdr = header_dict(env)
    hdr["recipients"][1] = {"id": D, "seq": 1, "prekey": str(net.members[D].prekey.key_id)}
    forged = reframe(env, header=canonical.encode(hdr))
    for name in (B, D):
        with raises_exactly(BadSignature):
            open_as(net, forged, name)


def test_hub_swaps_wrapped_keys(net):
    env = parse_envelope(seal(net, to=(B, C)))
    forged = reframe(env, wrapped=list(reversed(env.wrapped)))
    for name in (B, C):
        with raises_exactly(BadSignature):
            open_as(net, forged, name)


def test_hub_moves_a_recipient_to_another_envelope(net):
    """Splicing in another envelope's header (same sender, same recipient) is refused."""
    one = parse_envelope(seal(net, to=(B,)))
    two = parse_envelope(seal(net, to=(B,)))
    with raises_exactly(BadSignature):
        open_as(net, reframe(one, header=two.header.raw), B)
    with raises_exactly(BadSignature):
        open_as(net, reframe(one, signature=two.signature), B)


def test_attacker_re_signs_with_own_key_keeping_the_sender_key_id(net):
    """C signs an envelope naming A and A's key id: A's certified key does not verify it."""
    env = parse_envelope(seal(net, to=(B,)))
    forged = reframe(env, resign=net.members[C].identity)
    with raises_exactly(BadSignature):
        open_as(net, forged, B)
    with raises_exactly(BadSignature):
        open_as(net, forge(net, outer_key=net.members[C].identity), B)


def test_attacker_names_own_key_under_the_sender(net):
    """C signs with its own certified key but claims to be A: the key is not A's."""
    c = net.members[C]
    forged = forge(net, sender=A, identity=c.identity)
    with raises_exactly(NotCertified):
        open_as(net, forged, B)
    via_api = seal_envelope(
        genesis=net.genesis,
        sender=aid(A),
        identity=c.identity,
        recipients=[SealTo(aid(B), 1, net.members[B].signed_prekey.key)],
        content=CONTENT,
        created=NOW,
        expires=NOW + 60,
        dir_seq=net.directory.seq,
        dir_head=net.directory.head,
    )
    with raises_exactly(NotCertified):
        open_as(net, via_api, B)


def test_non_member_sender_is_unknown(net):
    stranger = SigningKey(bytes(range(32)))
    forged = forge(net, sender="GB-SFO", identity=stranger)
    assert parse_envelope(forged).header.sender == aid("GB-SFO")
    with raises_exactly(UnknownMember):
        open_as(net, forged, B)


def test_envelope_from_another_network(net):
    other = build_devnet(b"another network", members=[(A, "a"), (B, "b")])
    data = seal(other)
    assert open_as(other, data, B).content == CONTENT
    with raises_exactly(MalformedError):
        open_as(net, data, B)


def test_sender_opening_its_own_envelope_is_reflected(net):
    data = seal(net, to=(B, C))
    with raises_exactly(ReflectedMessage):
        open_as(net, data, A)


def test_header_naming_the_sender_as_recipient_is_reflected(net):
    forged = forge(net, sender=A, to=(A, B))
    assert [r["id"] for r in header_dict_raw(forged)["recipients"]] == [B, A]
    with raises_exactly(ReflectedMessage):
        parse_envelope(forged)


def header_dict_raw(data: bytes) -> dict[str, Any]:
    """Decode the header of an envelope that parse_envelope would refuse."""
    (length,) = struct.unpack(">I", data[6:10])
    return dict(canonical.decode(data[10 : 10 + length], max_size=MAX_HEADER_SIZE, what="test"))


def test_not_a_recipient(net):
    data = seal(net, to=(B, C))
    with raises_exactly(NotARecipient):
        open_as(net, data, D)


# --- non-repudiation: the inner signature is bound to its header ---------------------------------


def test_recipient_re_seals_content_with_the_originators_inner_signature(net):
    """B forwards A's content and A's inner signature to C under B's own identity."""
    opened = open_as(net, seal(net, to=(B,)), B)
    forged = forge(net, sender=B, to=(C,), content=opened.content, inner=opened.inner_signature)
    with raises_exactly(BadSignature):
        open_as(net, forged, C)
    # The same forwarding with B's own inner signature is an ordinary message from B.
    honest = forge(net, sender=B, to=(C,), content=opened.content)
    assert open_as(net, honest, C).content == CONTENT


def test_inner_signature_over_another_header_is_refused(net):
    """Even under A's valid outer signature, A's inner signature made for another header fails."""
    opened = open_as(net, seal(net, to=(B,)), B)
    forged = forge(net, sender=A, to=(C,), inner=opened.inner_signature)
    with raises_exactly(BadSignature):
        open_as(net, forged, C)


def forged_header_digest(net: DevNetwork, **kwargs: Any) -> bytes:
    """SHA-256 of the header :func:`forge` builds for these arguments (it is deterministic)."""
    return crypto.sha256(parse_envelope(forge(net, **kwargs)).header.raw)


@pytest.mark.parametrize("label", [labels.ENVELOPE, labels.RECEIPT, labels.REQUEST_AUTH])
def test_inner_signature_under_another_label(net, label):
    a = net.members[A].identity
    digest = forged_header_digest(net)
    assert (
        open_as(net, forge(net, inner=a.sign(labels.CONTENT, digest + CONTENT)), B).content
        == CONTENT
    )
    with raises_exactly(BadSignature):
        open_as(net, forge(net, inner=a.sign(label, digest + CONTENT)), B)


def test_inner_signature_by_another_member(net):
    with raises_exactly(BadSignature):
        open_as(net, forge(net, inner_key=net.members[C].identity), B)


# --- key wrapping and key commitment -------------------------------------------------------------


def test_wrong_prekey_fails_decryption(net):
    wrong: KemPrivateKey = net.members[C].prekey

    def other_member_key(key_id: KeyId) -> KemPrivateKey | None:
        return wrong

    with raises_exactly(DecryptionFailed):
        open_as(net, seal(net), B, private_key=other_member_key)


def test_erased_prekey_fails_decryption(net):
    with raises_exactly(DecryptionFailed):
        open_as(net, seal(net), B, private_key=lambda key_id: None)


def test_wrapped_key_spliced_from_another_envelope(net):
    """Both envelopes are from A to B; A re-signs, so only the wrap binding fails."""
    one = parse_envelope(seal(net, to=(B,)))
    two = parse_envelope(seal(net, to=(B,)))
    a_key = net.members[A].identity
    assert open_as(net, reframe(two, resign=a_key), B).content == CONTENT
    with raises_exactly(DecryptionFailed):
        open_as(net, reframe(two, wrapped=[one.wrapped[0]], resign=a_key), B)


@pytest.mark.parametrize(
    "info",
    [
        lambda digest: crypto.labelled(labels.WRAP, digest, C.encode()),  # another recipient
        lambda digest: crypto.labelled(labels.WRAP, bytes(32), B.encode()),  # another header
        lambda digest: crypto.labelled(labels.BODY_AAD, digest, B.encode()),  # another label
        lambda digest: crypto.labelled(labels.WRAP, digest),  # no recipient
        lambda digest: b"",
    ],
    ids=["recipient", "header", "label", "no-recipient", "empty"],
)
def test_wrap_info_binds_header_and_recipient(net, info):
    digest = forged_header_digest(net)
    right = crypto.labelled(labels.WRAP, digest, B.encode())
    assert open_as(net, forge(net, wrap_info={B: right}), B).content == CONTENT
    with raises_exactly(DecryptionFailed):
        open_as(net, forge(net, wrap_info={B: info(digest)}), B)


def test_wrong_commitment_fails_decryption(net):
    """A valid signature over a header whose commit does not match the wrapped key."""
    forged = forge(net, commit=crypto.sha256(b"not the content key"))
    with raises_exactly(DecryptionFailed):
        open_as(net, forged, B)


def test_commitment_over_another_message_id(net):
    other = MessageId(bytes(16))
    with raises_exactly(DecryptionFailed):
        open_as(net, forge(net, commit=key_commit(other, FIXED_KEY)), B)


def test_recipients_given_different_content_keys(net):
    """A sender cannot give C another content key: it misses the header's commitment."""
    other_key = bytes(reversed(FIXED_KEY))
    forged = forge(net, to=(B, C), wrap_key={C: other_key})
    assert open_as(net, forged, B).content == CONTENT
    with raises_exactly(DecryptionFailed):
        open_as(net, forged, C)


def test_body_under_another_key_with_matching_commitment_elsewhere(net):
    """Commit and wrap agree on key K2, but the body was encrypted under K1."""
    k2 = bytes(32)
    forged = forge(net, wrap_key={B: k2}, commit=key_commit(FIXED_ID, k2))
    with raises_exactly(DecryptionFailed):
        open_as(net, forged, B)


def test_body_aad_binds_the_header(net):
    """A body spliced from another envelope under the same content key does not open."""
    one = parse_envelope(forge(net, created=NOW - 1))
    two = parse_envelope(forge(net))
    a_key = net.members[A].identity
    with raises_exactly(DecryptionFailed):
        open_as(net, reframe(two, body=one.body, resign=a_key), B)


# --- padding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected_bucket"),
    [
        (0, 1024),
        (1, 1024),
        (956, 1024),
        (957, 2048),
        (1980, 2048),
        (1981, 4096),
        (20_000, 32768),
    ],
)
def test_body_is_padded_to_a_power_of_two_bucket(net, size, expected_bucket):
    data = seal(net, content=b"z" * size)
    env = parse_envelope(data)
    assert len(env.body) == expected_bucket + TAG
    assert len(data) == 10 + len(env.header.raw) + 2 + WRAP + 4 + expected_bucket + TAG + SIG
    assert open_as(net, data, B).content == b"z" * size


def test_same_bucket_same_size(net):
    rng = crypto.deterministic_rng(b"padding")
    sizes = {len(seal(net, content=b"q" * n, rng=rng)) for n in (0, 1, 100, 500, 956)}
    assert len(sizes) == 1
    (small,) = sizes
    assert len(seal(net, content=b"q" * 957, rng=rng)) == small + 1024


def _plaintext(content: bytes, inner: bytes, size: int, *, length: int | None = None) -> bytes:
    framed = struct.pack(">I", len(content) if length is None else length) + content + inner
    return framed + bytes(size - len(framed))


@pytest.mark.parametrize(
    "variant", ["nonzero-padding", "larger-bucket", "length-too-big", "length-max"]
)
def test_non_canonical_padding_is_malformed(net, variant):
    a = net.members[A].identity
    digest = forged_header_digest(net)
    inner = a.sign(labels.CONTENT, digest + CONTENT)
    if variant == "nonzero-padding":
        plaintext = bytearray(_plaintext(CONTENT, inner, 1024))
        plaintext[-1] = 1
    elif variant == "larger-bucket":
        plaintext = bytearray(_plaintext(CONTENT, inner, 2048))
    elif variant == "length-too-big":
        plaintext = bytearray(_plaintext(CONTENT, inner, 1024, length=1024 - 4 - SIG + 1))
    else:
        plaintext = bytearray(_plaintext(CONTENT, inner, 1024, length=0xFFFFFFFF))
    forged = forge(net, plaintext=bytes(plaintext))
    with raises_exactly(MalformedError):
        open_as(net, forged, B)


def test_canonical_plaintext_through_forge_opens(net):
    """Control for the padding variants: the same construction, canonical, is accepted."""
    a = net.members[A].identity
    digest = forged_header_digest(net)
    inner = a.sign(labels.CONTENT, digest + CONTENT)
    forged = forge(net, plaintext=_plaintext(CONTENT, inner, 1024))
    assert open_as(net, forged, B).content == CONTENT


# --- time, membership status, directory heads ----------------------------------------------------


def test_expiry_boundary(net):
    data = seal(net, created=NOW, expires=NOW + 100)
    assert open_as(net, data, B, now=NOW + 99).content == CONTENT
    with raises_exactly(ExpiredError):
        open_as(net, data, B, now=NOW + 100)
    with raises_exactly(ExpiredError):
        open_as(net, data, B, now=NOW + 10_000)


def test_created_in_the_future_boundary(net):
    data = seal(net, created=NOW + MAX_SKEW, expires=NOW + MAX_SKEW + 60)
    assert open_as(net, data, B, now=NOW).content == CONTENT
    data = seal(net, created=NOW + MAX_SKEW + 1, expires=NOW + MAX_SKEW + 60)
    with raises_exactly(NotYetValid):
        open_as(net, data, B, now=NOW)


@pytest.mark.parametrize("action", [Action.SUSPEND, Action.REVOKE])
def test_inactive_sender_is_refused(fresh_net, now, action):
    net = fresh_net()
    data = seal(net, to=(B,))
    assert open_as(net, data, B, now=now).content == CONTENT
    net.set_status(A, action, "investigation", now - 60)
    with raises_exactly(MemberNotActive):
        open_as(net, data, B, now=now)
    # Even a fresh envelope naming the new head is refused.
    with raises_exactly(MemberNotActive):
        open_as(net, seal(net, to=(B,)), B, now=now)


def test_reinstated_sender_is_accepted_again(fresh_net, now):
    net = fresh_net()
    data = seal(net, to=(B,))
    net.set_status(A, Action.SUSPEND, "investigation", now - 60)
    with raises_exactly(MemberNotActive):
        open_as(net, data, B, now=now)
    net.set_status(A, Action.REINSTATE, "cleared", now - 30)
    opened = open_as(net, data, B, now=now)
    assert opened.content == CONTENT
    assert opened.head_relation is HeadRelation.PEER_BEHIND


def test_inactive_recipient_is_refused_by_check_recipients_active(fresh_net, now):
    net = fresh_net()
    env = parse_envelope(seal(net, to=(B, C)))
    check_recipients_active(env, net.directory, now)
    net.set_status(C, Action.SUSPEND, "investigation", now - 60)
    with raises_exactly(MemberNotActive):
        check_recipients_active(env, net.directory, now)


def test_head_relations(fresh_net):
    net = fresh_net()
    d = net.directory
    assert d.seq >= 3
    cases = [
        (d.seq, d.head, HeadRelation.SAME),
        (d.seq - 1, d.heads[d.seq - 1], HeadRelation.PEER_BEHIND),
        (0, net.genesis.digest, HeadRelation.PEER_BEHIND),
        (d.seq + 1, bytes(32), HeadRelation.PEER_AHEAD),
        (d.seq + 1000, d.head, HeadRelation.PEER_AHEAD),
        (d.seq, crypto.sha256(b"forked head"), HeadRelation.FORK),
        (d.seq - 1, d.head, HeadRelation.FORK),  # the right hash at the wrong position
        (0, d.head, HeadRelation.FORK),
    ]
    for seq, head, relation in cases:
        opened = open_as(net, seal(net, dir_seq=seq, dir_head=head), B, directory=d)
        assert (seq, opened.head_relation) == (seq, relation)


def test_fork_against_the_receivers_log(fresh_net, now):
    """Two networks from one genesis seed diverge; the envelope names the other branch."""
    ours, theirs = fresh_net(b"fork"), fresh_net(b"fork")
    assert ours.directory.head == theirs.directory.head
    ours.set_status(D, Action.SUSPEND, "ours", now - 60)
    theirs.set_status(D, Action.REVOKE, "theirs", now - 60)
    assert ours.directory.seq == theirs.directory.seq
    data = seal(theirs, to=(B,))
    assert open_as(theirs, data, B, now=now).head_relation is HeadRelation.SAME
    assert open_as(ours, data, B, now=now).head_relation is HeadRelation.FORK
    theirs.set_status(C, Action.SUSPEND, "ahead", now - 30)
    ahead = seal(theirs, to=(B,))
    assert open_as(ours, ahead, B, now=now).head_relation is HeadRelation.PEER_AHEAD


# --- context separation --------------------------------------------------------------------------


def _with_signature(data: bytes, signature: bytes) -> bytes:
    return data[:-SIG] + signature


def test_genuine_outer_signature_is_over_the_envelope_label(net):
    env = parse_envelope(seal(net))
    net.members[A].identity.verify_key.verify(labels.ENVELOPE, env.signed_part, env.signature)


@pytest.mark.parametrize(
    "label",
    [
        labels.REQUEST_AUTH,
        labels.CONTENT,
        labels.RECEIPT,
        labels.ENVELOPE_HASH,
        labels.PREKEY,
        b"globe/v1/envelope ",
        b"globe/v2/envelope",
    ],
)
def test_signed_part_under_another_label_is_refused(net, label):
    data = seal(net)
    env = parse_envelope(data)
    sig = net.members[A].identity.sign(label, env.signed_part)
    with raises_exactly(BadSignature):
        open_as(net, _with_signature(data, sig), B)


def test_unlabelled_signature_is_refused(net):
    data = seal(net)
    env = parse_envelope(data)
    secret, _ = crypto.ed25519_keypair(net.members[A].identity.seed)
    sig = crypto.ed25519_sign(secret, env.signed_part)
    with raises_exactly(BadSignature):
        open_as(net, _with_signature(data, sig), B)


@pytest.mark.parametrize("which", ["identity", "transport"])
def test_request_auth_signature_as_envelope_signature(net, which):
    a = net.members[A]
    data = seal(net)
    header = sign_request(
        key=a.identity if which == "identity" else a.transport,
        network=net.genesis.digest,
        audience=HUB_AUDIENCE,
        method="POST",
        target="/v1/envelopes",
        body=data,
        created=NOW,
        rng=crypto.deterministic_rng(b"nonce"),
    )
    sig = parse_request_auth(header).signature
    assert len(sig) == SIG
    with raises_exactly(BadSignature):
        open_as(net, _with_signature(data, sig), B)


def test_receipt_signature_as_envelope_signature(net):
    a = net.members[A]
    data = seal(net)
    env = parse_envelope(data)
    receipt = make_receipt(
        genesis=net.genesis,
        identity=a.identity,
        message_id=env.header.message_id,
        envelope_hash=envelope_hash(data),
        sender=aid(B),
        recipient=aid(A),
        time=NOW,
    )
    (sig,) = receipt.signatures
    with raises_exactly(BadSignature):
        open_as(net, _with_signature(data, sig.sig), B)


def test_inner_signature_as_outer_signature(net):
    data = seal(net)
    inner = open_as(net, data, B).inner_signature
    with raises_exactly(BadSignature):
        open_as(net, _with_signature(data, inner), B)


# --- replay and conflict -------------------------------------------------------------------------


def test_replay_and_conflict(net):
    seen = SeenSet()
    first = parse_envelope(seal(net, message_id=FIXED_ID))
    again = parse_envelope(first.raw)
    other = parse_envelope(seal(net, message_id=FIXED_ID))
    assert other.raw != first.raw
    assert other.header.message_id == first.header.message_id
    seen.check_and_add(first.header.sender, first.header.message_id, first.hash)
    with raises_exactly(ReplayError):
        seen.check_and_add(again.header.sender, again.header.message_id, again.hash)
    with raises_exactly(ConflictError):
        seen.check_and_add(other.header.sender, other.header.message_id, other.hash)
    # Both copies still open: replay handling is the caller's job, not open_envelope's.
    assert open_as(net, other.raw, B).content == CONTENT
    # The same id from another sender is a different message.
    from_c = parse_envelope(seal(net, sender=C, message_id=FIXED_ID))
    seen.check_and_add(from_c.header.sender, from_c.header.message_id, from_c.hash)


def test_envelope_hash_names_the_exact_bytes(net):
    data = seal(net)
    env = parse_envelope(data)
    assert env.hash == crypto.sha256(crypto.labelled(labels.ENVELOPE_HASH, data))
    assert env.hash != crypto.sha256(data)
    assert envelope_hash(data + b"\x00") != env.hash
