"""A devnet exchange and the parts of its evidence bundle (PROTOCOL.md §9.3), for the vector
generator (tests/vectors/bundle_cases.py) and the protocol and verifier tests.

FR-PNF asks DE-BKA for bank records with one attachment (the request of envelope_1.json),
DE-BKA acknowledges it and answers; FR-PNF exports the exchange.  Envelopes are sealed
through an :class:`~tests.vectors.vectorlib.HpkePool`, so the vector generator reproduces
the committed bytes; tests pass an empty pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from protocol import crypto, labels
from protocol.bundle import BundleMessage, build_bundle
from protocol.bundlezip import MemberSpec, encode_container, parse_container
from protocol.devnet import DevNetwork
from protocol.envelope import (
    SealTo,
    content_signature,
    envelope_hash,
    parse_envelope,
    seal_envelope,
)
from protocol.ids import AuthorityId, MessageId
from protocol.membership import make_checkpoint
from protocol.messages import (
    Consent,
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
)
from protocol.receipts import EvidenceKind, make_evidence, make_receipt
from tests.vectors.envelopes import frame, sign_frame
from tests.vectors.vectorlib import (
    ENVELOPE_CREATED,
    NOW,
    HpkePool,
    Json,
    attachment_inputs,
    h,
    member,
    message_content,
    rng_for,
)

#: When FR-PNF exports the exchange, and when the hub signed the checkpoint it includes.
EXPORTED: Final = NOW + 60
CHECKPOINT_AT: Final = NOW
ACK_AT: Final = NOW - 40
ANSWER_AT: Final = NOW - 20


@dataclass
class Sealed:
    """A sealed message: its envelope, exact content and inner signature."""

    envelope: bytes
    content: bytes
    signature: bytes
    wraps: list[Json] = field(default_factory=list)

    @property
    def message_id(self) -> MessageId:
        return parse_envelope(self.envelope).header.message_id

    @property
    def hash(self) -> bytes:
        return envelope_hash(self.envelope)


def seal(
    net: DevNetwork,
    pool: HpkePool,
    name: str,
    *,
    sender: str,
    recipients: Sequence[tuple[str, int]],
    content: MessageContent,
    created: int,
) -> Sealed:
    """``content`` from ``sender`` to ``recipients`` (authority, per-pair seq), its message id
    and content key from ``rng_for(name)``, each key wrapped through ``pool``."""
    s = member(net, sender)
    data = content.encode()
    state = net.directory
    raw0 = seal_envelope(
        genesis=net.genesis, sender=s.authority, identity=s.identity,
        recipients=[SealTo(member(net, a).authority, n, member(net, a).prekey.public_key)
                    for a, n in recipients],
        content=data, created=created, expires=created + 7 * 86400, dir_seq=state.seq,
        dir_head=state.head, rng=rng_for(name), blobs=[a.blob for a in content.attachments],
    )  # fmt: skip
    env = parse_envelope(raw0)
    probe = rng_for(name)
    probe(16)
    key = probe(crypto.AEAD_KEY_LEN)
    digest = crypto.sha256(env.header.raw)
    wraps = []
    wrapped = []
    for a, _ in sorted(recipients):
        info = crypto.labelled(labels.WRAP, digest, a.encode("ascii"))
        sealed = pool.seal(member(net, a).prekey, info, key)
        wrapped.append(sealed)
        wraps.append({"recipient": a, "wrap_info": h(info), "wrapped_key": h(sealed)})
    raw = sign_frame(s.identity, frame(env.header.raw, wrapped, env.body))
    inner = content_signature(s.identity, env.header.raw, data)
    return Sealed(raw, data, inner, wraps)


def receipt(net: DevNetwork, by: str, sealed: Sealed, sender: str, time: int) -> bytes:
    """``by``'s signed delivery receipt for ``sealed``."""
    return make_receipt(
        genesis=net.genesis, identity=member(net, by).identity, message_id=sealed.message_id,
        envelope_hash=sealed.hash, sender=member(net, sender).authority,
        recipient=member(net, by).authority, time=time,
    ).encode()  # fmt: skip


def evidence(
    net: DevNetwork,
    kind: EvidenceKind,
    sealed: Sealed,
    *,
    sender: str,
    to: Sequence[str],
    time: int,
) -> bytes:
    """The hub's evidence of ``kind`` about ``sealed``."""
    return make_evidence(
        genesis=net.genesis, hub=net.hub, kind=kind, message_id=sealed.message_id,
        envelope_hash=sealed.hash, sender=member(net, sender).authority,
        recipients=[member(net, a).authority for a in to], time=time,
        reason="expired" if kind is EvidenceKind.NON_DELIVERY else None,
    ).signed.encode()  # fmt: skip


