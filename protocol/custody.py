"""What an evidence bundle proves, and the checks that prove it (PROTOCOL.md §9.3.5).

:class:`Timeline` replays a membership log and keeps every authority's status
and certificate *from each entry on*, so that "was this signer a certified,
active member when it signed?" is answered for the time of the signature, not
for today.  :func:`check_message` runs the per-message checks of §9.3.5 on the
items of one message; :func:`consent_basis` judges whether the exporter could
export restricted material.  Every refusal is recorded as a :class:`Failure`
(the verification goes on where the rest does not depend on it); the facts
that verified become the chain of custody (:class:`MessageFacts`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

from protocol import crypto, labels
from protocol.bundlezip import crc32
from protocol.crypto import BytesLike
from protocol.directory import DirectoryState, MemberStatus
from protocol.envelope import Envelope, parse_envelope
from protocol.errors import (
    ConsentRequired,
    ExpiredError,
    GlobeError,
    ItemAltered,
    ItemMissing,
    MalformedError,
    MemberNotActive,
    NotCertified,
    NotYetValid,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.membership import Action, Certificate, LogEntry
from protocol.messages import (
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    SignedContent,
    Tlp,
)
from protocol.origin import Origin, verify_forward, verify_signed_content
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind

__all__ = [
    "AttachmentFacts",
    "EvidenceFacts",
    "Failure",
    "Item",
    "MemberFacts",
    "MessageFacts",
    "OriginFacts",
    "ReceiptFacts",
    "Signer",
    "Stage",
    "Timeline",
    "Verified",
    "check_message",
    "consent_basis",
    "export_requires_consent",
]

ENVELOPE: Final = "envelope.bin"
CONTENT: Final = "content.json"
SIGNATURE: Final = "signature.bin"


def export_requires_consent(handling: Handling) -> bool:
    """Whether an authority other than the originator exports the material only with the
    originator's consent (PROTOCOL.md §9.3.6): TLP:RED and TLP:AMBER+STRICT (limited to the
    recipients themselves, or to their organisation) and ``no-onward-dissemination``.
    CLEAR, GREEN and AMBER may go to the holder's own court or central authority."""
    return handling.tlp in (Tlp.RED, Tlp.AMBER_STRICT) or (
        Restriction.NO_ONWARD in handling.restrictions
    )


# --- items and failures -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One member of a bundle: its bytes (``None`` for an attachment known by its digests
    only, in the exporter's own check before it writes), size, SHA-256 and CRC-32, and
    whether the CRC-32 its container states is that one."""

    name: str
    data: BytesLike | None
    size: int
    sha256: bytes
    crc: int
    crc_ok: bool = True

    @classmethod
    def of(cls, name: str, data: BytesLike, *, stated_crc: int | None = None) -> Item:
        """An item whose bytes are at hand (``stated_crc``: the CRC-32 its container states)."""
        digest = crypto.Sha256()
        digest.update(data)
        crc = crc32(data)
        ok = stated_crc is None or stated_crc == crc
        return cls(name, data, len(data), digest.digest(), crc, ok)

    def raw(self) -> bytes:
        """The item's bytes (``item-missing`` for an item known by its digest only)."""
        if self.data is None:
            raise ItemMissing(f"{self.name}: its bytes are not in the bundle")
        return bytes(self.data)


@dataclass(frozen=True, slots=True)
class Failure:
    """One refusal: its slug and error class, the item it concerns, and why."""

    slug: str
    error: str
    item: str | None
    detail: str
    exc: GlobeError = field(compare=False, repr=False)

    @classmethod
    def of(cls, exc: GlobeError, item: str | None) -> Failure:
        """The failure an error stands for (kept without its traceback: the frames it names
        hold views into the bundle, which must not outlive the verification)."""
        exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        return cls(exc.slug, type(exc).__name__, item, exc.detail, exc)

    def line(self) -> str:
        """``slug: item: detail`` on one line."""
        where = f"{self.item}: " if self.item else ""
        return " ".join(f"{self.slug}: {where}{self.detail}".split())

    def to_json(self) -> dict[str, object]:
        """Machine form."""
        return {"slug": self.slug, "error": self.error, "item": self.item, "detail": self.detail}


