"""Signed prekeys (R6; docs/PROTOCOL.md §6.6).

A signed prekey is a hybrid ML-KEM-768 + X25519 public key that a member
publishes for a validity window, signed by its certified identity key under
``globe/v1/prekey``.  Senders wrap content keys to the recipient's current
prekey; the recipient erases the private half after the grace period, which
gives forward secrecy per window.  If a member has no valid prekey, senders
may wrap to its certified key-agreement key instead (no forward secrecy for
that message; the header's ``prekey`` id makes that visible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import canonical, crypto, labels
from protocol.canonical import ObjectReader
from protocol.errors import (
    BadSignature,
    ExpiredError,
    MalformedError,
    NotYetValid,
    UnsupportedVersion,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPublicKey, SigningKey, VerifyKey
from protocol.signed import SignedObject, sign_object

__all__ = ["MAX_PREKEY_LIFETIME", "MAX_PREKEY_SIZE", "SignedPrekey", "make_prekey"]

MAX_PREKEY_SIZE: Final = 4096
#: A prekey may not be valid for longer than 90 days.
MAX_PREKEY_LIFETIME: Final = 90 * 86400


@dataclass(frozen=True, slots=True)
class SignedPrekey:
    """A verified signed prekey."""

    signed: SignedObject
    authority: AuthorityId
    key: KemPublicKey
    not_before: int
    not_after: int

    @classmethod
    def decode(
        cls, data: bytes, genesis: Genesis, identity: VerifyKey, *, authority: AuthorityId
    ) -> SignedPrekey:
        """Strictly decode and verify against ``authority``'s certified identity key."""
        signed = SignedObject.decode(data, max_size=MAX_PREKEY_SIZE, what="prekey")
        return cls.from_signed(signed, genesis, identity, authority=authority)

    @classmethod
    def from_signed(
        cls, signed: SignedObject, genesis: Genesis, identity: VerifyKey, *, authority: AuthorityId
    ) -> SignedPrekey:
        """Verify a prekey container."""
        what = "prekey"
        r = ObjectReader(signed.payload_json(what=what), what)
        if r.string("type", max_len=32) != "prekey":
            raise MalformedError("prekey: type must be 'prekey'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("prekey: only version 1 is supported")
        if r.blob("network", length=32) != genesis.digest:
            raise MalformedError("prekey: made for another network")
        if AuthorityId.parse(r.string("authority", max_len=19)) != authority:
            raise MalformedError(f"prekey: not a prekey of {authority}")
        key = KemPublicKey(r.blob("key", length=crypto.KEM_PUBLIC_LEN))
        not_before = r.integer("not_before")
        not_after = r.integer("not_after")
        r.done()
        if not 0 < not_after - not_before <= MAX_PREKEY_LIFETIME:
            raise MalformedError("prekey: validity window must be 1 s to 90 days")
        if len(signed.signatures) != 1:
            raise BadSignature("prekey: must carry exactly the identity key's signature")
        signed.verify_by(labels.PREKEY, identity)
        return cls(signed, authority, key, not_before, not_after)

    def check_valid_at(self, now: int) -> None:
        """Refuse a prekey outside its window."""
        if now < self.not_before:
            raise NotYetValid("prekey is not valid yet")
        if now >= self.not_after:
            raise ExpiredError("prekey has expired")


def make_prekey(
    *,
    genesis: Genesis,
    authority: AuthorityId,
    identity: SigningKey,
    key: KemPublicKey,
    not_before: int,
    not_after: int,
) -> SignedPrekey:
    """Sign a prekey with the member's identity key."""
    if not 0 < not_after - not_before <= MAX_PREKEY_LIFETIME:
        raise UsageError("prekey validity window must be 1 s to 90 days")
    payload = {
        "type": "prekey",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "authority": str(authority),
        "key": canonical.b64e(bytes(key)),
        "not_before": not_before,
        "not_after": not_after,
    }
    signed = sign_object(payload, labels.PREKEY, [identity])
    return SignedPrekey.from_signed(signed, genesis, identity.verify_key, authority=authority)
