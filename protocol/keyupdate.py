"""Key-update requests: a member asks the admins to certify new keys (R1, R4;
docs/PROTOCOL.md §6.8).

A **key-update request** is a signed object under ``globe/v1/key-update`` that
carries the member's new identity, transport and key-agreement keys (a key it keeps
is carried unchanged).  It is signed by the member's **current** identity key,
which authorises it, and by the new identity and transport keys, which proves
possession of them; possession of the new key-agreement key is shown by answering a
KEM challenge bound to the request's digest (:func:`protocol.membership.kem_pop_challenge`,
as for an application).  The request changes nothing by itself: only an
``update-keys`` action signed by a quorum of admins certifies the new keys
(:func:`certificate_for`, :func:`check_key_update_draft`), because the admins, not
the member, vouch for who a key belongs to (R1).

A suspended member may ask too (the compromise procedure: the admins suspend a member
whose key was stolen, then certify new keys), but must then replace every key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import canonical, crypto, labels
from protocol.canonical import ObjectReader
from protocol.directory import DirectoryState, MemberStatus, role_keys
from protocol.errors import (
    BadSignature,
    MalformedError,
    MemberNotActive,
    MembershipError,
    UnsupportedVersion,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPublicKey, SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Certificate,
    MembershipAction,
    authority_fingerprint,
    check_draft_times,
    make_action,
)
from protocol.signed import SignedObject, sign_object

__all__ = [
    "MAX_KEY_UPDATE_SIZE",
    "KeyUpdateRequest",
    "certificate_for",
    "check_key_update_draft",
    "make_key_update",
]

#: Largest key-update request container (PROTOCOL.md §2.7).
MAX_KEY_UPDATE_SIZE: Final = 16 * 1024
_ED = crypto.ED25519_PUBLIC_LEN


@dataclass(frozen=True, slots=True)
class KeyUpdateRequest:
    """A verified key-update request: the keys ``authority`` asks to have certified.

    ``replaced`` names the roles whose key changes (``identity``, ``transport``,
    ``key-agreement``), in that order.
    """

    signed: SignedObject
    authority: AuthorityId
    identity_key: VerifyKey
    transport_key: VerifyKey
    ka_key: KemPublicKey
    created: int
    replaced: tuple[str, ...]

    @property
    def digest(self) -> bytes:
        """Names the request: bound into the KEM challenge and the certificate issued."""
        return self.signed.digest()

    def fingerprint(self) -> str:
        """The authority fingerprint of the keys asked for (PROTOCOL.md §3.4), which the
        member and the admins compare out of band before the admins sign."""
        return authority_fingerprint(
            authority=self.authority,
            identity=self.identity_key,
            transport=self.transport_key,
            ka=self.ka_key,
        )

    @classmethod
    def decode(cls, data: bytes, directory: DirectoryState) -> KeyUpdateRequest:
        """Strictly decode and verify against the verified directory (§6.8)."""
        signed = SignedObject.decode(data, max_size=MAX_KEY_UPDATE_SIZE, what="key update")
        return cls.from_signed(signed, directory)

    @classmethod
    def from_signed(cls, signed: SignedObject, directory: DirectoryState) -> KeyUpdateRequest:
        """Verify a key-update container, in the order of PROTOCOL.md §6.8."""
        what = "key update"
        r = ObjectReader(signed.payload_json(what=what), what)
        if r.string("type", max_len=32) != "key-update":
            raise MalformedError("key update: type must be 'key-update'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("key update: only version 1 is supported")
        if r.blob("network", length=32) != directory.genesis.digest:
            raise MalformedError("key update: made for another network")
        authority = AuthorityId.parse(r.string("authority", max_len=19))
        identity = VerifyKey(r.blob("identity_key", length=_ED))
        transport = VerifyKey(r.blob("transport_key", length=_ED))
        ka_key = KemPublicKey(r.blob("ka_key", length=crypto.KEM_PUBLIC_LEN))
        created = r.integer("created")
        r.done()
        if identity == transport:
            raise MalformedError("key update: identity and transport keys must differ (R3)")
        member = directory.member(authority)
        if member.status is MemberStatus.REVOKED:
            raise MemberNotActive(f"{authority} is revoked: its keys are never updated")
        new = {"identity": bytes(identity), "transport": bytes(transport),
               "key-agreement": bytes(ka_key)}  # fmt: skip
        current = role_keys(member.certificate)
        replaced = tuple(role for role, raw in new.items() if current[role] != raw)
        if not replaced:
            raise MalformedError("key update: it replaces no key")
        if member.status is MemberStatus.SUSPENDED and len(replaced) != len(new):
            raise MalformedError("key update: a suspended member replaces every key")
        directory.check_new_keys(new, member, what)
        # The current identity key authorises; the new signing keys prove possession.
        signers = {k.key_id: k for k in (member.certificate.identity_key, identity, transport)}
        if len(signed.signatures) != len(signers):
            raise BadSignature(
                "key update: needs exactly the current identity key's and the new identity "
                "and transport keys' signatures"
            )
        for key in signers.values():
            signed.verify_by(labels.KEY_UPDATE, key)
        return cls(signed, authority, identity, transport, ka_key, created, replaced)


def make_key_update(
    *,
    genesis: Genesis,
    authority: AuthorityId,
    current: SigningKey,
    identity: SigningKey,
    transport: SigningKey,
    ka_key: KemPublicKey,
    created: int,
) -> SignedObject:
    """Build a key-update request for ``authority``'s new ``identity``, ``transport`` and
    ``ka_key`` (pass a current key to keep it), signed by its ``current`` identity key
    and the new signing keys.  Verify it with :meth:`KeyUpdateRequest.decode`."""
    payload = {
        "type": "key-update",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "authority": str(authority),
        "identity_key": canonical.b64e(bytes(identity.verify_key)),
        "transport_key": canonical.b64e(bytes(transport.verify_key)),
        "ka_key": canonical.b64e(bytes(ka_key)),
        "created": created,
    }
    return sign_object(payload, labels.KEY_UPDATE, [current, identity, transport])


def certificate_for(
    request: KeyUpdateRequest, current: Certificate, *, serial: str, not_before: int
) -> Certificate:
    """The certificate the admins issue for a key update: ``current`` with the request's
    keys, a new ``serial`` and validity from ``not_before`` to the same end, naming the
    request's digest in ``application`` (PROTOCOL.md §6.3, §6.8)."""
    return Certificate(
        current.authority, serial, current.name, current.kinds, current.languages,
        current.endpoint, request.identity_key, request.transport_key, bytes(request.ka_key),
        not_before, current.not_after, request.digest,
    )  # fmt: skip