Fail = Callable[[GlobeError, str | None], None]


# --- the membership timeline ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    """An authority's membership from one log entry on: status and certificate."""

    seq: int
    time: int
    action: Action
    status: MemberStatus
    certificate: Certificate


class Timeline:
    """A verified log replayed from the genesis, remembering each authority's stages."""

    def __init__(self, genesis: Genesis) -> None:
        self.state = DirectoryState(genesis)
        self._stages: dict[AuthorityId, list[Stage]] = {}

    def apply(self, entry: bytes) -> None:
        """Verify and apply the next entry (``DirectoryState.apply``; its refusals)."""
        applied = self.state.apply(entry)
        if not isinstance(applied, LogEntry):  # an entry that changes no membership
            return
        aid = applied.action.authority
        member = self.state.members[aid]
        self._stages.setdefault(aid, []).append(
            Stage(applied.seq, applied.time, applied.action.action, member.status,
                  member.certificate)
        )  # fmt: skip

    def stages(self, authority: AuthorityId) -> tuple[Stage, ...]:
        """Every stage of ``authority``, in log order."""
        return tuple(self._stages.get(authority, ()))

    def at(self, authority: AuthorityId, time: int) -> Stage | None:
        """The stage in force at ``time``: the last entry dated at or before it."""
        stages = self._stages.get(authority, [])
        index = bisect.bisect_right([s.time for s in stages], time)
        return stages[index - 1] if index else None

    def key_at(self, authority: AuthorityId, key: KeyId, time: int, what: str) -> Stage:
        """The stage at ``time``, whose certificate's identity key must be ``key``
        (:class:`NotCertified` otherwise, and when ``authority`` was no member yet)."""
        stage = self.at(authority, time)
        if stage is None:
            raise NotCertified(f"{what}: {authority} was not yet a member at {_iso(time)}")
        if stage.certificate.identity_key.key_id != key:
            raise NotCertified(
                f"{what}: {key} was not the certified identity key of {authority} at {_iso(time)}"
            )
        return stage

    def signer_at(self, authority: AuthorityId, key: KeyId, time: int, what: str) -> Stage:
        """:meth:`key_at`, and the member active with a valid certificate at ``time``."""
        stage = self.key_at(authority, key, time, what)
        if stage.status is not MemberStatus.ACTIVE:
            raise MemberNotActive(
                f"{what}: {authority} was {stage.status.value} at {_iso(time)} (log entry"
                f" {stage.seq}, {_iso(stage.time)})"
            )
        try:
            stage.certificate.check_valid_at(time)
        except (NotYetValid, ExpiredError) as exc:
            raise type(exc)(f"{what}: {exc.detail} at {_iso(time)}") from None
        return stage


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the facts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signed: the authority, its certified name and serial, the key and the authority
    fingerprint (§3.4) of the certificate in force when it signed."""

    authority: str
    name: str
    serial: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, stage: Stage) -> Signer:
        """The signer a stage names."""
        c = stage.certificate
        return cls(str(c.authority), c.name, c.serial, str(c.identity_key.key_id),
                   c.fingerprint())  # fmt: skip


@dataclass(frozen=True, slots=True)
class EvidenceFacts:
    """Hub evidence about a message."""

    item: str
    kind: str
    time: int
    recipients: tuple[str, ...]
    reason: str | None


@dataclass(frozen=True, slots=True)
class ReceiptFacts:
    """A recipient's signed delivery receipt."""

    item: str
    recipient: str
    time: int
    key: str


@dataclass(frozen=True, slots=True)
class AttachmentFacts:
    """An attachment as the signed content describes it; ``item`` is ``None`` when the
    bundle carries only its digest."""

    index: int
    name: str
    media_type: str
    size: int
    sha256: str
    item: str | None


