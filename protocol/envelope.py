"""Envelope v1: signed, encrypted, multi-recipient messages (R5-R9; docs/PROTOCOL.md §7).

Binary layout (all integers big-endian)::

    magic "GLBE" (4) | version u8 = 1 | suite u8 = 1
    | header_len u32 | header (canonical JSON, header_len bytes)
    | count u16 | count x wrapped key (1,168 bytes each, recipients' order)
    | body_len u32 | body (AEAD ciphertext, body_len bytes)
    | signature (64): Ed25519 by the sender's identity key over
      "globe/v1/envelope" || 0x00 || every byte before the signature

The body is encrypted once under a random 32-byte content key with
ChaCha20-Poly1305 (nonce all zero: the key is used once), associated data
``"globe/v1/body" || 0x00 || header``.  The content key is wrapped for each
recipient with HPKE (RFC 9180, base mode, KEM MLKEM768-X25519, HKDF-SHA256,
ChaCha20-Poly1305) to the recipient's signed prekey, ``info =
"globe/v1/wrap" || 0x00 || SHA-256(header) || recipient id``.  The header
commits to the content key (``commit``), so every recipient decrypts the
same plaintext.  The plaintext is ``u32 content_len | content | inner
signature (64) | zero padding`` to a power-of-two bucket of at least 1 KiB;
the inner signature is over ``"globe/v1/content" || 0x00 || SHA-256(header)
|| content``: non-repudiation of origin, bound to this header so a recipient
cannot re-send the content to a third party under the originator's name.

Verification order (R9): size cap → framing → version and suite → strict
header decode → sender certified and active → outer signature → recipient
entry → unwrap → key commitment → body decryption → padding → inner signature.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from protocol import canonical, crypto, labels
from protocol.canonical import ObjectReader
from protocol.directory import DirectoryState, HeadRelation
from protocol.errors import (
    DecryptionFailed,
    ExpiredError,
    GlobeError,
    MalformedError,
    NotARecipient,
    NotYetValid,
    ReflectedMessage,
    SizeLimitExceeded,
    Truncated,
    UnsupportedSuite,
    UnsupportedVersion,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey

__all__ = [
    "MAGIC",
    "MAX_BLOBS",
    "MAX_BODY_BUCKET",
    "MAX_CONTENT_SIZE",
    "MAX_ENVELOPE_SIZE",
    "MAX_LIFETIME",
    "MAX_RECIPIENTS",
    "MIN_BODY_BUCKET",
    "SUITE",
    "VERSION",
    "Envelope",
    "EnvelopeHeader",
    "OpenedEnvelope",
    "Recipient",
    "SealTo",
    "check_recipients_active",
    "content_signature",
    "decode_header",
    "envelope_hash",
    "open_envelope",
    "parse_envelope",
    "seal_envelope",
    "seal_envelope_signed",
    "verify_envelope",
]

MAGIC: Final = b"GLBE"
VERSION: Final = 1
SUITE: Final = 1
MAX_RECIPIENTS: Final = 256
#: Blob ids an envelope header may list (as many as the content's attachments, §8.4).
MAX_BLOBS: Final = 64
MAX_HEADER_SIZE: Final = 64 * 1024
MIN_BODY_BUCKET: Final = 1024
MAX_BODY_BUCKET: Final = 1 << 20
_FRAME: Final = 4 + 64  # content length prefix, inner signature
MAX_CONTENT_SIZE: Final = MAX_BODY_BUCKET - _FRAME
MAX_ENVELOPE_SIZE: Final = (
    10 + MAX_HEADER_SIZE + 2 + MAX_RECIPIENTS * crypto.WRAPPED_KEY_LEN + 4
    + MAX_BODY_BUCKET + crypto.AEAD_TAG_LEN + crypto.ED25519_SIG_LEN
)  # fmt: skip
#: An envelope may not live longer than 30 days.
MAX_LIFETIME: Final = 30 * 86400
#: Tolerated clock skew for ``created`` in the future.
MAX_SKEW: Final = 300
_ZERO_NONCE: Final = bytes(crypto.AEAD_NONCE_LEN)
_HEX32: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient as the header names it."""

    authority: AuthorityId
    seq: int
    prekey: KeyId


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The decoded header; ``raw`` are its exact bytes."""

    raw: bytes
    network: bytes
    message_id: MessageId
    sender: AuthorityId
    sender_key: KeyId
    recipients: tuple[Recipient, ...]
    created: int
    expires: int
    dir_seq: int
    dir_head: bytes
    commit: bytes
    blobs: tuple[str, ...] = ()  # attachment blob ids on the hub, sorted (§7.2)

    def recipient(self, authority: AuthorityId) -> tuple[int, Recipient]:
        """Index and entry of ``authority``; :class:`NotARecipient` if absent."""
        for index, r in enumerate(self.recipients):
            if r.authority == authority:
                return index, r
        raise NotARecipient(f"{authority} is not a recipient of {self.message_id}")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A structurally valid envelope (signatures not yet checked)."""

    raw: bytes
    header: EnvelopeHeader
    wrapped: tuple[bytes, ...]
    body: bytes
    signature: bytes

    @property
    def signed_part(self) -> bytes:
        """The bytes the outer signature covers."""
        return self.raw[: -crypto.ED25519_SIG_LEN]

    @property
    def hash(self) -> bytes:
        """``SHA-256("globe/v1/envelope-hash" || 0x00 || envelope)``: names these bytes."""
        return envelope_hash(self.raw)


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A verified, decrypted envelope."""

    envelope: Envelope
    content: bytes
    inner_signature: bytes
    head_relation: HeadRelation

    @property
    def header(self) -> EnvelopeHeader:
        """The envelope header."""
        return self.envelope.header


@dataclass(frozen=True, slots=True)
class SealTo:
    """A recipient to seal to: its id, the per-pair sequence number and its prekey."""

    authority: AuthorityId
    seq: int
    prekey: KemPublicKey


def envelope_hash(data: bytes) -> bytes:
    """The hash receipts and evidence use to name an envelope's exact bytes."""
    return crypto.sha256(crypto.labelled(labels.ENVELOPE_HASH, data))


