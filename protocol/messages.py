"""Message kinds: the content sealed inside an envelope (docs/PROTOCOL.md §8).

Content is one canonical JSON object.  Every message carries its kind,
subject, body, language, urgency and handling code (TLP 2.0 plus use
restrictions); threads are tied together by ``case`` and ``in_reply_to``.
Per-kind rules (:data:`KIND_RULES`) are checked on both encode and decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeVar

from protocol import canonical, crypto
from protocol.canonical import ObjectReader
from protocol.errors import (
    MalformedError,
    ProtocolError,
    UnsupportedVersion,
    UsageError,
    WorkflowError,
)
from protocol.ids import AuthorityId, MessageId

__all__ = [
    "CASE_RE",
    "LANGUAGE_RE",
    "MAX_ATTACHMENTS",
    "MAX_CONSENTS",
    "MEDIA_TYPE_RE",
    "STATUS_SENDER",
    "Attachment",
    "Consent",
    "ConsentDecision",
    "Forwarded",
    "Handling",
    "Kind",
    "MessageContent",
    "Party",
    "Restriction",
    "SignedContent",
    "StatusState",
    "StatusUpdate",
    "Tlp",
    "Urgency",
    "check_attachment_name",
    "check_media_type",
    "check_status_sender",
    "forward_requires_consent",
    "handling_at_least",
]

MAX_ATTACHMENTS: Final = 64
#: Consent decisions one forward may carry (§8.5).
MAX_CONSENTS: Final = 64
#: Same as protocol.envelope.MAX_HEADER_SIZE.
MAX_HEADER_SIZE: Final = 65_536
#: Same as protocol.envelope.MAX_CONTENT_SIZE (1 MiB bucket less framing).
MAX_CONTENT_SIZE: Final = (1 << 20) - 68
#: An attachment's media type: ``type/subtype``, lower case (§8.4).
MEDIA_TYPE_RE: Final = re.compile(
    r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\Z"
)
#: A case reference (§8.1).
CASE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}\Z", re.ASCII)
#: A language: the shape of an ISO 639-1 code (§8.1).
LANGUAGE_RE: Final = re.compile(r"[a-z]{2}\Z", re.ASCII)
_E = TypeVar("_E", bound=Enum)
_BAD_NAME_RE: Final = re.compile(r"[\x00-\x1f\x7f/\\]")


class Kind(Enum):
    """What a message is."""

    INFORMATION = "information"  # spontaneous information (UNCAC art. 46(4), 48, 56)
    REQUEST = "request"  # informal assistance request
    ANSWER = "answer"
    STATUS = "status"  # status update on a request
    CONSENT_REQUEST = "consent-request"  # ask the originator for onward use
    CONSENT_DECISION = "consent-decision"
    BULLETIN = "bulletin"  # from the secretariat


class Urgency(Enum):
    """Urgency class; the node derives the default deadline from it."""

    URGENT = "urgent"
    PRIORITY = "priority"
    ROUTINE = "routine"


class Tlp(Enum):
    """Traffic Light Protocol 2.0."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER+STRICT"
    RED = "RED"


class Restriction(Enum):
    """Use restrictions beyond TLP."""

    INTELLIGENCE_ONLY = "intelligence-only"  # not evidence without formal MLA
    NO_ONWARD = "no-onward-dissemination"  # not to third parties without consent


class StatusState(Enum):
    """What a status update reports about a request; each state has one sender (§8.2.1)."""

    ACKNOWLEDGED = "acknowledged"  # the recipient, with the expected answer date
    IN_PROGRESS = "in-progress"  # the recipient
    DECLINED = "declined"  # the recipient, with a reason
    ANSWERED = "answered"  # the recipient
    CLOSED = "closed"  # the requester: no more is needed
    WITHDRAWN = "withdrawn"  # the requester, with a reason: the request no longer stands
    EXTENDED = "extended"  # the requester, with a new deadline later than the request's


class Party(Enum):
    """Who a party is to a request: its sender (requester) or one of its recipients."""

    REQUESTER = "requester"
    RECIPIENT = "recipient"


#: Which party of a request may report each state (§8.2.1).
STATUS_SENDER: Final[dict[StatusState, Party]] = {
    StatusState.ACKNOWLEDGED: Party.RECIPIENT,
    StatusState.IN_PROGRESS: Party.RECIPIENT,
    StatusState.DECLINED: Party.RECIPIENT,
    StatusState.ANSWERED: Party.RECIPIENT,
    StatusState.CLOSED: Party.REQUESTER,
    StatusState.WITHDRAWN: Party.REQUESTER,
    StatusState.EXTENDED: Party.REQUESTER,
}
#: The states that may carry an expected answer date (§8.2).
_EXPECTING: Final = frozenset({StatusState.ACKNOWLEDGED, StatusState.IN_PROGRESS})