@dataclass(frozen=True, slots=True)
class OriginFacts:
    """The original message a forward carries."""

    message_id: str
    sender: str
    created: int
    tlp: str
    signer: Signer | None


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """A message whose proof of origin verified, and what the bundle shows about it."""

    item: str
    message_id: str
    sender: str
    signer: Signer | None  # None: not certified at the time (a failure says why)
    created: int
    expires: int
    kind: str
    subject: str
    case: str | None
    in_reply_to: str | None
    tlp: str
    restrictions: tuple[str, ...]
    recipients: tuple[str, ...]
    envelope_hash: str
    evidence: tuple[EvidenceFacts, ...]
    receipts: tuple[ReceiptFacts, ...]
    attachments: tuple[AttachmentFacts, ...]
    forwarded: OriginFacts | None
    basis: str | None = None  # why the exporter could export it (§9.3.6)


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """An authority the bundle relies on, and its stages in the log."""

    authority: str
    name: str
    stages: tuple[tuple[int, int, str, str, str, str], ...]  # seq, time, action, status,
    #                                                          serial, identity key


@dataclass(slots=True)
class Verified:
    """A message that verified: its facts, and what the bundle-level checks need."""

    facts: MessageFacts
    header_sender: AuthorityId
    message_id: MessageId
    content: MessageContent
    origin: Origin | None  # the original a forward carries
    times: list[tuple[int, str]]  # (time a membership fact is judged at, item)


# --- one message ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What every message check needs."""

    timeline: Timeline
    exporter: AuthorityId
    included: bool  # attachments included (else: digests only)
    fail: Fail


def check_message(prefix: str, parts: Mapping[str, Item], ctx: Context) -> Verified | None:
    """The checks of one message (PROTOCOL.md §9.3.5, m1-m10); ``None`` when its proof of
    origin does not verify (the failures say why)."""
    missing = [n for n in (ENVELOPE, CONTENT, SIGNATURE) if n not in parts]
    for name in missing:
        ctx.fail(ItemMissing(f"a message holds {ENVELOPE}, {CONTENT} and {SIGNATURE}"),
                 prefix + name)  # fmt: skip
    if missing:
        return None
    try:
        envelope = parse_envelope(parts[ENVELOPE].raw())
        h = envelope.header
        if f"messages/{h.sender}/{h.message_id}/" != prefix:
            raise MalformedError(f"the envelope is message {h.message_id} of {h.sender}")
    except GlobeError as exc:
        ctx.fail(exc, prefix + ENVELOPE)
        return None
    proof = SignedContent(h.raw, parts[CONTENT].raw(), parts[SIGNATURE].raw())
    try:
        origin = verify_signed_content(proof, ctx.timeline.state)
    except GlobeError as exc:
        ctx.fail(exc, prefix + CONTENT)
        return None
    return _MessageCheck(prefix, parts, ctx, envelope, origin).run()


