"""Membership: applications, certificates, quorum-signed actions, log entries
and checkpoints (R1, R2, R4; docs/PROTOCOL.md §6).

* An **application** is a signed object made by the applicant and signed by
  both of its Ed25519 keys (identity and transport): proof of possession of
  each signing key.  Possession of the key-agreement (KEM) key cannot be
  shown by a signature; it is shown by answering a KEM challenge
  (:func:`kem_pop_challenge` / :func:`kem_pop_answer`).
* A **membership action** (admit, update-keys, suspend, reinstate, revoke) is
  a signed object that needs ``k`` distinct admin signatures.  An admit or
  update-keys action carries the member's **certificate**; a certificate is
  valid only inside such an action.  Each action names the digest of the
  previous action on the same authority (``prev``), so an old action can
  never be replayed into the log.
* A **log entry** is built by the hub: ``seq``, the hash of the previous entry
  and the admin-signed action.  Entries form a hash chain from the genesis.
* A **checkpoint** is the hub's signature over ``(seq, head, time)``.
* The **authority fingerprint** (:func:`authority_fingerprint`,
  :meth:`Application.fingerprint`, :meth:`Certificate.fingerprint`) covers an
  authority id and all three of its certified keys; it is the one value that
  the applicant and the admins compare out of band before an admission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Final

from protocol import canonical, crypto, labels
from protocol.canonical import JsonValue, ObjectReader
from protocol.errors import (
    BadSignature,
    ExpiredError,
    MalformedError,
    MembershipError,
    NotYetValid,
    SizeLimitExceeded,
    UnsupportedVersion,
    UsageError,
)
from protocol.genesis import Genesis, check_url
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey
from protocol.signed import SignedObject, sign_object

__all__ = [
    "AUTHORITY_KINDS",
    "MAX_ACTION_SIZE",
    "MAX_APPLICATION_SIZE",
    "MAX_CERT_LIFETIME",
    "MAX_DRAFT_AGE",
    "MAX_DRAFT_AHEAD",
    "MAX_ENTRY_SIZE",
    "Action",
    "Application",
    "Certificate",
    "Checkpoint",
    "LogEntry",
    "MembershipAction",
    "authority_fingerprint",
    "check_admission_draft",
    "check_draft_times",
    "entry_hash",
    "kem_pop_answer",
    "kem_pop_challenge",
    "make_action",
    "make_application",
    "make_checkpoint",
    "make_entry",
]

#: Authority kinds, after the UNCAC directory of competent authorities.
AUTHORITY_KINDS: Final = frozenset(
    {
        "anti-corruption",  # specialised anti-corruption law-enforcement authority (art. 36)
        "mla-central",  # central authority for mutual legal assistance (art. 46(13))
        "asset-recovery",  # asset-recovery focal point
        "fiu",  # financial intelligence unit (art. 58)
        "prevention",  # prevention authority (art. 6)
        "extradition",  # extradition authority
        "civil-administrative",  # civil and administrative proceedings focal point
    }
)

MAX_APPLICATION_SIZE: Final = 16 * 1024
MAX_ACTION_SIZE: Final = 16 * 1024
MAX_ENTRY_SIZE: Final = 24 * 1024
_DAY: Final = 86_400
#: A draft admission an admin signs starts at most this long before now (admins review
#: for days)...
MAX_DRAFT_AGE: Final = 30 * _DAY
#: ...and at most this long after now (clock differences).
MAX_DRAFT_AHEAD: Final = _DAY
#: The longest certificate an admin signs (five years, leap days included).
MAX_CERT_LIFETIME: Final = 1827 * _DAY
_LANG_RE: Final = re.compile(r"[a-z]{2}\Z", re.ASCII)
_SERIAL_RE: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)
_ED = crypto.ED25519_PUBLIC_LEN


class Action(Enum):
    """The five membership actions (docs/PROTOCOL.md §6.3)."""

    ADMIT = "admit"
    UPDATE_KEYS = "update-keys"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    REVOKE = "revoke"


def _network(reader: ObjectReader, genesis: Genesis, what: str) -> None:
    if reader.blob("network", length=32) != genesis.digest:
        raise MalformedError(f"{what}: made for another network")


def _kinds(reader: ObjectReader, what: str) -> tuple[str, ...]:
    kinds = reader.strings("kinds", min_items=1, max_items=len(AUTHORITY_KINDS), max_len=32)
    if any(k not in AUTHORITY_KINDS for k in kinds) or kinds != sorted(kinds):
        raise MalformedError(f"{what}.kinds: sorted, from {sorted(AUTHORITY_KINDS)}")
    return tuple(kinds)


def _languages(reader: ObjectReader, what: str) -> tuple[str, ...]:
    langs = reader.strings("languages", min_items=1, max_items=16, max_len=2)
    if any(not _LANG_RE.match(x) for x in langs) or langs != sorted(langs):
        raise MalformedError(f"{what}.languages: sorted ISO 639-1 codes")
    return tuple(langs)


def _check_keys_distinct(identity: bytes, transport: bytes, what: str) -> None:
    if identity == transport:
        raise MalformedError(f"{what}: identity and transport keys must differ (R3)")


# --- authority fingerprint ------------------------------------------------------------


def _u16_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _authority_fingerprint(
    authority: AuthorityId, identity: bytes, transport: bytes, ka: bytes
) -> str:
    data = b"".join(
        _u16_prefixed(part) for part in (str(authority).encode("utf-8"), identity, transport, ka)
    )
    return crypto.fingerprint_digits(labels.AUTHORITY_FINGERPRINT, data)


def authority_fingerprint(
    *, authority: AuthorityId, identity: VerifyKey, transport: VerifyKey, ka: KemPublicKey
) -> str:
    """The authority fingerprint (docs/PROTOCOL.md §3.4): twelve groups of five digits.

    It covers the authority id and every key certified for it, in the fixed
    order identity, transport, key-agreement, under the label
    ``globe/v1/authority-fingerprint``::

        data = u16_be(len(authority)) || authority
               || for key in (identity, transport, ka): u16_be(len(key)) || key

    An applicant's node prints it (``globe-node init`` / ``apply``), the
    admins' tool prints it for the application (``globe-admin show``), and
    the two are compared out of band before the admission is signed.  Binding
    the authority id means a value read out for one authority never matches
    another's, even with the same keys.  Prefer :meth:`Application.fingerprint`
    and :meth:`Certificate.fingerprint`, which cannot mix up the keys.
    """
    return _authority_fingerprint(authority, bytes(identity), bytes(transport), bytes(ka))


# --- application ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Application:
    """A verified membership application."""

    signed: SignedObject
    authority: AuthorityId
    name: str
    kinds: tuple[str, ...]
    languages: tuple[str, ...]
    contact: str
    legal_basis: str
    endpoint: str | None
    identity_key: VerifyKey
    transport_key: VerifyKey
    ka_key: KemPublicKey
    created: int

    @property
    def digest(self) -> bytes:
        """Names this application (bound into the certificate and the KEM challenge)."""
        return self.signed.digest()

    def fingerprint(self) -> str:
        """The authority fingerprint of the applicant (:func:`authority_fingerprint`)."""
        return authority_fingerprint(
            authority=self.authority,
            identity=self.identity_key,
            transport=self.transport_key,
            ka=self.ka_key,
        )

    @classmethod
    def decode(cls, data: bytes, genesis: Genesis) -> Application:
        """Strictly decode and verify; checks both proof-of-possession signatures."""
        signed = SignedObject.decode(data, max_size=MAX_APPLICATION_SIZE, what="application")
        return cls.from_signed(signed, genesis)

    @classmethod
    def from_signed(cls, signed: SignedObject, genesis: Genesis) -> Application:
        """Verify an application container."""
        what = "application"
        r = ObjectReader(signed.payload_json(what=what), what)
        if r.string("type", max_len=32) != "application":
            raise MalformedError("application: type must be 'application'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("application: only version 1 is supported")
        _network(r, genesis, what)
        authority = AuthorityId.parse(r.string("authority", max_len=19))
        name = r.text("name", max_len=200)
        if r.string("country", max_len=2) != authority.country:
            raise MalformedError("application.country: must match the authority id")
        kinds = _kinds(r, what)
        languages = _languages(r, what)
        contact = r.text("contact", max_len=1000, multiline=True)
        legal_basis = r.text("legal_basis", max_len=2000, multiline=True)
        endpoint = (
            check_url(r.string("endpoint", max_len=2048), what) if r.has("endpoint") else None
        )
        identity = VerifyKey(r.blob("identity_key", length=_ED))
        transport = VerifyKey(r.blob("transport_key", length=_ED))
        ka_key = KemPublicKey(r.blob("ka_key", length=crypto.KEM_PUBLIC_LEN))
        created = r.integer("created")
        r.done()
        _check_keys_distinct(bytes(identity), bytes(transport), what)
        if len(signed.signatures) != 2:
            raise BadSignature("application: needs exactly the identity and transport signatures")
        signed.verify_by(labels.APPLICATION, identity)
        signed.verify_by(labels.APPLICATION, transport)
        return cls(
            signed, authority, name, kinds, languages, contact, legal_basis, endpoint,
            identity, transport, ka_key, created,
        )  # fmt: skip


def make_application(
    *,
    genesis: Genesis,
    authority: AuthorityId,
    name: str,
    kinds: list[str],
    languages: list[str],
    contact: str,
    legal_basis: str,
    endpoint: str | None,
    identity: SigningKey,
    transport: SigningKey,
    ka_key: KemPublicKey,
    created: int,
) -> Application:
    """Build an application signed by both of the applicant's signing keys."""
    payload: dict[str, object] = {
        "type": "application",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "authority": str(authority),
        "name": name,
        "country": authority.country,
        "kinds": sorted(set(kinds)),
        "languages": sorted(set(languages)),
        "contact": contact,
        "legal_basis": legal_basis,
        "identity_key": canonical.b64e(bytes(identity.verify_key)),
        "transport_key": canonical.b64e(bytes(transport.verify_key)),
        "ka_key": canonical.b64e(bytes(ka_key)),
        "created": created,
    }
    if endpoint is not None:
        payload["endpoint"] = endpoint
    signed = sign_object(payload, labels.APPLICATION, [identity, transport])
    return Application.from_signed(signed, genesis)