def checkpoint(net: DevNetwork, time: int = CHECKPOINT_AT) -> bytes:
    """The hub's checkpoint of the devnet's whole log at ``time``."""
    state = net.directory
    return make_checkpoint(
        genesis=net.genesis, hub=net.hub, seq=state.seq, head=state.head, time=time
    ).signed.encode()


def reply(
    original: MessageContent, in_reply_to: MessageId, *, kind: Kind, body: str, **more: object
) -> MessageContent:
    """A reply as a node makes it: the original's language, urgency, handling and case."""
    return MessageContent(
        kind=kind, subject=f"Re: {original.subject}"[:300], body=body,
        language=original.language, urgency=original.urgency, handling=original.handling,
        case=original.case, in_reply_to=in_reply_to, **more,  # type: ignore[arg-type]
    )  # fmt: skip


@dataclass
class Exchange:
    """The exchange's messages as FR-PNF holds them, ready for a bundle."""

    net: DevNetwork
    request: BundleMessage
    ack: BundleMessage
    answer: BundleMessage
    sealed: dict[str, Sealed]

    @property
    def messages(self) -> list[BundleMessage]:
        return [self.request, self.ack, self.answer]

    @property
    def wraps(self) -> list[Json]:
        return [w for s in self.sealed.values() for w in s.wraps]

    def bundle(
        self,
        messages: Sequence[BundleMessage] | None = None,
        *,
        net: DevNetwork | None = None,
        checkpoint_bytes: bytes | None = None,
        exporter: str = "FR-PNF",
        included: bool = True,
        message: MessageId | None = None,
        entries: Sequence[bytes] | None = None,
    ) -> bytes:
        """FR-PNF's bundle of ``messages`` (default: the three), at :data:`EXPORTED`."""
        n = net or self.net
        msgs = list(self.messages if messages is None else messages)
        if not included:
            msgs = [replace(m, attachments=()) for m in msgs]
        return build_bundle(
            genesis=n.genesis, entries=list(n.entries if entries is None else entries),
            checkpoint=checkpoint(n) if checkpoint_bytes is None else checkpoint_bytes,
            messages=msgs, exporter=AuthorityId.parse(exporter),
            identity=member(n, exporter).identity, created=EXPORTED,
            case=message_content().case, message=message, included=included,
        )  # fmt: skip


def exchange(net: DevNetwork, pool: HpkePool, request_envelope: bytes | None = None) -> Exchange:
    """The exchange on ``net`` (FR-PNF and DE-BKA members); ``request_envelope`` is
    envelope_1.json's envelope when the generator already sealed it."""
    content = message_content()
    if request_envelope is None:
        request = seal(net, pool, "envelope-1", sender="FR-PNF", recipients=[("DE-BKA", 1)],
                       content=content, created=ENVELOPE_CREATED)  # fmt: skip
    else:
        header = parse_envelope(request_envelope).header.raw
        request = Sealed(request_envelope, content.encode(), content_signature(
            member(net, "FR-PNF").identity, header, content.encode()))  # fmt: skip
    mid = request.message_id
    ack_content = reply(
        content, mid, kind=Kind.STATUS, body="Received; we expect to answer within ten days.",
        status=StatusUpdate(StatusState.ACKNOWLEDGED, expected=NOW + 10 * 86400),
    )  # fmt: skip
    ack = seal(net, pool, "bundle/ack", sender="DE-BKA", recipients=[("FR-PNF", 1)],
               content=ack_content, created=ACK_AT)  # fmt: skip
    answer_content = reply(
        content, mid, kind=Kind.ANSWER, body="The account was opened on 3 March 2024; the"
        " statements follow through the formal channel.",
    )  # fmt: skip
    answer = seal(net, pool, "bundle/answer", sender="DE-BKA", recipients=[("FR-PNF", 2)],
                  content=answer_content, created=ANSWER_AT)  # fmt: skip
    at = ENVELOPE_CREATED
    de = member(net, "DE-BKA").authority
    hub = [
        evidence(net, kind, request, sender="FR-PNF", to=["DE-BKA"], time=at + dt)
        for kind, dt in ((EvidenceKind.ACCEPTED, 1), (EvidenceKind.DELIVERED, 3))
    ]
    return Exchange(
        net,
        BundleMessage(
            request.envelope, request.content, request.signature,
            receipts=((de, receipt(net, "DE-BKA", request, "FR-PNF", at + 2)),),
            evidence=tuple(hub), attachments=(attachment_inputs().plaintext,),
        ),
        held(net, ack, "DE-BKA", ACK_AT + 1),
        held(net, answer, "DE-BKA", ANSWER_AT + 1),
        {"request": request, "ack": ack, "answer": answer},
    )  # fmt: skip