class _MessageCheck:
    """Steps m4-m10 of one message whose proof of origin verified."""

    def __init__(
        self, prefix: str, parts: Mapping[str, Item], ctx: Context, env: Envelope, origin: Origin
    ) -> None:
        self.prefix, self.parts, self.ctx, self.env, self.origin = prefix, parts, ctx, env, origin
        self.h = env.header
        self.times: list[tuple[int, str]] = [(self.h.created, prefix + CONTENT)]
        self.recipients = [r.authority for r in self.h.recipients]

    def _try(self, item: str, step: Callable[[], object]) -> object | None:
        try:
            return step()
        except GlobeError as exc:
            self.ctx.fail(exc, self.prefix + item)
            return None

    def run(self) -> Verified:
        h, c = self.h, self.origin.content
        self._try(ENVELOPE, self._outer_signature)
        stage = self._try(CONTENT, self._signer)
        self._try(ENVELOPE, self._party)
        evidence = [e for e in (self._evidence(n) for n in self._named("evidence-")) if e]
        receipts = [r for r in (self._receipt(n) for n in self._named("receipt-")) if r]
        attachments = self._attachments()
        forwarded = self._forward()
        facts = MessageFacts(
            self.prefix.rstrip("/"), str(h.message_id), str(h.sender),
            Signer.of(stage) if isinstance(stage, Stage) else None, h.created, h.expires,
            c.kind.value, c.subject, c.case, str(c.in_reply_to) if c.in_reply_to else None,
            c.handling.tlp.value, tuple(sorted(r.value for r in c.handling.restrictions)),
            tuple(map(str, self.recipients)), self.env.hash.hex(),
            tuple(sorted(evidence, key=lambda e: (e.time, e.kind, e.item))),
            tuple(sorted(receipts, key=lambda r: (r.time, r.recipient))), attachments,
            forwarded[0],
        )  # fmt: skip
        return Verified(facts, h.sender, h.message_id, c, forwarded[1], self.times)

    def _named(self, start: str) -> list[str]:
        return sorted(n for n in self.parts if n.startswith(start))

    def _outer_signature(self) -> None:
        key = self.ctx.timeline.state.member(self.h.sender).identity_keys[self.h.sender_key]
        key.verify(labels.ENVELOPE, self.env.signed_part, self.env.signature)

    def _signer(self) -> Stage:
        h = self.h
        return self.ctx.timeline.signer_at(h.sender, h.sender_key, h.created, "the message")

    def _party(self) -> None:
        if self.ctx.exporter != self.h.sender and self.ctx.exporter not in self.recipients:
            raise MalformedError(f"{self.ctx.exporter} (the exporter) neither sent nor received it")

    def _evidence(self, name: str) -> EvidenceFacts | None:
        def check() -> EvidenceFacts:
            e = Evidence.decode(self.parts[name].raw(), self.ctx.timeline.state.genesis)
            h = self.h
            if (e.message_id, e.envelope_hash, e.sender) != (h.message_id, self.env.hash, h.sender):
                raise MalformedError("the hub's evidence is about another envelope")
            if not set(e.recipients) <= set(self.recipients):
                raise MalformedError("the hub's evidence names an authority the header does not")
            if e.kind is EvidenceKind.ACCEPTED:
                self.times.append((e.time, self.prefix + name))
                self.ctx.timeline.signer_at(h.sender, h.sender_key, e.time, "accepted by the hub")
            return EvidenceFacts(self.prefix + name, e.kind.value, e.time,
                                 tuple(map(str, e.recipients)), e.reason)  # fmt: skip

        out = self._try(name, check)
        return out if isinstance(out, EvidenceFacts) else None

    def _receipt(self, name: str) -> ReceiptFacts | None:
        def check() -> ReceiptFacts:
            r = DeliveryReceipt.decode(self.parts[name].raw(), self.ctx.timeline.state)
            if f"receipt-{r.recipient}.json" != name or r.recipient not in self.recipients:
                raise MalformedError(f"a receipt of {r.recipient}, not of a recipient it names")
            if not r.matches(self.h.message_id, self.env.hash) or r.sender != self.h.sender:
                raise MalformedError("the receipt is for another envelope")
            self.times.append((r.time, self.prefix + name))
            self.ctx.timeline.key_at(r.recipient, r.key, r.time, "the receipt")
            return ReceiptFacts(self.prefix + name, str(r.recipient), r.time, str(r.key))

        out = self._try(name, check)
        return out if isinstance(out, ReceiptFacts) else None

    def _attachments(self) -> tuple[AttachmentFacts, ...]:
        listed = self.origin.content.attachments
        out = []
        for index, att in enumerate(listed, start=1):
            name = f"attachment-{index}"
            item = self.parts.get(name)
            if item is not None and (item.size, item.sha256) != (att.size, att.sha256):
                self.ctx.fail(ItemAltered("not the file the signed content describes"),
                              self.prefix + name)  # fmt: skip
            if item is None and self.ctx.included:
                self.ctx.fail(ItemMissing("the manifest says attachments are included"),
                              self.prefix + name)  # fmt: skip
            held = None if item is None else item.name
            out.append(AttachmentFacts(index, att.name, att.media_type, att.size,
                                       att.sha256.hex(), held))  # fmt: skip
        for name in self._named("attachment-"):
            index = int(name.removeprefix("attachment-"))
            if index > len(listed) or not self.ctx.included:
                why = "no such attachment" if index > len(listed) else "the manifest says digests"
                self.ctx.fail(MalformedError(f"{why}, yet the bundle holds it"), self.prefix + name)
        return tuple(out)

    def _forward(self) -> tuple[OriginFacts | None, Origin | None]:
        fwd = self.origin.content.forwarded
        if fwd is None:
            return None, None
        timeline = self.ctx.timeline
        try:
            for recipient in self.recipients:
                verify_forward(self.origin.content, forwarder=self.h.sender,
                               recipient=recipient, directory=timeline.state)  # fmt: skip
        except GlobeError as exc:
            self.ctx.fail(exc, self.prefix + CONTENT)
            return None, None
        first = verify_signed_content(fwd.origin, timeline.state)
        oh = first.header
        self.times.append((oh.created, self.prefix + CONTENT))
        stage = self._try(CONTENT, lambda: timeline.signer_at(
            oh.sender, oh.sender_key, oh.created, "the original of the forward"))  # fmt: skip
        signer = Signer.of(stage) if isinstance(stage, Stage) else None
        facts = OriginFacts(str(oh.message_id), str(oh.sender), oh.created,
                            first.content.handling.tlp.value, signer)  # fmt: skip
        return facts, first