def _bucket(n: int) -> int:
    size = MIN_BODY_BUCKET
    while size < n:
        size <<= 1
    return size


def _body_aad(header: bytes) -> bytes:
    return crypto.labelled(labels.BODY_AAD, header)


def _wrap_info(header_digest: bytes, authority: AuthorityId) -> bytes:
    return crypto.labelled(labels.WRAP, header_digest, str(authority).encode("ascii"))


def _commit(message_id: MessageId, content_key: bytes) -> bytes:
    return crypto.sha256(crypto.labelled(labels.KEY_COMMIT, message_id.raw, content_key))


def _content_signed(header_digest: bytes, content: bytes) -> bytes:
    return header_digest + content


def content_signature(identity: SigningKey, header: bytes, content: bytes) -> bytes:
    """The inner signature (§7.5) of ``content`` sealed under ``header`` (exact bytes).

    Ed25519 is deterministic, so this is the very signature the envelope
    carries: a sender keeps it as its own proof of origin (§8.5).
    """
    return identity.sign(labels.CONTENT, _content_signed(crypto.sha256(header), content))


# --- sealing ------------------------------------------------------------------------------


def seal_envelope(
    *,
    genesis: Genesis,
    sender: AuthorityId,
    identity: SigningKey,
    recipients: Sequence[SealTo],
    content: bytes,
    created: int,
    expires: int,
    dir_seq: int,
    dir_head: bytes,
    rng: crypto.Rng = crypto.system_rng,
    message_id: MessageId | None = None,
    blobs: Sequence[str] = (),
) -> bytes:
    """Seal ``content`` (canonical message bytes) to every recipient; return the envelope
    (:func:`seal_envelope_signed` without the inner signature)."""
    return seal_envelope_signed(
        genesis=genesis, sender=sender, identity=identity, recipients=recipients,
        content=content, created=created, expires=expires, dir_seq=dir_seq,
        dir_head=dir_head, rng=rng, message_id=message_id, blobs=blobs,
    )[0]  # fmt: skip


