"""The signed-object container (docs/PROTOCOL.md §5).

Every signed structure except the envelope travels as a *signed object*: the
exact canonical bytes of its payload, base64url-encoded, and a set of
detached signatures over ``label || 0x00 || payload``.  Signatures therefore
cover the bytes that travel, never a re-serialisation (R5), and the payload's
``type`` field plus the per-structure label keep purposes apart (R3)::

    {"payload":"<b64url payload bytes>","sigs":[{"kid":"ed25519:…","sig":"<b64url>"}]}

``sigs`` is sorted by ``kid`` and names each key once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from protocol import canonical, crypto, labels
from protocol.canonical import JsonValue, ObjectReader
from protocol.errors import BadSignature, MalformedError, QuorumNotMet, UsageError
from protocol.ids import KeyId
from protocol.keys import SigningKey, VerifyKey

__all__ = [
    "MAX_SIGNATURES",
    "Signature",
    "SignedObject",
    "sign_object",
    "verify_quorum",
]

MAX_SIGNATURES: Final = 64


@dataclass(frozen=True, slots=True)
class Signature:
    """One detached Ed25519 signature and the id of the key that made it."""

    key_id: KeyId
    sig: bytes


@dataclass(frozen=True, slots=True)
class SignedObject:
    """Exact payload bytes plus signatures; see the module docstring."""

    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, JsonValue]:
        """The container as a canonical-JSON-ready object."""
        return {
            "payload": canonical.b64e(self.payload),
            "sigs": [{"kid": str(s.key_id), "sig": canonical.b64e(s.sig)} for s in self.signatures],
        }

    def encode(self) -> bytes:
        """Canonical bytes of the container."""
        return canonical.encode(self.to_json())

    @classmethod
    def decode(cls, data: bytes, *, max_size: int, what: str) -> SignedObject:
        """Strictly decode a container of at most ``max_size`` bytes."""
        return cls.from_json(
            canonical.decode(data, max_size=max_size, what=what, check_values=False), what=what
        )

    @classmethod
    def from_json(cls, obj: JsonValue, *, what: str) -> SignedObject:
        """Strictly read a container already decoded as part of a larger object."""
        reader = ObjectReader(obj, what)
        payload = canonical.b64d(reader.string("payload", max_len=1 << 22), what=f"{what}.payload")
        sigs: list[Signature] = []
        for item in reader.objects("sigs", max_items=MAX_SIGNATURES):
            kid = KeyId.parse(item.string("kid", max_len=64))
            sig = item.blob("sig", length=crypto.ED25519_SIG_LEN)
            item.done()
            sigs.append(Signature(kid, sig))
        reader.done()
        kids = [str(s.key_id) for s in sigs]
        if kids != sorted(set(kids)):
            raise MalformedError(f"{what}.sigs: must be sorted by kid and name each key once")
        return cls(payload, tuple(sigs))

    def payload_json(self, *, what: str) -> dict[str, JsonValue]:
        """The payload, strictly decoded (it must itself be canonical)."""
        return canonical.decode(
            self.payload, max_size=len(self.payload), what=what, check_values=False
        )

    def digest(self) -> bytes:
        """``SHA-256("globe/v1/object-hash" || 0x00 || payload)``: names the payload."""
        return crypto.sha256(crypto.labelled(labels.OBJECT_HASH, self.payload))

    def with_signature(self, label: bytes, key: SigningKey) -> SignedObject:
        """Add (or replace) ``key``'s signature; the same key twice counts once."""
        new = Signature(key.key_id, key.sign(label, self.payload))
        kept = [s for s in self.signatures if s.key_id != key.key_id]
        merged = sorted([*kept, new], key=lambda s: str(s.key_id))
        return SignedObject(self.payload, tuple(merged))

    def merge(self, other: SignedObject) -> SignedObject:
        """Union of the signatures of two containers over the same payload."""
        if other.payload != self.payload:
            raise UsageError("cannot merge signatures over different payloads")
        by_kid = {str(s.key_id): s for s in self.signatures}
        for s in other.signatures:
            by_kid.setdefault(str(s.key_id), s)
        return SignedObject(self.payload, tuple(by_kid[k] for k in sorted(by_kid)))

    def verify_by(self, label: bytes, key: VerifyKey) -> None:
        """Require a valid signature by ``key``; :class:`BadSignature` otherwise."""
        for s in self.signatures:
            if s.key_id == key.key_id:
                key.verify(label, self.payload, s.sig)
                return
        raise BadSignature(f"no signature by {key.key_id}")


def sign_object(
    payload: Mapping[str, object], label: bytes, signers: Iterable[SigningKey]
) -> SignedObject:
    """Encode ``payload`` canonically and sign it with each of ``signers``."""
    obj = SignedObject(canonical.encode(payload), ())
    for key in signers:
        obj = obj.with_signature(label, key)
    return obj


def verify_quorum(
    obj: SignedObject,
    label: bytes,
    admins: Mapping[KeyId, VerifyKey],
    threshold: int,
) -> frozenset[KeyId]:
    """The distinct admin keys whose signatures verify; :class:`QuorumNotMet` below ``threshold``.

    Signatures by keys that are not admins count zero; an admin counts once
    however the container is built (R1).
    """
    valid: set[KeyId] = set()
    for s in obj.signatures:
        key = admins.get(s.key_id)
        if key is not None and key.verifies(label, obj.payload, s.sig):
            valid.add(s.key_id)
    if len(valid) < threshold:
        raise QuorumNotMet(f"{len(valid)} valid admin signature(s), {threshold} required")
    return frozenset(valid)