def kem_pop_challenge(
    ka_key: KemPublicKey, application_digest: bytes, rng: crypto.Rng = crypto.system_rng
) -> tuple[bytes, bytes]:
    """``(challenge, expected)``: a random secret sealed to the applicant's KEM key.

    The HPKE ``info`` binds the application digest, so a challenge for one
    application cannot be answered with another's.
    """
    secret = rng(32)
    sealed = ka_key.seal(secret, crypto.labelled(labels.KEM_POP, application_digest))
    return sealed, secret


def kem_pop_answer(ka_private: KemPrivateKey, application_digest: bytes, challenge: bytes) -> bytes:
    """Open a KEM challenge: proof of possession of the key-agreement key."""
    return ka_private.open(challenge, crypto.labelled(labels.KEM_POP, application_digest))


# --- certificates and actions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Certificate:
    """What the admins certify about a member (inside an admit or update-keys action)."""

    authority: AuthorityId
    serial: str
    name: str
    kinds: tuple[str, ...]
    languages: tuple[str, ...]
    endpoint: str | None
    identity_key: VerifyKey
    transport_key: VerifyKey
    ka_key_raw: bytes = field(repr=False)
    not_before: int
    not_after: int
    application: bytes | None

    def ka_key(self) -> KemPublicKey:
        """The key-agreement key, parsed and validated."""
        return KemPublicKey(self.ka_key_raw)

    def fingerprint(self) -> str:
        """The authority fingerprint of the certified member (:func:`authority_fingerprint`).

        Computed over the certified key bytes as they are, so the key-agreement
        key need not be parsed; equal to the fingerprint of the application the
        certificate was issued from.
        """
        return _authority_fingerprint(
            self.authority, bytes(self.identity_key), bytes(self.transport_key), self.ka_key_raw
        )

    def to_json(self) -> dict[str, object]:
        """The certificate object as it appears in an action."""
        out: dict[str, object] = {
            "serial": self.serial,
            "name": self.name,
            "country": self.authority.country,
            "kinds": list(self.kinds),
            "languages": list(self.languages),
            "identity_key": canonical.b64e(bytes(self.identity_key)),
            "transport_key": canonical.b64e(bytes(self.transport_key)),
            "ka_key": canonical.b64e(self.ka_key_raw),
            "not_before": self.not_before,
            "not_after": self.not_after,
        }
        if self.endpoint is not None:
            out["endpoint"] = self.endpoint
        if self.application is not None:
            out["application"] = canonical.b64e(self.application)
        return out

    @classmethod
    def from_json(cls, obj: JsonValue, authority: AuthorityId, what: str) -> Certificate:
        """Strictly read a certificate object."""
        r = ObjectReader(obj, what)
        serial = r.string("serial", max_len=32)
        if not _SERIAL_RE.match(serial):
            raise MalformedError(f"{what}.serial: 32 lower-case hex digits")
        name = r.text("name", max_len=200)
        if r.string("country", max_len=2) != authority.country:
            raise MalformedError(f"{what}.country: must match the authority id")
        kinds = _kinds(r, what)
        languages = _languages(r, what)
        endpoint = (
            check_url(r.string("endpoint", max_len=2048), what) if r.has("endpoint") else None
        )
        identity = VerifyKey.from_certified(r.blob("identity_key", length=_ED))
        transport = VerifyKey.from_certified(r.blob("transport_key", length=_ED))
        ka_raw = r.blob("ka_key", length=crypto.KEM_PUBLIC_LEN)
        not_before = r.integer("not_before")
        not_after = r.integer("not_after")
        application = r.blob("application", length=32) if r.has("application") else None
        r.done()
        if not_after <= not_before:
            raise MalformedError(f"{what}: not_after must be later than not_before")
        _check_keys_distinct(bytes(identity), bytes(transport), what)
        return cls(
            authority, serial, name, kinds, languages, endpoint, identity, transport,
            ka_raw, not_before, not_after, application,
        )  # fmt: skip

    @classmethod
    def from_application(
        cls, app: Application, *, serial: str, not_before: int, not_after: int
    ) -> Certificate:
        """The certificate the admins issue for an application."""
        if not _SERIAL_RE.match(serial):
            raise UsageError("serial must be 32 lower-case hex digits")
        return cls(
            app.authority, serial, app.name, app.kinds, app.languages, app.endpoint,
            app.identity_key, app.transport_key, bytes(app.ka_key), not_before, not_after,
            app.digest,
        )  # fmt: skip

    def check_valid_at(self, now: int) -> None:
        """Refuse use outside the validity window."""
        if now < self.not_before:
            raise NotYetValid(f"certificate of {self.authority} is not valid yet")
        if now >= self.not_after:
            raise ExpiredError(f"certificate of {self.authority} has expired")