def check_key_update_draft(
    request: KeyUpdateRequest, draft: bytes, directory: DirectoryState, *, now: int
) -> MembershipAction:
    """Refuse a draft ``update-keys`` unless it certifies exactly what ``request`` asks for.

    The hub proposes the action an admin signs; an admin signs only what it recomputes
    from the request and the directory it verified itself (R1, R4).  ``draft`` (the action
    payload) must be an ``update-keys`` of the request's authority on this network, naming
    the member's latest action in ``prev``, without a reason, whose certificate equals
    :func:`certificate_for` the member's current certificate (with the draft's serial and
    start), byte for byte as :func:`~protocol.membership.make_action` builds it, with sane
    times (:func:`~protocol.membership.check_draft_times`).  Returns the decoded action;
    raises :class:`~protocol.errors.MembershipError` (or a decoding error) naming what differs.
    """
    action = MembershipAction.from_signed(SignedObject(draft, ()), directory.genesis)
    cert = action.certificate
    member = directory.member(request.authority)
    if (
        action.action is not Action.UPDATE_KEYS
        or action.authority != request.authority
        or action.reason is not None
        or cert is None
    ):
        raise MembershipError(f"the draft is not a plain key update of {request.authority}")
    if action.prev != member.last_action:
        raise MembershipError(f"the draft does not follow the latest action on {member.authority}")
    expected = certificate_for(
        request, member.certificate, serial=cert.serial, not_before=cert.not_before
    )
    if cert != expected:
        raise MembershipError("the draft certificate does not match the key update")
    rebuilt = make_action(
        genesis=directory.genesis,
        action=Action.UPDATE_KEYS,
        authority=request.authority,
        prev=member.last_action,
        issued=action.issued,
        certificate=expected,
    )
    if rebuilt.signed.payload != draft:  # pragma: no cover - defence in depth (strict decoding)
        raise MembershipError("the draft key update carries more than the request asks for")
    check_draft_times(action, now=now, what="key update")
    return action
