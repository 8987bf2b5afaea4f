"""Proof of origin and originator control across hops (docs/PROTOCOL.md §8.5).

The inner signature of an envelope (§7.5) covers the SHA-256 of the exact
header and the content: kept with those bytes (a :class:`SignedContent`), it
proves to anyone holding the membership log who wrote the message, to whom,
when and with which handling code.  A forward carries the originator's
``SignedContent`` and the originator's signed consent decisions; every node
on every hop checks them with :func:`verify_forward`, so consent to onward
use always comes from the originator and a handling code is never lowered.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import crypto, labels
from protocol.directory import DirectoryState
from protocol.envelope import EnvelopeHeader, decode_header
from protocol.errors import (
    BadSignature,
    ConsentRequired,
    HandlingLowered,
    MalformedError,
)
from protocol.ids import AuthorityId, MessageId
from protocol.messages import (
    ConsentDecision,
    Kind,
    MessageContent,
    SignedContent,
    forward_requires_consent,
    handling_at_least,
)

__all__ = ["Origin", "signed_content", "verify_forward", "verify_signed_content"]


@dataclass(frozen=True, slots=True)
class Origin:
    """A verified message: who wrote it, to whom, when, and what it says."""

    header: EnvelopeHeader
    content: MessageContent
    signed: SignedContent

    @property
    def sender(self) -> AuthorityId:
        """The authority that wrote it."""
        return self.header.sender

    @property
    def message_id(self) -> MessageId:
        """Its message id."""
        return self.header.message_id

    @property
    def recipients(self) -> frozenset[AuthorityId]:
        """The authorities it was addressed to."""
        return frozenset(r.authority for r in self.header.recipients)


def signed_content(header: bytes, content: bytes, signature: bytes) -> SignedContent:
    """The proof of origin of an opened (or sent) envelope: header bytes, content, signature."""
    return SignedContent(header, content, signature)


def verify_signed_content(proof: SignedContent, directory: DirectoryState) -> Origin:
    """Check a proof of origin against the verified log; the message it proves.

    In order: the header decodes (§7.2) and names this network; its ``sender_key``
    is an identity key the log ever certified for the sender, not replaced before
    the message's ``created`` time (``retired_at``, §6.5); the inner signature
    verifies; the content decodes (§8) and its attachments match the header's
    ``blobs`` (§8.4).  The sender's *current* status does not matter: a message
    written while it was a member stays its message.
    """
    header = decode_header(proof.header)
    if header.network != directory.genesis.digest:
        raise MalformedError("proof of origin: made for another network")
    member = directory.member(header.sender)
    key = member.identity_keys.get(header.sender_key)
    if key is None:
        raise BadSignature(
            f"proof of origin: {header.sender_key} is no certified identity key of {header.sender}"
        )
    retired = member.retired_at.get(header.sender_key)
    if retired is not None and header.created >= retired:
        raise BadSignature("proof of origin: dated after its signing key was replaced")
    key.verify(labels.CONTENT, crypto.sha256(proof.header) + proof.content, proof.signature)
    content = MessageContent.decode(proof.content)
    if sorted(a.blob for a in content.attachments) != list(header.blobs):
        raise MalformedError("proof of origin: the attachments do not match the header's blobs")
    return Origin(header, content, proof)


def verify_forward(
    content: MessageContent,
    *,
    forwarder: AuthorityId,
    recipient: AuthorityId,
    directory: DirectoryState,
) -> Origin:
    """Check a forward (§8.5) sent by ``forwarder`` to ``recipient``; the original message.

    Refusals, in order: the origin's proof (:func:`verify_signed_content`); an
    origin that is itself a forward (``malformed``: a forward carries the original);
    a handling code lower than the origin's (``handling-lowered``); attachments
    that are not the origin's (``malformed``); each consent decision's proof, and
    one not by the originator, not a ``granted`` decision or about another message
    (``malformed``); then, for restricted material (§8.3), a forwarder or recipient
    that is neither an original recipient, nor the originator, nor named in a
    granted decision (``consent-required``).
    """
    fwd = content.forwarded
    if fwd is None:
        raise MalformedError("message: not a forward")
    origin = verify_signed_content(fwd.origin, directory)
    if origin.content.forwarded is not None:
        raise MalformedError("forward: it carries the original message, not another forward")
    if not handling_at_least(content.handling, origin.content.handling):
        raise HandlingLowered(
            f"forward: TLP:{content.handling.tlp.value} is below the originator's"
            f" TLP:{origin.content.handling.tlp.value} or drops one of its restrictions"
        )
    mine = [(a.name, a.size, a.media_type, a.sha256) for a in content.attachments]
    theirs = [(a.name, a.size, a.media_type, a.sha256) for a in origin.content.attachments]
    if mine != theirs:
        raise MalformedError("forward: its attachments are not exactly the original's")
    granted: set[AuthorityId] = set()
    for proof in fwd.consents:
        decision = verify_signed_content(proof, directory)
        c = decision.content.consent
        if (
            decision.sender != origin.sender
            or decision.content.kind is not Kind.CONSENT_DECISION
            or c is None
            or c.decision is not ConsentDecision.GRANTED
            or c.message != origin.message_id
        ):
            raise MalformedError(
                "forward: a consent it carries is not the originator's grant for this message"
            )
        granted.update(c.to)
    if forward_requires_consent(origin.content.handling):
        allowed = origin.recipients | granted | {origin.sender}
        for who, role in ((forwarder, "forwarder"), (recipient, "recipient")):
            if who not in allowed:
                raise ConsentRequired(
                    f"forward: {origin.sender} (the originator) has not consented to {who}"
                    f" ({role}) holding message {origin.message_id}"
                )
    return origin
