"""Replies, status updates, forwards and consent (PROTOCOL.md §8.2, §8.3, §8.5).

A reply goes to the sender of the message it answers and moves the request it
answers.  A status update is about a request, and each of its parties reports its
own states (§8.2.1): a recipient acknowledges (with the expected answer date), reports
progress, declines or answers, to the requester; the requester closes, withdraws
(with a reason) or extends the deadline, to every recipient at once.  The request's
rows move by the transition table of :mod:`globe_node.states`, in the transaction
that commits the update.  A forward carries the originator's proof of origin, the
originator's grants and the attachments re-encrypted for the new recipients;
restricted material needs the originator's consent on every hop, asked of the
originator with :meth:`Workflow.request_consent`, and what stands of it (who may
receive the message already, what was asked, what was answered) is
:meth:`Workflow.consents`.  Whatever a message answers or forwards, the new message is
filed where that one is (its case and team).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from globe_node import db
from globe_node.audit import AuditLog
from globe_node.cases import Cases
from globe_node.compartments import visible
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.errors import Conflict, ConsentRequired, NotFound
from globe_node.outbox import Outbox
from globe_node.queries import Queries
from globe_node.states import RequestState, request_transition
from globe_node.store import move_request
from globe_node.uploads import Uploads
from globe_node.users import Principal
from globe_node.workviews import ConsentAnswer, ConsentAsked, ConsentView
from protocol.envelope import parse_envelope
from protocol.errors import GlobeError, UsageError
from protocol.ids import AuthorityId, MessageId
from protocol.messages import (
    MAX_CONSENTS,
    STATUS_SENDER,
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Party,
    Restriction,
    SignedContent,
    StatusState,
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


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def granted_to(consents: Sequence[SignedContent]) -> set[AuthorityId]:
    """Everyone named in these (already verified) consent decisions."""
    out: set[AuthorityId] = set()
    for proof in consents:
        consent = MessageContent.decode(proof.content).consent
        if consent is not None:
            out.update(consent.to)
    return out


def _answer(mid: str, time: int, consent: Consent) -> ConsentAnswer | None:
    """A consent decision as the consent view lists it (``None``: not a decision)."""
    if consent.decision is None:
        return None
    to = tuple(sorted(map(str, consent.to)))
    return ConsentAnswer(mid, consent.decision.value, to, consent.reason, time)


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
        cases: Cases,
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.outbox = outbox
        self.queries = queries
        self.staging = staging
        self.audit = audit
        self.cases = cases

    async def reply(
        self,
        message_id: str,
        *,
        kind: Kind,
        body: str,
        user: str,
        subject: str | None = None,
        uploads: Sequence[str] = (),
        consent: Consent | None = None,
    ) -> MessageId:
        """Answer, inform or consent-decide on a received message (to its sender); an answer
        to a request answers it."""
        held = await self.queries.content_of(message_id)
        if held.direction != "in":
            raise UsageError(
                f"message {message_id} was sent by this node: reply to a received message"
            )
        original = held.content
        sender = AuthorityId.parse(held.sender)
        content = MessageContent(
            kind=kind, subject=subject or _re(original.subject), body=body,
            language=original.language, urgency=original.urgency, handling=original.handling,
            case=original.case, in_reply_to=MessageId.parse(message_id), consent=consent,
        )  # fmt: skip

        def answered(c: Connection, now: int) -> None:
            if original.kind is Kind.REQUEST and kind is Kind.ANSWER:
                move_request(c, message_id, "in", str(sender), event=StatusState.ANSWERED, now=now)

        return await self.outbox.send(
            [sender], content, user=user, uploads=uploads, place=held.place, also=answered
        )

    async def update_status(
        self, message_id: str, status: StatusUpdate, *, body: str, user: str
    ) -> MessageId:
        """Report a request's new state to its other party or parties (§8.2.1): a
        recipient's to the requester, the requester's to every recipient at once."""
        held = await self.queries.content_of(message_id)
        original = held.content
        if original.kind is not Kind.REQUEST:
            raise UsageError(
                f"message {message_id} is {original.kind.value}: a status update is about a"
                " request (give the request's id)"
            )
        party = Party.REQUESTER if held.direction == "out" else Party.RECIPIENT
        allowed = STATUS_SENDER[status.state]
        if allowed is not party:
            raise UsageError(
                f"only the request's {allowed.value} reports {status.state.value}, and this"
                f" node is its {party.value}"
                + (": close, withdraw or extend it instead" if party is Party.REQUESTER
                   else ": acknowledge, report progress, decline or answer it instead")
            )  # fmt: skip
        rows = [
            r for r in await self.ctx.store.request_rows(message_id)
            if r.direction == held.direction
        ]  # fmt: skip
        moving = [
            r for r in rows
            if request_transition(RequestState(r.state), status.state) is not None
        ]  # fmt: skip
        if not moving:
            states = ", ".join(sorted({f"{r.counterpart} {r.state}" for r in rows}))
            raise Conflict(f"request {message_id} is {states}: {status.state.value} does not apply")
        if status.deadline is not None and status.deadline <= max(r.deadline for r in moving):
            current = max(r.deadline for r in moving)
            raise UsageError(f"'deadline' must be later than the current deadline {_iso(current)}")
        to = (
            [AuthorityId.parse(r.counterpart) for r in rows]
            if party is Party.REQUESTER
            else [AuthorityId.parse(held.sender)]
        )
        content = MessageContent(
            kind=Kind.STATUS, subject=_re(original.subject), body=body,
            language=original.language, urgency=original.urgency, handling=original.handling,
            case=original.case, in_reply_to=MessageId.parse(message_id), status=status,
        )  # fmt: skip

        def moved(c: Connection, now: int) -> None:
            for r in moving:
                move_request(
                    c, message_id, r.direction, r.counterpart, event=status.state,
                    expected=status.expected, deadline=status.deadline, now=now,
                )  # fmt: skip

        return await self.outbox.send(to, content, user=user, place=held.place, also=moved)

    async def proof_of_origin(
        self, message_id: str
    ) -> tuple[SignedContent, Sequence[SignedContent]]:
        """What proves where a held message came from (§8.5): for a forward, the origin it
        carries and its consents; else the message itself (received or sent here)."""
        store = self.ctx.store
        row = await store.in_message(message_id)
        out = None if row is not None else await store.out_message(message_id)
        held = row if row is not None else out
        if held is None:
            raise NotFound(f"no message {message_id}")
        if held.purged is not None:
            raise Conflict(
                f"message {message_id} was purged under retention rule {held.purge_rule}: its"
                " signed content is gone, so its origin cannot be proven and it cannot be"
                " forwarded"
            )
        sealed, envelope, signature = held.content, held.envelope, held.inner_signature
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
            mid = await self.outbox.send(to, content, user=user, uploads=copies, place=held.place)
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

    async def consents(self, message_id: str, who: Principal) -> ConsentView:
        """What stands of the consent about a held message's onward use (§8.5): its
        originator, whether a forward to anyone but ``allowed`` (the originator, the
        recipients it named, those its grants name) would be refused, the consent requests
        this node sent about it (that ``who`` sees) with the originator's answers, and, for
        a consent request this node received, the answers this node gave."""
        proof, carried = await self.proof_of_origin(message_id)
        origin = verify_signed_content(proof, self.directory.state)
        grants = unique([*carried, *await self._grants(origin)])
        allowed = set(origin.recipients) | {origin.sender} | granted_to(grants)
        out, inbox = db.OutMessage, db.InMessage
        sender = str(origin.sender)
        async with self.ctx.store.read() as s:
            asked = [
                (mid, time, c) for mid, time, c, _ in await self._consent_rows(
                    s, out, out.kind == Kind.CONSENT_REQUEST.value, visible(who, out.team),
                    exists().where(db.OutRecipient.message_id == out.message_id,
                                   db.OutRecipient.recipient == sender),
                )
                if c.message == origin.message_id
            ]  # fmt: skip
            answered = await self._consent_rows(
                s, inbox, inbox.kind == Kind.CONSENT_DECISION.value, inbox.sender == sender,
                inbox.in_reply_to.in_([mid for mid, _, _ in asked]), visible(who, inbox.team),
            )  # fmt: skip
            given = await self._consent_rows(
                s, out, out.kind == Kind.CONSENT_DECISION.value, out.in_reply_to == message_id,
                visible(who, out.team),
            )  # fmt: skip
        answers = {
            reply: a for mid, time, c, reply in answered if (a := _answer(mid, time, c)) is not None
        }
        return ConsentView(
            message_id, sender, str(origin.message_id),
            origin.sender != self.ctx.me and forward_requires_consent(origin.content.handling),
            tuple(sorted(str(a) for a in allowed)),
            tuple(
                ConsentAsked(mid, tuple(sorted(map(str, c.to))), c.purpose, time,
                             answers.get(mid))
                for mid, time, c in asked
            ),
            tuple(a for mid, time, c, _ in given if (a := _answer(mid, time, c)) is not None),
        )  # fmt: skip

    async def _consent_rows(
        self,
        s: AsyncSession,
        model: type[db.OutMessage] | type[db.InMessage],
        *where: ColumnElement[bool],
    ) -> list[tuple[str, int, Consent, str | None]]:
        """(id, time, consent, the message it replies to) of the consent requests or
        decisions among ``model``'s rows that ``where`` selects, oldest first."""
        time = db.OutMessage.created if model is db.OutMessage else db.InMessage.received
        rows = await s.execute(
            select(model.message_id, time, model.content, model.in_reply_to)
            .where(*where, model.purged.is_(None))
            .order_by(time, model.message_id)
        )
        out = []
        for mid, when, sealed, reply in rows.all():
            consent = MessageContent.decode(self.ctx.cipher.open(sealed, f"content:{mid}")).consent
            if consent is not None:
                out.append((mid, when, consent, reply))
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
        place = await self.cases.placement_of(message_id)
        return await self.outbox.send([origin.sender], content, user=user, place=place)