@dataclass(frozen=True, slots=True)
class MembershipAction:
    """A decoded (not yet quorum-checked) membership action."""

    signed: SignedObject
    action: Action
    authority: AuthorityId
    prev: bytes | None
    issued: int
    reason: str | None
    certificate: Certificate | None

    @property
    def digest(self) -> bytes:
        """Names this action; the next action on the authority cites it as ``prev``."""
        return self.signed.digest()

    @classmethod
    def from_signed(cls, signed: SignedObject, genesis: Genesis) -> MembershipAction:
        """Strictly decode an action's payload (signatures are checked by the caller)."""
        what = "action"
        if len(signed.payload) > MAX_ACTION_SIZE:
            raise SizeLimitExceeded(f"action: payload exceeds {MAX_ACTION_SIZE} bytes")
        r = ObjectReader(signed.payload_json(what=what), what)
        if r.string("type", max_len=32) != "membership-action":
            raise MalformedError("action: type must be 'membership-action'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("action: only version 1 is supported")
        _network(r, genesis, what)
        try:
            action = Action(r.string("action", max_len=16))
        except ValueError:
            raise MalformedError("action.action: unknown action") from None
        authority = AuthorityId.parse(r.string("authority", max_len=19))
        prev = r.blob("prev", length=32) if r.has("prev") else None
        issued = r.integer("issued")
        reason = r.text("reason", max_len=2000, multiline=True) if r.has("reason") else None
        cert = (
            Certificate.from_json(r.raw("certificate"), authority, "action.certificate")
            if r.has("certificate")
            else None
        )
        r.done()
        carries_cert = action in (Action.ADMIT, Action.UPDATE_KEYS)
        if carries_cert != (cert is not None):
            raise MalformedError("action: a certificate goes with admit and update-keys only")
        if (action is Action.ADMIT) != (prev is None):
            raise MalformedError("action: prev is required except on admit")
        if not carries_cert and reason is None:
            raise MalformedError("action: suspend, reinstate and revoke need a reason")
        if action is Action.ADMIT and cert is not None and cert.application is None:
            raise MalformedError("action: an admit names the application it approves")
        return cls(signed, action, authority, prev, issued, reason, cert)


def make_action(
    *,
    genesis: Genesis,
    action: Action,
    authority: AuthorityId,
    prev: bytes | None,
    issued: int,
    reason: str | None = None,
    certificate: Certificate | None = None,
    signers: list[SigningKey] | None = None,
) -> MembershipAction:
    """Build an action, optionally signed by admin ``signers`` (more can sign later)."""
    payload: dict[str, object] = {
        "type": "membership-action",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "action": action.value,
        "authority": str(authority),
        "issued": issued,
    }
    if prev is not None:
        payload["prev"] = canonical.b64e(prev)
    if reason is not None:
        payload["reason"] = reason
    if certificate is not None:
        if certificate.authority != authority:
            raise UsageError("certificate is for another authority")
        payload["certificate"] = certificate.to_json()
    signed = sign_object(payload, labels.MEMBERSHIP_ACTION, signers or [])
    return MembershipAction.from_signed(signed, genesis)


def check_admission_draft(
    application: Application, draft: bytes, genesis: Genesis, *, now: int
) -> MembershipAction:
    """Refuse a draft admission unless it certifies exactly what ``application`` asks for.

    The hub proposes the admission an admin signs (docs/PROTOCOL.md §6.3); an admin signs
    only what it recomputes from the application it verified itself (R1, R4).  ``draft``
    (the action payload) must be an admit of the application's authority on this
    ``genesis``'s network, without ``prev`` or reason, whose certificate equals
    :meth:`Certificate.from_application` with the draft's serial and validity (every other
    field: name, kinds, languages, endpoint, the three keys, the application digest), whose
    payload is byte for byte what :func:`make_action` builds from it, and whose validity is
    sane: it starts between :data:`MAX_DRAFT_AGE` before and :data:`MAX_DRAFT_AHEAD` after
    ``now``, is issued within the same window, ends after ``now`` and lasts at most
    :data:`MAX_CERT_LIFETIME`.  Returns the decoded action; raises
    :class:`~protocol.errors.MembershipError` (or a decoding error) naming what differs.
    """
    action = MembershipAction.from_signed(SignedObject(draft, ()), genesis)
    cert = action.certificate
    if (
        action.action is not Action.ADMIT
        or action.authority != application.authority
        or action.prev is not None
        or action.reason is not None
        or cert is None
    ):
        raise MembershipError(f"the draft is not a plain admission of {application.authority}")
    expected = Certificate.from_application(
        application, serial=cert.serial, not_before=cert.not_before, not_after=cert.not_after
    )
    if cert != expected:
        raise MembershipError("the draft certificate does not match the application")
    rebuilt = make_action(
        genesis=genesis,
        action=Action.ADMIT,
        authority=application.authority,
        prev=None,
        issued=action.issued,
        certificate=expected,
    )
    if rebuilt.signed.payload != draft:  # pragma: no cover - defence in depth (strict decoding)
        raise MembershipError("the draft admission carries more than the application asks for")
    check_draft_times(action, now=now, what="admission")
    return action


def check_draft_times(action: MembershipAction, *, now: int, what: str) -> None:
    """Refuse a draft ``action`` (an admit or an update-keys) whose times are not sane.

    Its certificate starts between :data:`MAX_DRAFT_AGE` before and :data:`MAX_DRAFT_AHEAD`
    after ``now``, the action is issued within the same window, and the certificate ends
    after ``now`` and lasts at most :data:`MAX_CERT_LIFETIME`.  ``what`` names the draft
    (``admission``, ``key update``) in the :class:`~protocol.errors.MembershipError`.
    """
    cert = action.certificate
    if cert is None:
        raise UsageError("only an admit or an update-keys carries a certificate")
    start, end, issued = (
        datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for t in (cert.not_before, cert.not_after, action.issued)
    )
    if not now - MAX_DRAFT_AGE <= cert.not_before <= now + MAX_DRAFT_AHEAD:
        raise MembershipError(
            f"the draft certificate starts {start}: not within "
            f"{MAX_DRAFT_AGE // _DAY} days before and one day after now"
        )
    if not now - MAX_DRAFT_AGE <= action.issued <= now + MAX_DRAFT_AHEAD:
        raise MembershipError(f"the draft {what} is dated {issued}")
    if cert.not_after <= now or cert.not_after - cert.not_before > MAX_CERT_LIFETIME:
        raise MembershipError(
            f"the draft certificate's validity ({start} to {end}) is not a current "
            "validity of at most five years"
        )


# --- log entries and checkpoints ----------------------------------------------------------


def entry_hash(entry_bytes: bytes) -> bytes:
    """``SHA-256("globe/v1/log-entry" || 0x00 || entry bytes)``: the chain link."""
    return crypto.sha256(crypto.labelled(labels.LOG_ENTRY, entry_bytes))


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A decoded log entry (its chain position is checked by the directory)."""

    raw: bytes
    seq: int
    prev: bytes
    time: int
    action: MembershipAction

    @property
    def hash(self) -> bytes:
        """The entry's chain hash."""
        return entry_hash(self.raw)

    @classmethod
    def decode(cls, data: bytes, genesis: Genesis) -> LogEntry:
        """Strictly decode an entry's exact bytes."""
        what = "log entry"
        r = ObjectReader(
            canonical.decode(data, max_size=MAX_ENTRY_SIZE, what=what, check_values=False), what
        )
        if r.string("type", max_len=32) != "log-entry":
            raise MalformedError("log entry: type must be 'log-entry'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("log entry: only version 1 is supported")
        _network(r, genesis, what)
        seq = r.integer("seq", lo=1)
        prev = r.blob("prev", length=32)
        time = r.integer("time")
        signed = SignedObject.from_json(r.raw("action"), what="log entry.action")
        r.done()
        return cls(data, seq, prev, time, MembershipAction.from_signed(signed, genesis))


def make_entry(
    *, genesis: Genesis, seq: int, prev: bytes, time: int, action: SignedObject
) -> bytes:
    """The exact bytes of a log entry (built by the hub)."""
    return canonical.encode(
        {
            "type": "log-entry",
            "v": 1,
            "network": canonical.b64e(genesis.digest),
            "seq": seq,
            "prev": canonical.b64e(prev),
            "time": time,
            "action": action.to_json(),
        }
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A hub-signed statement of the log head: ``(seq, head, time)``."""

    signed: SignedObject
    seq: int
    head: bytes
    time: int

    @classmethod
    def decode(cls, data: bytes, genesis: Genesis) -> Checkpoint:
        """Strictly decode and verify against the pinned hub key."""
        signed = SignedObject.decode(data, max_size=4096, what="checkpoint")
        return cls.from_signed(signed, genesis)

    @classmethod
    def from_signed(cls, signed: SignedObject, genesis: Genesis) -> Checkpoint:
        """Verify a checkpoint container."""
        what = "checkpoint"
        r = ObjectReader(signed.payload_json(what=what), what)
        if r.string("type", max_len=32) != "checkpoint":
            raise MalformedError("checkpoint: type must be 'checkpoint'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("checkpoint: only version 1 is supported")
        _network(r, genesis, what)
        seq = r.integer("seq")
        head = r.blob("head", length=32)
        time = r.integer("time")
        r.done()
        if len(signed.signatures) != 1:
            raise BadSignature("checkpoint: must carry exactly the hub's signature")
        signed.verify_by(labels.CHECKPOINT, genesis.hub_key)
        return cls(signed, seq, head, time)


def make_checkpoint(
    *, genesis: Genesis, hub: SigningKey, seq: int, head: bytes, time: int
) -> Checkpoint:
    """Sign a checkpoint with the hub key."""
    payload = {
        "type": "checkpoint",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "seq": seq,
        "head": canonical.b64e(head),
        "time": time,
    }
    return Checkpoint.from_signed(sign_object(payload, labels.CHECKPOINT, [hub]), genesis)