def held(net: DevNetwork, sealed: Sealed, sender: str, time: int) -> BundleMessage:
    """A message FR-PNF received from ``sender``, with the receipt FR-PNF signed."""
    fr = member(net, "FR-PNF")
    return BundleMessage(
        sealed.envelope, sealed.content, sealed.signature,
        receipts=((fr.authority, receipt(net, "FR-PNF", sealed, sender, time)),),
    )  # fmt: skip


def information(subject: str, handling: Handling, case: str | None = None) -> MessageContent:
    """Spontaneous information under ``handling``."""
    return MessageContent(
        kind=Kind.INFORMATION, subject=subject, body="See the attached analysis.",
        language="en", urgency=Urgency.ROUTINE, handling=handling,
        case=case or message_content().case,
    )  # fmt: skip


def consent_pair(
    net: DevNetwork, pool: HpkePool, about: Sealed, originator: str, *, at: int, name: str
) -> tuple[BundleMessage, BundleMessage]:
    """FR-PNF's consent request to ``originator`` about ``about`` naming FR-PNF itself (export),
    and ``originator``'s grant: the export basis of §9.3.6."""
    fr = member(net, "FR-PNF").authority
    asked = MessageContent(
        kind=Kind.CONSENT_REQUEST, subject="Consent to export", body="For the court.",
        language="en", urgency=Urgency.PRIORITY, handling=Handling(Tlp.AMBER),
        case=message_content().case,
        consent=Consent(about.message_id, (fr,), "Evidence bundle for the formal MLA request"),
    )  # fmt: skip
    request = seal(net, pool, f"{name}/ask", sender="FR-PNF", recipients=[(originator, 3)],
                   content=asked, created=at)  # fmt: skip
    grant = reply(
        asked, request.message_id, kind=Kind.CONSENT_DECISION, body="Granted.",
        consent=Consent(about.message_id, (fr,), None, ConsentDecision.GRANTED),
    )  # fmt: skip
    granted = seal(net, pool, f"{name}/grant", sender=originator, recipients=[("FR-PNF", 3)],
                   content=grant, created=at + 10)  # fmt: skip
    return (
        BundleMessage(request.envelope, request.content, request.signature),
        held(net, granted, originator, at + 11),
    )


# --- editing a bundle's members (tampering, for the refusal cases) -----------------------------


def members(data: bytes) -> list[tuple[str, bytes]]:
    """A bundle's members, in order."""
    return [(m.name, bytes(m.data)) for m in parse_container(data)]


def rebuild(pairs: Sequence[tuple[str, bytes]]) -> bytes:
    """A container of these members, each with its right CRC-32."""
    return encode_container([MemberSpec.of(name, data) for name, data in pairs])


def edit(data: bytes, name: str, change: Callable[[bytes], bytes | None]) -> bytes:
    """``data`` with member ``name`` changed (``None``: removed); the container stays well
    formed, the manifest as it was."""
    assert name in dict(members(data)), name
    out = []
    for n, d in members(data):
        new = change(d) if n == name else d
        if new is not None:
            out.append((n, new))
    return rebuild(out)


def flip(data: bytes, name: str, offset: int, mask: int = 1) -> bytes:
    """``data`` with one byte of member ``name`` changed."""

    def change(d: bytes) -> bytes:
        b = bytearray(d)
        b[offset] ^= mask
        return bytes(b)

    return edit(data, name, change)


def add(data: bytes, name: str, content: bytes) -> bytes:
    """``data`` with a member added, in name order after the manifest."""
    pairs = members(data)
    return rebuild([pairs[0], *sorted([*pairs[1:], (name, content)])])


def named(data: bytes, suffix: str, sender: str = "FR-PNF") -> str:
    """The name of the first member of ``sender``'s messages ending in ``suffix``."""
    return next(
        n for n, _ in members(data) if n.startswith(f"messages/{sender}/") and n.endswith(suffix)
    )


__all__ = [
    "ACK_AT",
    "ANSWER_AT",
    "CHECKPOINT_AT",
    "EXPORTED",
    "Exchange",
    "Sealed",
    "add",
    "checkpoint",
    "consent_pair",
    "edit",
    "evidence",
    "exchange",
    "flip",
    "held",
    "information",
    "members",
    "named",
    "rebuild",
    "receipt",
    "reply",
    "seal",
]
