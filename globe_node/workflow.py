"""Replies, status updates, forwards and consent (PROTOCOL.md §8.2, §8.3, §8.5).

A reply goes to the sender of the message it answers and moves the request it
answers.  A forward carries the originator's proof of origin, the originator's
grants and the attachments re-encrypted for the new recipients; restricted
material needs the originator's consent on every hop, asked of the originator
with :meth:`Workflow.request_consent`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from globe_node.audit import AuditLog
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.errors import Conflict, ConsentRequired, NotFound
from globe_node.outbox import Outbox, reply_moves_request
from globe_node.queries import Queries
from globe_node.uploads import Uploads
from protocol.envelope import parse_envelope
from protocol.errors import GlobeError, UsageError
from protocol.ids import AuthorityId, MessageId
from protocol.messages import (
    MAX_CONSENTS,
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    SignedContent,
    StatusUpdate,
    Tlp,
    forward_requires_consent,
)
from protocol.origin import Origin, signed_content, verify_signed_content

__all__ = ["Workflow"]


def _re(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"[:300]


def _fwd(subject: str) -> str:
    return f"Fwd: {subject}"[:300]


def granted_to(consents: Sequence[SignedContent]) -> set[AuthorityId]:
    """Everyone named in these (already verified) consent decisions."""
    out: set[AuthorityId] = set()
    for proof in consents:
        consent = MessageContent.decode(proof.content).consent
        if consent is not None:
            out.update(consent.to)
    return out


def unique(proofs: Sequence[SignedContent]) -> list[SignedContent]:
    """Proofs without repeats, in a stable order (by their header bytes)."""
    return sorted({(p.header, p.content): p for p in proofs}.values(), key=lambda p: p.header)


class Workflow:
    """What an investigator does with a message it holds."""

    def __init__(
        self,
        *,
        ctx: NodeContext,
        directory: Directory,
        outbox: Outbox,
        queries: Queries,
        staging: Uploads,
        audit: AuditLog,
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.outbox = outbox
        self.queries = queries
        self.staging = staging
        self.audit = audit

    async def reply(
        self,
        message_id: str,
        *,
        kind: Kind,
        body: str,
        user: str,
        subject: str | None = None,
        status: StatusUpdate | None = None,
        uploads: Sequence[str] = (),
        consent: Consent | None = None,
    ) -> MessageId:
        """Answer, status-update or consent-decide a received message (to its sender)."""
        held = await self.queries.content_of(message_id)
        if held.direction != "in":
            raise UsageError("reply to a received message")
        original = held.content
        sender = AuthorityId.parse(held.sender)
        content = MessageContent(
            kind=kind, subject=subject or _re(original.subject), body=body,
            language=original.language, urgency=original.urgency, handling=original.handling,
            case=original.case, in_reply_to=MessageId.parse(message_id), status=status,
            consent=consent,
        )  # fmt: skip
        mid = await self.outbox.send([sender], content, user=user, uploads=uploads)
        moved = reply_moves_request(content)
        if original.kind is Kind.REQUEST and moved is not None:
            async with self.ctx.store.write() as s:
                await self.ctx.store.move_request(
                    s, message_id, "in", str(sender), state=moved[0], expected=moved[1],
                    now=self.ctx.now(),
                )  # fmt: skip
        return mid

    async def proof_of_origin(
        self, message_id: str
    ) -> tuple[SignedContent, Sequence[SignedContent]]:
        """What proves where a held message came from (§8.5): for a forward, the origin it
        carries and its consents; else the message itself (received or sent here)."""
        store = self.ctx.store
        row = await store.in_message(message_id)
        out = None if row is not None else await store.out_message(message_id)
        if row is not None:
            sealed, envelope, signature = row.content, row.envelope, row.inner_signature
        elif out is not None:
            sealed, envelope, signature = out.content, out.envelope, out.inner_signature
        else:
            raise NotFound(f"no message {message_id}")
        content = self.ctx.cipher.open(sealed, f"content:{message_id}")
        decoded = MessageContent.decode(content)
        if decoded.forwarded is not None:
            return decoded.forwarded.origin, decoded.forwarded.consents
        if signature is None:
            raise Conflict(
                f"message {message_id} was stored before this node kept signatures: its origin"
                " cannot be proven to others, so it cannot be forwarded"
            )
        return signed_content(parse_envelope(envelope).header.raw, content, signature), ()

    async def forward(
        self, message_id: str, to: Sequence[AuthorityId], *, user: str, note: str = ""
    ) -> MessageId:
        """Forward a held message with its proof of origin and its attachments (§8.5).

        Restricted material (§8.3) needs the *originator's* consent for every new
        recipient, on every hop: the consent decisions this node holds (received from
        the originator, or carried by the forward it holds) go with the forward, and
        without one the forward is refused before anything is sent.  Attachments are
        re-encrypted for the new recipients; one that is no longer on this node
        refuses the forward rather than sending it partial.
        """
        held = await self.queries.content_of(message_id)
        proof, carried = await self.proof_of_origin(message_id)
        origin = verify_signed_content(proof, self.directory.state)
        consents = unique([*carried, *await self._grants(origin)])
        if origin.sender != self.ctx.me and forward_requires_consent(origin.content.handling):
            allowed = set(origin.recipients) | {origin.sender} | granted_to(consents)
            missing = [str(t) for t in to if t not in allowed]
            if missing:
                await self.audit.append(
                    self.ctx.now(), user, "forward-refused", f"{message_id} to {','.join(missing)}"
                )
                h = origin.content.handling
                raise ConsentRequired(
                    f"message {message_id} is TLP:{h.tlp.value}"
                    + (" with no onward dissemination" if Restriction.NO_ONWARD in h.restrictions
                       else "")
                    + f"; {origin.sender} (its originator) has not consented to forwarding to"
                    f" {', '.join(missing)}: use request-consent"
                )  # fmt: skip
        copies: list[str] = []
        try:
            for att in held.content.attachments:
                path = self.ctx.blob_path(held.sender, att.blob)
                copies.append((await self.staging.copy(path, att, user=user)).id)
            content = MessageContent(
                kind=Kind.INFORMATION, subject=_fwd(origin.content.subject), body=note,
                language=origin.content.language, urgency=held.content.urgency,
                handling=held.content.handling,  # the holder's, never below the originator's
                case=held.content.case,
                forwarded=Forwarded(proof, tuple(consents[:MAX_CONSENTS])),
            )  # fmt: skip
            mid = await self.outbox.send(to, content, user=user, uploads=copies)
        except BaseException:
            for upload_id in copies:
                with contextlib.suppress(GlobeError):
                    await self.staging.discard(user, upload_id)
            raise
        await self.audit.append(self.ctx.now(), user, "forward", f"{message_id} as {mid}")
        return mid

    async def _grants(self, origin: Origin) -> list[SignedContent]:
        """The originator's granted consent decisions about ``origin`` that reached this node."""
        out = []
        for row in await self.ctx.store.granted_decisions(str(origin.sender)):
            data = self.ctx.cipher.open(row.content, f"content:{row.message_id}")
            c = MessageContent.decode(data).consent
            if (
                c is not None
                and c.message == origin.message_id
                and c.decision is ConsentDecision.GRANTED
                and row.inner_signature is not None
            ):
                header = parse_envelope(row.envelope).header.raw
                out.append(signed_content(header, data, row.inner_signature))
        return out

    async def request_consent(
        self, message_id: str, to: Sequence[AuthorityId], purpose: str, *, user: str
    ) -> MessageId:
        """Ask the *originator* of a held message (not whoever forwarded it here) to consent
        to passing it to ``to`` (§8.5)."""
        proof, _ = await self.proof_of_origin(message_id)
        origin = verify_signed_content(proof, self.directory.state)
        if origin.sender == self.ctx.me:
            raise UsageError(f"this node originated message {message_id}: no consent is needed")
        consent = Consent(origin.message_id, tuple(sorted(to, key=str)), purpose)
        content = MessageContent(
            kind=Kind.CONSENT_REQUEST, subject=_re(origin.content.subject),
            body=f"Consent requested to pass message {origin.message_id} to "
            f"{', '.join(map(str, to))}: {purpose}",
            language=origin.content.language, urgency=origin.content.urgency,
            handling=Handling(Tlp.AMBER), case=origin.content.case, consent=consent,
        )  # fmt: skip
        return await self.outbox.send([origin.sender], content, user=user)
