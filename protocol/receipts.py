"""Receipts and hub evidence (R11; docs/PROTOCOL.md §9).

* A **delivery receipt** is signed by the recipient's identity key under
  ``globe/v1/receipt`` over ``(message id, envelope hash, sender, recipient,
  time)``: proof that this recipient received exactly these bytes.
* **Evidence** is signed by the hub key under ``globe/v1/evidence``: the hub
  accepted an envelope (``accepted``), refused it (``rejected``, with the
  problem slug), a recipient acknowledged it (``delivered``), or it expired
  undelivered (``non-delivery``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from protocol import canonical, labels
from protocol.canonical import ObjectReader
from protocol.directory import DirectoryState
from protocol.errors import BadSignature, MalformedError, UnsupportedVersion
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.keys import SigningKey
from protocol.signed import SignedObject, sign_object

__all__ = [
    "MAX_RECEIPT_SIZE",
    "DeliveryReceipt",
    "Evidence",
    "EvidenceKind",
    "make_evidence",
    "make_receipt",
]

MAX_RECEIPT_SIZE: Final = 4096
MAX_EVIDENCE_SIZE: Final = 64 * 1024
_SLUG_MAX: Final = 64
_SLUG_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z", re.ASCII)


def _common(r: ObjectReader, genesis: Genesis, kind: str, what: str) -> None:
    if r.string("type", max_len=32) != kind:
        raise MalformedError(f"{what}: type must be {kind!r}")
    if r.integer("v") != 1:
        raise UnsupportedVersion(f"{what}: only version 1 is supported")
    if r.blob("network", length=32) != genesis.digest:
        raise MalformedError(f"{what}: made for another network")


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A verified recipient-signed delivery receipt."""

    signed: SignedObject
    message_id: MessageId
    envelope_hash: bytes
    sender: AuthorityId
    recipient: AuthorityId
    key: KeyId
    time: int

    @classmethod
    def decode(cls, data: bytes, directory: DirectoryState) -> DeliveryReceipt:
        """Strictly decode and verify against the recipient's certified identity key."""
        signed = SignedObject.decode(data, max_size=MAX_RECEIPT_SIZE, what="receipt")
        return cls.from_signed(signed, directory)

    @classmethod
    def from_signed(cls, signed: SignedObject, directory: DirectoryState) -> DeliveryReceipt:
        """Verify a receipt container."""
        what = "receipt"
        r = ObjectReader(signed.payload_json(what=what), what)
        _common(r, directory.genesis, "receipt", what)
        mid = MessageId.parse(r.string("id", max_len=32))
        env_hash = r.blob("envelope", length=32)
        sender = AuthorityId.parse(r.string("sender", max_len=19))
        recipient = AuthorityId.parse(r.string("recipient", max_len=19))
        key_id = KeyId.parse(r.string("key", max_len=64))
        time = r.integer("time")
        r.done()
        # Any identity key the recipient was ever certified with: a receipt
        # signed before a key rotation remains evidence after it.
        member = directory.member(recipient)
        key = member.identity_keys.get(key_id)
        if key is None or len(signed.signatures) != 1:
            raise BadSignature("receipt: not signed by a certified identity key of the recipient")
        retired = member.retired_at.get(key_id)
        if retired is not None and time >= retired:
            raise BadSignature("receipt: dated after its signing key was replaced")
        signed.verify_by(labels.RECEIPT, key)
        return cls(signed, mid, env_hash, sender, recipient, key_id, time)

    def matches(self, message_id: MessageId, envelope_hash: bytes) -> bool:
        """Whether this receipt is for exactly that message and those bytes."""
        return self.message_id == message_id and self.envelope_hash == envelope_hash


def make_receipt(
    *,
    genesis: Genesis,
    identity: SigningKey,
    message_id: MessageId,
    envelope_hash: bytes,
    sender: AuthorityId,
    recipient: AuthorityId,
    time: int,
) -> SignedObject:
    """Sign a delivery receipt with the recipient's identity key."""
    payload = {
        "type": "receipt",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "id": str(message_id),
        "envelope": canonical.b64e(envelope_hash),
        "sender": str(sender),
        "recipient": str(recipient),
        "key": str(identity.key_id),
        "time": time,
    }
    return sign_object(payload, labels.RECEIPT, [identity])


class EvidenceKind(Enum):
    """What the hub attests."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DELIVERED = "delivered"
    NON_DELIVERY = "non-delivery"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Verified hub-signed evidence about one envelope."""

    signed: SignedObject
    kind: EvidenceKind
    message_id: MessageId
    envelope_hash: bytes
    sender: AuthorityId
    recipients: tuple[AuthorityId, ...]
    reason: str | None
    time: int

    @classmethod
    def decode(cls, data: bytes, genesis: Genesis) -> Evidence:
        """Strictly decode and verify against the pinned hub key."""
        signed = SignedObject.decode(data, max_size=MAX_EVIDENCE_SIZE, what="evidence")
        return cls.from_signed(signed, genesis)

    @classmethod
    def from_signed(cls, signed: SignedObject, genesis: Genesis) -> Evidence:
        """Verify an evidence container."""
        what = "evidence"
        r = ObjectReader(signed.payload_json(what=what), what)
        _common(r, genesis, "evidence", what)
        try:
            kind = EvidenceKind(r.string("kind", max_len=16))
        except ValueError:
            raise MalformedError("evidence.kind: unknown kind") from None
        mid = MessageId.parse(r.string("id", max_len=32))
        env_hash = r.blob("envelope", length=32)
        sender = AuthorityId.parse(r.string("sender", max_len=19))
        names = r.strings("recipients", min_items=1, max_items=256, max_len=19)
        if names != sorted(names):
            raise MalformedError("evidence.recipients: must be sorted")
        reason = r.string("reason", max_len=_SLUG_MAX) if r.has("reason") else None
        if reason is not None and not _SLUG_RE.match(reason):
            raise MalformedError("evidence.reason: a problem slug, [a-z0-9-]")
        time = r.integer("time")
        r.done()
        needs_reason = kind in (EvidenceKind.REJECTED, EvidenceKind.NON_DELIVERY)
        if needs_reason != (reason is not None):
            raise MalformedError("evidence: a reason goes with rejected and non-delivery only")
        if len(signed.signatures) != 1:
            raise BadSignature("evidence: must carry exactly the hub's signature")
        signed.verify_by(labels.EVIDENCE, genesis.hub_key)
        recipients = tuple(AuthorityId.parse(n) for n in names)
        return cls(signed, kind, mid, env_hash, sender, recipients, reason, time)


def make_evidence(
    *,
    genesis: Genesis,
    hub: SigningKey,
    kind: EvidenceKind,
    message_id: MessageId,
    envelope_hash: bytes,
    sender: AuthorityId,
    recipients: list[AuthorityId],
    time: int,
    reason: str | None = None,
) -> Evidence:
    """Sign evidence with the hub key."""
    payload: dict[str, object] = {
        "type": "evidence",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "kind": kind.value,
        "id": str(message_id),
        "envelope": canonical.b64e(envelope_hash),
        "sender": str(sender),
        "recipients": sorted(str(a) for a in recipients),
        "time": time,
    }
    if reason is not None:
        payload["reason"] = reason
    return Evidence.from_signed(sign_object(payload, labels.EVIDENCE, [hub]), genesis)