class ConsentDecision(Enum):
    """The originator's answer to a consent request."""

    GRANTED = "granted"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Handling:
    """TLP level and use restrictions."""

    tlp: Tlp
    restrictions: frozenset[Restriction] = frozenset()

    def to_json(self) -> dict[str, object]:
        """Canonical object form."""
        return {"tlp": self.tlp.value, "restrictions": sorted(r.value for r in self.restrictions)}


def forward_requires_consent(handling: Handling) -> bool:
    """Whether passing the material to another authority needs the originator's consent.

    TLP:CLEAR and TLP:GREEN may circulate within the network; AMBER,
    AMBER+STRICT and RED are limited to the named recipients' organisations,
    and ``no-onward-dissemination`` forbids onward use outright.
    """
    return handling.tlp not in (Tlp.CLEAR, Tlp.GREEN) or Restriction.NO_ONWARD in (
        handling.restrictions
    )


_TLP_ORDER: Final = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)


def handling_at_least(handling: Handling, floor: Handling) -> bool:
    """Whether ``handling`` is at least as restrictive as ``floor`` (§8.5): its TLP level
    is not lower and it keeps every restriction of ``floor``."""
    return _TLP_ORDER.index(handling.tlp) >= _TLP_ORDER.index(floor.tlp) and (
        handling.restrictions >= floor.restrictions
    )


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment manifest entry; the encrypted blob travels separately."""

    name: str
    size: int
    media_type: str
    sha256: bytes  # of the plaintext file
    key: bytes = field(repr=False)  # 32-byte per-attachment key
    blob: str  # blob id on the hub, 32 lower-case hex digits

    def to_json(self) -> dict[str, object]:
        """Canonical object form."""
        return {
            "name": self.name,
            "size": self.size,
            "media_type": self.media_type,
            "sha256": canonical.b64e(self.sha256),
            "key": canonical.b64e(self.key),
            "blob": self.blob,
        }


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A request's new workflow state (an extension carries the new ``deadline``)."""

    state: StatusState
    expected: int | None = None
    reason: str | None = None
    deadline: int | None = None

    def to_json(self) -> dict[str, object]:
        """Canonical object form."""
        out: dict[str, object] = {"state": self.state.value}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.deadline is not None:
            out["deadline"] = self.deadline
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent request, or the decision on one."""

    message: MessageId  # the originator's message the consent is about
    to: tuple[AuthorityId, ...]  # the authorities it would go to
    purpose: str | None = None
    decision: ConsentDecision | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        """Canonical object form."""
        out: dict[str, object] = {
            "message": str(self.message),
            "to": sorted(str(a) for a in self.to),
        }
        if self.purpose is not None:
            out["purpose"] = self.purpose
        if self.decision is not None:
            out["decision"] = self.decision.value
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class SignedContent:
    """A message's content with the sender's inner signature and the exact envelope header
    that signature binds (§7.5): proof of origin that anyone holding the directory can check
    (:func:`protocol.origin.verify_signed_content`)."""

    header: bytes
    content: bytes
    signature: bytes = field(repr=False)

    def to_json(self) -> dict[str, object]:
        """Canonical object form."""
        return {
            "content": canonical.b64e(self.content),
            "header": canonical.b64e(self.header),
            "signature": canonical.b64e(self.signature),
        }

    @classmethod
    def read(cls, r: ObjectReader, what: str) -> SignedContent:
        """Read from an object (§8.5); the caller calls nothing else on ``r``."""
        content = r.blob("content", max_len=MAX_CONTENT_SIZE)
        header = r.blob("header", max_len=MAX_HEADER_SIZE)
        signature = r.blob("signature", length=64)
        r.done()
        if not content or not header:
            raise MalformedError(f"{what}: header and content are not empty")
        return cls(header, content, signature)


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What a forward carries (§8.5): the originator's signed message and the originator's
    signed consent decisions that entitle holders to pass it on."""

    origin: SignedContent
    consents: tuple[SignedContent, ...] = ()

    def to_json(self) -> dict[str, object]:
        """Canonical object form (``consents`` omitted when empty)."""
        out: dict[str, object] = {"origin": self.origin.to_json()}
        if self.consents:
            out["consents"] = [c.to_json() for c in self.consents]
        return out