# --- export consent ---------------------------------------------------------------------------


def consent_basis(messages: Sequence[Verified], exporter: AuthorityId, fail: Fail) -> None:
    """Each restricted proof in the bundle (a message, or the original a forward carries) by
    an authority other than the exporter needs that authority's consent to the export, in
    the bundle (§9.3.6); records the basis on each message or a ``consent-required``."""
    requests = {
        v.message_id: v
        for v in messages
        if v.header_sender == exporter and v.content.kind is Kind.CONSENT_REQUEST
    }
    for v in messages:
        bases = []
        item = v.facts.item
        proofs = [(v.header_sender, v.message_id, v.content.handling, item)]
        if v.origin is not None:  # the original inside a forward, carried by its content
            oc = v.origin
            proofs.append((oc.sender, oc.message_id, oc.content.handling, f"{item}/{CONTENT}"))
        for author, mid, handling, where in proofs:
            if author == exporter:
                bases.append("originator")
            elif not export_requires_consent(handling):
                bases.append(f"TLP:{handling.tlp.value}")
            else:
                grant = _grant(messages, requests, author, mid, exporter)
                if grant is None:
                    fail(ConsentRequired(
                        f"message {mid} of {author} is TLP:{handling.tlp.value}"
                        f"{_restricted(handling)}: the bundle holds no consent of {author} to its"
                        f" export by {exporter}"), where)  # fmt: skip
                    continue
                bases.append(f"consent {grant.message_id} of {author}")
        v.facts = _with_basis(v.facts, "; ".join(bases))


def _restricted(handling: Handling) -> str:
    return " with no onward dissemination" if Restriction.NO_ONWARD in handling.restrictions else ""


def _grant(
    messages: Sequence[Verified],
    requests: Mapping[MessageId, Verified],
    author: AuthorityId,
    mid: MessageId,
    exporter: AuthorityId,
) -> Verified | None:
    """A granted decision of ``author`` about ``mid`` naming the exporter, in reply to a
    consent request the exporter sent about ``mid`` naming itself."""
    for d in messages:
        c = d.content.consent
        reply = d.content.in_reply_to
        request = requests.get(reply) if reply is not None else None
        asked = request.content.consent if request is not None else None
        if (
            d.header_sender == author
            and d.content.kind is Kind.CONSENT_DECISION
            and c is not None
            and c.decision is ConsentDecision.GRANTED
            and c.message == mid
            and exporter in c.to
            and asked is not None
            and asked.message == mid
            and exporter in asked.to
        ):
            return d
    return None


def _with_basis(facts: MessageFacts, basis: str) -> MessageFacts:
    return replace(facts, basis=basis or None)