def seal_envelope_signed(
    *,
    genesis: Genesis,
    sender: AuthorityId,
    identity: SigningKey,
    recipients: Sequence[SealTo],
    content: bytes,
    created: int,
    expires: int,
    dir_seq: int,
    dir_head: bytes,
    rng: crypto.Rng = crypto.system_rng,
    message_id: MessageId | None = None,
    blobs: Sequence[str] = (),
) -> tuple[bytes, bytes]:
    """Seal ``content`` (canonical message bytes) to every recipient; return the envelope
    and the inner signature it carries (:func:`content_signature`, which a sender keeps
    as its proof of origin, §8.5).

    ``blobs`` are the hub blob ids of the content's attachments (§8.4): the header
    lists them, sorted, so the hub knows which blobs the envelope references.
    """
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise UsageError(f"an envelope has 1 to {MAX_RECIPIENTS} recipients")
    ordered = sorted(recipients, key=lambda r: str(r.authority))
    ids = [str(r.authority) for r in ordered]
    if len(set(ids)) != len(ids):
        raise UsageError("a recipient is named twice")
    if sender in (r.authority for r in ordered):
        raise UsageError("the sender cannot be a recipient")
    if len(content) > MAX_CONTENT_SIZE:
        raise UsageError(f"content exceeds {MAX_CONTENT_SIZE} bytes; send files as attachments")
    if not created < expires <= created + MAX_LIFETIME:
        raise UsageError("expiry must be after creation and within 30 days")
    if isinstance(blobs, str) or any(type(b) is not str or not _HEX32.match(b) for b in blobs):
        raise UsageError("a blob id is 32 lower-case hex digits")
    blob_ids = sorted(blobs)
    if len(blob_ids) > MAX_BLOBS:
        raise UsageError(f"an envelope references at most {MAX_BLOBS} blobs")
    if len(set(blob_ids)) != len(blob_ids):
        raise UsageError("a blob id is named twice")
    mid = message_id or MessageId.new(rng)
    content_key = rng(crypto.AEAD_KEY_LEN)
    fields: dict[str, object] = {
        "type": "envelope",
        "v": VERSION,
        "suite": SUITE,
        "network": canonical.b64e(genesis.digest),
        "id": str(mid),
        "sender": str(sender),
        "sender_key": str(identity.key_id),
        "recipients": [
            {"id": str(r.authority), "seq": r.seq, "prekey": str(r.prekey.key_id)} for r in ordered
        ],
        "created": created,
        "expires": expires,
        "dir": {"seq": dir_seq, "head": canonical.b64e(dir_head)},
        "commit": canonical.b64e(_commit(mid, content_key)),
    }
    if blob_ids:  # absent when there are none, never an empty list
        fields["blobs"] = blob_ids
    header = canonical.encode(fields)
    if len(header) > MAX_HEADER_SIZE:
        raise UsageError("header too large")
    header_digest = crypto.sha256(header)
    inner = content_signature(identity, header, content)
    framed = struct.pack(">I", len(content)) + content + inner
    plaintext = framed + bytes(_bucket(len(framed)) - len(framed))
    body = crypto.aead_encrypt(content_key, _ZERO_NONCE, plaintext, _body_aad(header))
    wrapped = [r.prekey.seal(content_key, _wrap_info(header_digest, r.authority)) for r in ordered]
    signed = b"".join(
        (
            MAGIC,
            bytes((VERSION, SUITE)),
            struct.pack(">I", len(header)),
            header,
            struct.pack(">H", len(wrapped)),
            *wrapped,
            struct.pack(">I", len(body)),
            body,
        )
    )
    return signed + identity.sign(labels.ENVELOPE, signed), inner