@dataclass(frozen=True, slots=True)
class MessageContent:
    """The plaintext of one message."""

    kind: Kind
    subject: str
    body: str
    language: str
    urgency: Urgency
    handling: Handling
    case: str | None = None
    in_reply_to: MessageId | None = None
    deadline: int | None = None
    attachments: tuple[Attachment, ...] = ()
    status: StatusUpdate | None = None
    consent: Consent | None = None
    forwarded: Forwarded | None = None

    def encode(self) -> bytes:
        """Canonical bytes; :class:`UsageError` if a field or the kind's rules are broken."""
        try:
            return self._encode()
        except ProtocolError as exc:  # the decoder's verdict on our own output
            raise UsageError(str(exc)) from exc

    def _encode(self) -> bytes:
        _check_rules(self)
        out: dict[str, object] = {
            "type": "message",
            "v": 1,
            "kind": self.kind.value,
            "subject": self.subject,
            "body": self.body,
            "language": self.language,
            "urgency": self.urgency.value,
            "handling": self.handling.to_json(),
        }
        if self.case is not None:
            out["case"] = self.case
        if self.in_reply_to is not None:
            out["in_reply_to"] = str(self.in_reply_to)
        if self.deadline is not None:
            out["deadline"] = self.deadline
        if self.attachments:
            out["attachments"] = [a.to_json() for a in self.attachments]
        if self.status is not None:
            out["status"] = self.status.to_json()
        if self.consent is not None:
            out["consent"] = self.consent.to_json()
        if self.forwarded is not None:
            out["forwarded"] = self.forwarded.to_json()
        data = canonical.encode(out)
        MessageContent.decode(data)  # the encoder and decoder must agree
        return data

    @classmethod
    def decode(cls, data: bytes) -> MessageContent:  # noqa: PLR0915 - one field at a time
        """Strictly decode message content."""
        what = "message"
        r = ObjectReader(
            canonical.decode(data, max_size=MAX_CONTENT_SIZE, what=what, check_values=False), what
        )
        if r.string("type", max_len=32) != "message":
            raise MalformedError("message: type must be 'message'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("message: only version 1 is supported")
        kind = _enum(Kind, r.string("kind", max_len=32), "message.kind")
        subject = r.text("subject", max_len=300)
        body = r.string("body", max_len=MAX_CONTENT_SIZE)
        language = r.string("language", max_len=2)
        if not LANGUAGE_RE.match(language):
            raise MalformedError("message.language: an ISO 639-1 code")
        urgency = _enum(Urgency, r.string("urgency", max_len=16), "message.urgency")
        hr = r.object("handling")
        tlp = _enum(Tlp, hr.string("tlp", max_len=16), "message.handling.tlp")
        restr = hr.strings("restrictions", max_items=len(Restriction), max_len=32)
        if restr != sorted(restr):
            raise MalformedError("message.handling.restrictions: must be sorted")
        hr.done()
        handling = Handling(
            tlp, frozenset(_enum(Restriction, x, "message.handling") for x in restr)
        )
        case = r.string("case", max_len=64) if r.has("case") else None
        if case is not None and not CASE_RE.match(case):
            raise MalformedError("message.case: 1-64 of A-Z a-z 0-9 . _ / -")
        reply = (
            MessageId.parse(r.string("in_reply_to", max_len=32)) if r.has("in_reply_to") else None
        )
        deadline = r.integer("deadline") if r.has("deadline") else None
        attachments: list[Attachment] = []
        if r.has("attachments"):
            for a in r.objects("attachments", min_items=1, max_items=MAX_ATTACHMENTS):
                name = check_attachment_name(a.string("name", min_len=1, max_len=255))
                size = a.integer("size")
                media = check_media_type(a.string("media_type", max_len=129))
                digest = a.blob("sha256", length=32)
                key = a.blob("key", length=crypto.AEAD_KEY_LEN)
                blob = a.string("blob", max_len=32)
                MessageId.parse(blob)  # same shape: 32 lower-case hex digits
                a.done()
                attachments.append(Attachment(name, size, media, digest, key, blob))
        status = None
        if r.has("status"):
            s = r.object("status")
            state = _enum(StatusState, s.string("state", max_len=16), "message.status.state")
            expected = s.integer("expected") if s.has("expected") else None
            new_deadline = s.integer("deadline") if s.has("deadline") else None
            reason = s.text("reason", max_len=2000, multiline=True) if s.has("reason") else None
            s.done()
            status = StatusUpdate(state, expected, reason, new_deadline)
        consent = None
        if r.has("consent"):
            c = r.object("consent")
            cmsg = MessageId.parse(c.string("message", max_len=32))
            to = c.strings("to", min_items=1, max_items=64, max_len=19)
            if to != sorted(to):
                raise MalformedError("message.consent.to: must be sorted")
            purpose = c.text("purpose", max_len=2000, multiline=True) if c.has("purpose") else None
            decision = (
                _enum(ConsentDecision, c.string("decision", max_len=16), "message.consent")
                if c.has("decision")
                else None
            )
            creason = c.text("reason", max_len=2000, multiline=True) if c.has("reason") else None
            c.done()
            consent = Consent(
                cmsg, tuple(AuthorityId.parse(x) for x in to), purpose, decision, creason
            )
        forwarded = None
        if r.has("forwarded"):
            f = r.object("forwarded")
            consents = (
                tuple(
                    SignedContent.read(c, f"message.forwarded.consents[{i}]")
                    for i, c in enumerate(
                        f.objects("consents", min_items=1, max_items=MAX_CONSENTS)
                    )
                )
                if f.has("consents")
                else ()
            )
            origin = SignedContent.read(f.object("origin"), "message.forwarded.origin")
            f.done()
            forwarded = Forwarded(origin, consents)
        r.done()
        content = cls(
            kind, subject, body, language, urgency, handling, case, reply, deadline,
            tuple(attachments), status, consent, forwarded,
        )  # fmt: skip
        _check_rules(content)
        return content


def check_attachment_name(name: str) -> str:
    """``name`` if it may name an attachment (§8.4), else :class:`MalformedError`."""
    if (
        not 1 <= len(name) <= 255
        or _BAD_NAME_RE.search(name)
        or canonical.has_hidden_chars(name)
        or name in (".", "..")
    ):
        raise MalformedError("attachment name: 1-255 characters, no path separators or controls")
    return name


def check_media_type(media_type: str) -> str:
    """``media_type`` if it is a lower-case ``type/subtype`` (§8.4), else MalformedError."""
    if not MEDIA_TYPE_RE.match(media_type):
        raise MalformedError("attachment media_type: type/subtype, lower case")
    return media_type


def _enum(cls: type[_E], value: str, what: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        raise MalformedError(f"{what}: unknown value {value!r}") from None


def _check_rules(m: MessageContent) -> None:
    """Per-kind rules (docs/PROTOCOL.md §8.2)."""
    k = m.kind
    if k in (Kind.ANSWER, Kind.STATUS, Kind.CONSENT_DECISION) and m.in_reply_to is None:
        raise MalformedError(f"message: a {k.value} must name the message it replies to")
    if (k is Kind.STATUS) != (m.status is not None):
        raise MalformedError("message: a status object goes with kind 'status' only")
    if (k in (Kind.CONSENT_REQUEST, Kind.CONSENT_DECISION)) != (m.consent is not None):
        raise MalformedError("message: a consent object goes with consent kinds only")
    if m.deadline is not None and k is not Kind.REQUEST:
        raise MalformedError("message: only a request has a deadline")
    if m.forwarded is not None and k is not Kind.INFORMATION:
        raise MalformedError("message: a forward is information")
    if m.status is not None:
        _check_status(m.status)
    c = m.consent
    if c is not None:
        if k is Kind.CONSENT_REQUEST and (c.decision is not None or c.purpose is None):
            raise MalformedError("message: a consent request states a purpose, no decision")
        if k is Kind.CONSENT_DECISION and c.decision is None:
            raise MalformedError("message: a consent decision says granted or refused")
        if c.decision is ConsentDecision.REFUSED and c.reason is None:
            raise MalformedError("message: a refused consent gives a reason")


def _check_status(s: StatusUpdate) -> None:
    """The per-state rules of a status object (§8.2 rule 5)."""
    if s.state is StatusState.ACKNOWLEDGED and s.expected is None:
        raise MalformedError(
            "message: an acknowledgement gives the expected answer date ('expected')"
        )
    if s.state in (StatusState.DECLINED, StatusState.WITHDRAWN) and s.reason is None:
        raise MalformedError(f"message: a {s.state.value} status gives a reason")
    if (s.state is StatusState.EXTENDED) != (s.deadline is not None):
        raise MalformedError("message: an extension, and only an extension, gives a deadline")
    if s.expected is not None and s.state not in _EXPECTING:
        raise MalformedError("message: only acknowledged and in-progress give an expected date")


def check_status_sender(status: StatusUpdate, party: Party | None, *, deadline: int) -> None:
    """Whether a received status may apply to the request it replies to (§8.2.1).

    ``party`` is what the status's sender is to that request as the receiving node
    holds it (``None``: the two never exchanged it); ``deadline`` is the deadline the
    request itself asked for.  :class:`WorkflowError` when the status comes from the
    wrong party, names a request never exchanged with its sender, or extends to a
    date that is not later than the request's deadline.
    """
    if party is None:
        raise WorkflowError("a status about a request its sender never exchanged with this node")
    allowed = STATUS_SENDER[status.state]
    if party is not allowed:
        raise WorkflowError(f"only the request's {allowed.value} reports {status.state.value}")
    if status.deadline is not None and status.deadline <= deadline:
        raise WorkflowError("an extension's deadline is later than the request's own")