# --- parsing ------------------------------------------------------------------------------


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise Truncated(f"envelope: truncated in {what}")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = struct.unpack(">H", self.take(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = struct.unpack(">I", self.take(4, what))[0]
        return value


_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_W: Final = crypto.WRAPPED_KEY_LEN
_SIG: Final = crypto.ED25519_SIG_LEN


def parse_envelope(data: bytes, *, max_size: int = MAX_ENVELOPE_SIZE) -> Envelope:
    """Parse an envelope's structure strictly (no signature or directory check yet).

    The common case, a well-framed envelope, is sliced directly; anything else
    takes :func:`_parse_slow`, which walks the fields in order and raises the
    error for the first defect.  Both accept exactly the same inputs.
    """
    n = len(data)
    if n > max_size:
        raise SizeLimitExceeded(f"envelope: {n} bytes exceeds the cap of {max_size}")
    if n >= 10 and data[4] == VERSION and data[5] == SUITE and data[:4] == MAGIC:
        (header_len,) = _U32.unpack_from(data, 6)
        pos = 10 + header_len
        if header_len <= MAX_HEADER_SIZE and pos + 2 <= n:
            (count,) = _U16.unpack_from(data, pos)
            pos += 2
            wrapped_end = pos + count * _W
            if 1 <= count <= MAX_RECIPIENTS and wrapped_end + 4 <= n:
                (body_len,) = _U32.unpack_from(data, wrapped_end)
                bucket = body_len - crypto.AEAD_TAG_LEN
                body_start = wrapped_end + 4
                if (
                    MIN_BODY_BUCKET <= bucket <= MAX_BODY_BUCKET
                    and not bucket & (bucket - 1)
                    and body_start + body_len + _SIG == n
                ):
                    header = _decode_header(data[10 : 10 + header_len])
                    if len(header.recipients) != count:
                        raise MalformedError(
                            "envelope: wrapped key count differs from the recipients"
                        )
                    wrapped = tuple(data[i : i + _W] for i in range(pos, wrapped_end, _W))
                    body = data[body_start : body_start + body_len]
                    return Envelope(data, header, wrapped, body, data[n - _SIG :])
    return _parse_slow(data)


def _parse_slow(data: bytes) -> Envelope:
    """Field-by-field parse: the reference path, and the one that names each defect."""
    cur = _Cursor(data)
    if cur.take(4, "magic") != MAGIC:
        raise MalformedError("envelope: not a GlobE envelope (bad magic)")
    version = cur.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"envelope: version {version} is not supported (R8)")
    suite = cur.u8("suite")
    if suite != SUITE:
        raise UnsupportedSuite(f"envelope: suite {suite} is not supported (R8)")
    header_len = cur.u32("header length")
    if header_len > MAX_HEADER_SIZE:
        raise SizeLimitExceeded("envelope: header too large")
    header_raw = cur.take(header_len, "header")
    count = cur.u16("recipient count")
    if not 1 <= count <= MAX_RECIPIENTS:
        raise MalformedError(f"envelope: 1 to {MAX_RECIPIENTS} wrapped keys")
    wrapped = tuple(cur.take(crypto.WRAPPED_KEY_LEN, "wrapped keys") for _ in range(count))
    body_len = cur.u32("body length")
    bucket = body_len - crypto.AEAD_TAG_LEN
    if bucket < MIN_BODY_BUCKET or bucket > MAX_BODY_BUCKET or bucket & (bucket - 1):
        raise MalformedError("envelope: body is not padded to a size bucket")
    body = cur.take(body_len, "body")
    signature = cur.take(crypto.ED25519_SIG_LEN, "signature")
    if cur.pos != len(data):
        raise MalformedError("envelope: trailing bytes after the signature")
    header = _decode_header(header_raw)
    if len(header.recipients) != count:
        raise MalformedError("envelope: wrapped key count differs from the recipients")
    return Envelope(data, header, wrapped, body, signature)


_HEADER_KEYS: Final = frozenset(
    [
        "type",
        "v",
        "suite",
        "network",
        "id",
        "sender",
        "sender_key",
        "recipients",
        "created",
        "expires",
        "dir",
        "commit",
    ]
)
_HEADER_KEYS_BLOBS: Final = _HEADER_KEYS | {"blobs"}  # "blobs" is optional
_RECIPIENT_KEYS: Final = frozenset(("id", "seq", "prekey"))
_DIR_KEYS: Final = frozenset(("seq", "head"))
_MAX_INT: Final = canonical.MAX_INT


def _uint(value: object, lo: int = 0) -> bool:
    return type(value) is int and lo <= value <= _MAX_INT


def _header_fast(obj: dict[str, Any], raw: bytes) -> EnvelopeHeader | None:  # noqa: PLR0911
    """The header, if every field is plainly well formed; ``None`` sends the caller to
    :func:`_header_strict`, which accepts exactly the same headers and names the defect."""
    try:
        has_blobs = "blobs" in obj
        if obj.keys() != (_HEADER_KEYS_BLOBS if has_blobs else _HEADER_KEYS):
            return None
        if obj["type"] != "envelope":
            return None
        v, suite, created, expires, d = (
            obj["v"],
            obj["suite"],
            obj["created"],
            obj["expires"],
            obj["dir"],
        )
        if not (_uint(v) and v == VERSION and _uint(suite) and suite == SUITE):
            return None
        if not (_uint(created) and _uint(expires) and created < expires <= created + MAX_LIFETIME):
            return None
        if type(d) is not dict or d.keys() != _DIR_KEYS or not _uint(d["seq"]):
            return None
        recipients: list[Recipient] = []
        items = obj["recipients"]
        if type(items) is not list or not 1 <= len(items) <= MAX_RECIPIENTS:
            return None
        for item in items:
            if (
                type(item) is not dict
                or item.keys() != _RECIPIENT_KEYS
                or not _uint(item["seq"], 1)
            ):
                return None
            recipients.append(
                Recipient(AuthorityId.parse(item["id"]), item["seq"], KeyId.parse(item["prekey"]))
            )
        names = [r.authority.value for r in recipients]
        sender = AuthorityId.parse(obj["sender"])
        if names != sorted(set(names)) or sender.value in names:
            return None
        blobs = [obj["network"], d["head"], obj["commit"]]
        if any(type(b) is not str or len(b) != 43 for b in blobs):
            return None
        network, head, commit = (canonical.b64d(b, what="envelope header") for b in blobs)
        blob_ids = obj["blobs"] if has_blobs else []
        if has_blobs and (
            type(blob_ids) is not list
            or not 1 <= len(blob_ids) <= MAX_BLOBS
            or any(type(b) is not str or not _HEX32.match(b) for b in blob_ids)
            or blob_ids != sorted(set(blob_ids))
        ):
            return None
        return EnvelopeHeader(
            raw, network, MessageId.parse(obj["id"]), sender, KeyId.parse(obj["sender_key"]),
            tuple(recipients), created, expires, d["seq"], head, commit, tuple(blob_ids),
        )  # fmt: skip
    except GlobeError:
        return None


def decode_header(raw: bytes) -> EnvelopeHeader:
    """Strictly decode an envelope header on its own (§7.2), e.g. from a proof of origin."""
    return _decode_header(raw)


def _decode_header(raw: bytes) -> EnvelopeHeader:
    obj = canonical.decode(
        raw, max_size=MAX_HEADER_SIZE, what="envelope header", check_values=False
    )
    return _header_fast(obj, raw) or _header_strict(obj, raw)


def _header_strict(obj: dict[str, Any], raw: bytes) -> EnvelopeHeader:
    what = "envelope header"
    r = ObjectReader(obj, what)
    if r.string("type", max_len=32) != "envelope":
        raise MalformedError("envelope header: type must be 'envelope'")
    if r.integer("v") != VERSION:
        raise UnsupportedVersion("envelope header: version mismatch")
    if r.integer("suite") != SUITE:
        raise UnsupportedSuite("envelope header: suite mismatch")
    network = r.blob("network", length=32)
    message_id = MessageId.parse(r.string("id", max_len=32))
    sender = AuthorityId.parse(r.string("sender", max_len=19))
    sender_key = KeyId.parse(r.string("sender_key", max_len=64))
    recipients: list[Recipient] = []
    for item in r.objects("recipients", min_items=1, max_items=MAX_RECIPIENTS):
        rid = AuthorityId.parse(item.string("id", max_len=19))
        seq = item.integer("seq", lo=1)
        prekey = KeyId.parse(item.string("prekey", max_len=64))
        item.done()
        recipients.append(Recipient(rid, seq, prekey))
    created = r.integer("created")
    expires = r.integer("expires")
    d = r.object("dir")
    dir_seq = d.integer("seq")
    dir_head = d.blob("head", length=32)
    d.done()
    commit = r.blob("commit", length=32)
    blob_ids: list[str] = []
    if r.has("blobs"):  # optional; absent when there are none
        blob_ids = r.strings("blobs", min_items=1, max_items=MAX_BLOBS, max_len=32, unique=False)
        for b in blob_ids:
            MessageId.parse(b)  # the same shape: 32 lower-case hex digits
    r.done()
    names = [str(x.authority) for x in recipients]
    if names != sorted(set(names)):
        raise MalformedError("envelope header: recipients must be sorted and distinct")
    if blob_ids != sorted(set(blob_ids)):
        raise MalformedError("envelope header: blobs must be sorted and distinct")
    if sender in (x.authority for x in recipients):
        raise ReflectedMessage("envelope header: the sender is among the recipients")
    if not created < expires <= created + MAX_LIFETIME:
        raise MalformedError("envelope header: expiry must be within 30 days of creation")
    return EnvelopeHeader(
        raw, network, message_id, sender, sender_key, tuple(recipients), created, expires,
        dir_seq, dir_head, commit, tuple(blob_ids),
    )  # fmt: skip


# --- verification -------------------------------------------------------------------------


def verify_envelope(
    envelope: Envelope, directory: DirectoryState, now: int, *, max_skew: int = MAX_SKEW
) -> VerifyKey:
    """Check network, times, sender certification and the outer signature.

    This is what the hub can check without reading the content; nodes run it
    too.  Returns the sender's certified identity key.
    """
    h = envelope.header
    if h.network != directory.genesis.digest:
        raise MalformedError("envelope: made for another network")
    if h.created > now + max_skew:
        raise NotYetValid("envelope: created in the future")
    if h.expires <= now:
        raise ExpiredError("envelope: expired")
    # The sender's current identity key, or one replaced after the envelope's creation:
    # what it sealed before a key update stays deliverable until it expires (§6.8).
    key = directory.identity_key(h.sender, h.sender_key, now, signed_at=h.created)
    key.verify(labels.ENVELOPE, envelope.signed_part, envelope.signature)
    return key


def check_recipients_active(envelope: Envelope, directory: DirectoryState, now: int) -> None:
    """Every recipient must be an active member with a valid certificate."""
    for r in envelope.header.recipients:
        directory.active_member(r.authority, now)


def open_envelope(
    envelope: Envelope,
    *,
    directory: DirectoryState,
    me: AuthorityId,
    private_key: Callable[[KeyId], KemPrivateKey | None],
    now: int,
    max_skew: int = MAX_SKEW,
) -> OpenedEnvelope:
    """Verify and decrypt an envelope addressed to ``me``.

    ``private_key(key_id)`` returns the private half of one of ``me``'s
    prekeys (or its certified key-agreement key), or ``None`` if it is
    unknown or already erased.
    """
    h = envelope.header
    if h.sender == me:
        raise ReflectedMessage("envelope: this node is its sender")
    sender_key = verify_envelope(envelope, directory, now, max_skew=max_skew)
    index, entry = h.recipient(me)
    private = private_key(entry.prekey)
    if private is None:
        raise DecryptionFailed(f"no private key for {entry.prekey} (unknown or erased)")
    header_digest = crypto.sha256(h.raw)
    content_key = private.open(envelope.wrapped[index], _wrap_info(header_digest, me))
    if len(content_key) != crypto.AEAD_KEY_LEN or not crypto.constant_time_equal(
        _commit(h.message_id, content_key), h.commit
    ):
        raise DecryptionFailed("content key does not match the header's commitment")
    plaintext = crypto.aead_decrypt(content_key, _ZERO_NONCE, envelope.body, _body_aad(h.raw))
    (length,) = struct.unpack(">I", plaintext[:4])
    end = 4 + length + crypto.ED25519_SIG_LEN
    if end > len(plaintext):
        raise MalformedError("envelope body: content length exceeds the body")
    if plaintext[end:].count(0) != len(plaintext) - end or _bucket(end) != len(plaintext):
        raise MalformedError("envelope body: padding is not canonical")
    content = plaintext[4 : 4 + length]
    inner = plaintext[4 + length : end]
    sender_key.verify(labels.CONTENT, _content_signed(header_digest, content), inner)
    relation = directory.relation(h.dir_seq, h.dir_head)
    return OpenedEnvelope(envelope, content, inner, relation)
