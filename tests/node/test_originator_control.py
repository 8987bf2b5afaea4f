"""Originator control on every hop (PROTOCOL.md §8.5), on a real hub and four nodes.

Spain originates RED material with an attachment and sends it to France.  France
may pass it to Italy only with Spain's consent; Italy may pass it on to Germany
only with Spain's consent too — never France's.  Each forward carries Spain's
signed message and Spain's signed grants; each receiving node checks them; the
attachment travels re-encrypted, byte for byte the one Spain signed for.  Forged
chains are refused by the receiving node whatever the forwarder claims.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from sqlalchemy import select

from globe_node import db
from protocol.envelope import SealTo, seal_envelope
from protocol.errors import (
    BadSignature,
    ConsentRequired,
    HandlingLowered,
    MalformedError,
)
from protocol.messages import (
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    SignedContent,
    Tlp,
)
from protocol.origin import verify_forward
from tests.node.helpers import delivered, info
from tests.node.network import Net, RunningNode, stage
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

RED = Handling(Tlp.RED, frozenset({Restriction.NO_ONWARD}))


async def received(rn: RunningNode, mid: str) -> MessageContent:
    await eventually(lambda: _has(rn, mid))
    return (await rn.n.content_of(mid)).content


async def _has(rn: RunningNode, mid: str) -> bool:
    return any(m.id == mid for m in await rn.n.inbox(limit=1000))


async def consent_from(
    originator: RunningNode, asker: RunningNode, mid: str, to: list[str]
) -> None:
    """``asker`` asks the originator of ``mid`` for consent; the originator grants it."""
    st, asked = await asker.api(
        "POST", f"/api/messages/{mid}/request-consent", {"to": to, "purpose": "joint team"}
    )
    assert st == 201, asked
    request = await received(originator, asked["id"])  # the originator itself is asked
    assert request.kind is Kind.CONSENT_REQUEST
    st, granted = await originator.api(
        "POST", f"/api/messages/{asked['id']}/consent", {"decision": "granted"}
    )
    assert st == 201, granted
    await eventually(lambda: delivered(originator, granted["id"], asker))


@pytest.fixture
async def four(net: Net) -> tuple[RunningNode, RunningNode, RunningNode, RunningNode]:
    es = await net.member("ES-FCC", "Fiscalia contra la Corrupcion")
    fr = await net.member("FR-PNF", "Parquet national financier")
    it = await net.member("IT-ANAC", "Autorita Nazionale Anticorruzione")
    de = await net.member("DE-BKA", "Bundeskriminalamt")
    return es, fr, it, de


async def test_consent_comes_from_the_originator_on_every_hop(
    four: tuple[RunningNode, RunningNode, RunningNode, RunningNode],
) -> None:
    es, fr, it, de = four
    data = os.urandom(300_000)
    upload = await stage(es.n, data, name="ledger.xlsx", user="alice")
    original = str(
        await es.n.send([fr.me], info("Accounts", handling=RED), user="alice", uploads=[upload])
    )
    await eventually(lambda: delivered(es, original, fr))
    # its originator needs no one's consent, and is told so
    st, own = await es.api(
        "POST", f"/api/messages/{original}/request-consent", {"to": ["IT-ANAC"], "purpose": "p"}
    )
    assert (st, own["type"].rsplit("/", 1)[1], own["detail"]) == (
        400, "usage", f"this node originated message {original}: no consent is needed"
    )  # fmt: skip

    # France may not pass it on without Spain's consent
    st, refused = await fr.api("POST", f"/api/messages/{original}/forward", {"to": ["IT-ANAC"]})
    assert st == 403
    assert refused["type"].endswith("/consent-required")
    assert (
        "ES-FCC (its originator) has not consented to forwarding to IT-ANAC" in (refused["detail"])
    )
    await consent_from(es, fr, original, ["IT-ANAC"])
    st, hop1 = await fr.api("POST", f"/api/messages/{original}/forward", {"to": ["IT-ANAC"]})
    assert st == 201, hop1
    at_italy = await received(it, hop1["id"])
    assert at_italy.forwarded is not None
    assert at_italy.handling == RED
    origin = verify_forward(at_italy, forwarder=fr.me, recipient=it.me, directory=it.n.state)
    assert (origin.sender, str(origin.message_id)) == (es.me, original)
    assert origin.content.subject == "Accounts"
    # the attachment came along, re-encrypted under a new blob, byte for byte the original
    assert at_italy.attachments[0].blob != origin.content.attachments[0].blob
    assert b"".join([c async for c in it.n.attachment_chunks(hop1["id"], 0)]) == data

    # Italy's forward to Germany needs Spain's consent, not France's
    st, refused = await it.api("POST", f"/api/messages/{hop1['id']}/forward", {"to": ["DE-BKA"]})
    assert st == 403
    assert (
        "ES-FCC (its originator) has not consented to forwarding to DE-BKA" in (refused["detail"])
    )
    assert "FR-PNF" not in refused["detail"]
    await consent_from(es, it, hop1["id"], ["DE-BKA"])  # asked of Spain, about Spain's id
    async with es.n.sessions() as s:
        asks = (
            await s.execute(
                select(db.InMessage.sender).where(db.InMessage.kind == Kind.CONSENT_REQUEST.value)
            )
        ).scalars()
        assert sorted(asks) == ["FR-PNF", "IT-ANAC"]
    st, hop2 = await it.api("POST", f"/api/messages/{hop1['id']}/forward", {"to": ["DE-BKA"]})
    assert st == 201, hop2
    at_germany = await received(de, hop2["id"])
    assert at_germany.forwarded is not None
    assert at_germany.forwarded.origin == at_italy.forwarded.origin  # flattened: Spain's
    assert len(at_germany.forwarded.consents) == 2  # Italy's grant and Germany's
    assert b"".join([c async for c in de.n.attachment_chunks(hop2["id"], 0)]) == data
    # the API shows who originated it
    st, shown = await de.api("GET", f"/api/messages/{hop2['id']}")
    assert shown["content"]["forwarded"]["originator"] == "ES-FCC"
    assert shown["content"]["forwarded"]["message"] == original
    assert shown["content"]["forwarded"]["content"]["subject"] == "Accounts"

    # France was an original recipient: Germany may pass it back without a new grant
    st, back = await de.api("POST", f"/api/messages/{hop2['id']}/forward", {"to": ["FR-PNF"]})
    assert st == 201, back


async def test_clear_material_forwards_without_consent_but_keeps_its_origin(
    four: tuple[RunningNode, RunningNode, RunningNode, RunningNode],
) -> None:
    es, fr, it, _ = four
    mid = str(await es.n.send([fr.me], info("Bulletin", handling=Handling(Tlp.CLEAR))))
    await eventually(lambda: delivered(es, mid, fr))
    st, fwd = await fr.api(
        "POST", f"/api/messages/{mid}/forward", {"to": ["IT-ANAC"], "note": "FYI"}
    )
    assert st == 201, fwd
    got = await received(it, fwd["id"])
    assert got.body == "FYI"
    assert got.forwarded is not None
    assert verify_forward(got, forwarder=fr.me, recipient=it.me, directory=it.n.state).sender == (
        es.me
    )


async def test_a_forward_never_silently_drops_an_attachment(
    four: tuple[RunningNode, RunningNode, RunningNode, RunningNode],
) -> None:
    es, fr, _, _ = four
    upload = await stage(es.n, b"evidence" * 1000, name="e.bin", user="alice")
    mid = str(
        await es.n.send(
            [fr.me], info("With file", handling=Handling(Tlp.GREEN)), user="alice",
            uploads=[upload],
        )
    )  # fmt: skip
    await eventually(lambda: delivered(es, mid, fr))
    _, content, _ = await fr.n.content_of(mid)
    fr.n.blob_path(es.me, content.attachments[0].blob).unlink()  # the file is gone
    st, refused = await fr.api("POST", f"/api/messages/{mid}/forward", {"to": ["IT-ANAC"]})
    assert (st, refused["type"].rsplit("/", 1)[1]) == (409, "state-conflict")
    assert "the forward would be partial" in refused["detail"]
    assert [m for m in await fr.n.outbox() if m.kind == "information"] == []
    assert await fr.n.staging.staged("alice") == []


# --- forged chains, refused by the receiving node ----------------------------------------


def seal_content(sender: RunningNode, to: RunningNode, content: MessageContent) -> bytes:
    n = sender.n
    now = n.now()
    return seal_envelope(
        genesis=n.genesis, sender=n.me, identity=sender.keys.identity,
        recipients=[SealTo(to.me, 1, to.keys.ka.public_key)], content=content.encode(),
        created=now, expires=now + 3600, dir_seq=n.state.seq, dir_head=n.state.head,
        blobs=[a.blob for a in content.attachments],
    )  # fmt: skip


async def test_forged_forwards_are_refused_by_the_recipient(
    four: tuple[RunningNode, RunningNode, RunningNode, RunningNode],
) -> None:
    es, fr, it, de = four
    mid = str(await es.n.send([fr.me], info("Secret", handling=RED)))
    await eventually(lambda: delivered(es, mid, fr))
    proof, _ = await fr.n.proof_of_origin(mid)

    def forward(**kw: object) -> MessageContent:
        base = info("Fwd: Secret", handling=RED, forwarded=Forwarded(proof))
        return dataclasses.replace(base, **kw)  # type: ignore[arg-type]

    # France forwards to Italy without any consent: Italy refuses it itself
    with pytest.raises(ConsentRequired) as no_consent:
        await it.n.receive(seal_content(fr, it, forward()), via="hub")
    assert "has not consented to IT-ANAC (recipient)" in no_consent.value.detail
    # a lowered handling code
    with pytest.raises(HandlingLowered):
        await it.n.receive(seal_content(fr, it, forward(handling=Handling(Tlp.GREEN))), via="hub")
    # a consent "granted" by France, not by the originator
    fake = await _decision(fr, it, mid)
    with pytest.raises(MalformedError) as err:
        await it.n.receive(
            seal_content(fr, it, forward(forwarded=Forwarded(proof, (fake,)))), via="hub"
        )
    assert err.value.detail == (
        "forward: a consent it carries is not the originator's grant for this message"
    )
    # the origin's content altered after signing
    altered = SignedContent(proof.header, proof.content.replace(b"Secret", b"Public"),
                            proof.signature)  # fmt: skip
    with pytest.raises(BadSignature):
        await it.n.receive(seal_content(fr, it, forward(forwarded=Forwarded(altered))), via="hub")
    # an origin that is itself a forward
    nested_origin = await _forward_proof(fr, it, proof)
    with pytest.raises(MalformedError) as err:
        await de.n.receive(
            seal_content(it, de, forward(forwarded=Forwarded(nested_origin))), via="hub"
        )
    assert err.value.detail == "forward: it carries the original message, not another forward"
    assert await it.n.inbox() == []
    assert await de.n.inbox() == []


async def _decision(signer: RunningNode, to: RunningNode, about: str) -> SignedContent:
    """A consent decision for ``about`` granting ``to``, signed by ``signer``."""
    from protocol.envelope import content_signature, parse_envelope  # noqa: PLC0415
    from protocol.ids import MessageId  # noqa: PLC0415

    content = MessageContent(
        kind=Kind.CONSENT_DECISION, subject="ok", body="granted", language="en",
        urgency=info().urgency, handling=Handling(Tlp.AMBER), in_reply_to=MessageId.new(),
        consent=Consent(MessageId.parse(about), (to.me,), None, ConsentDecision.GRANTED),
    )  # fmt: skip
    envelope = seal_content(signer, to, content)
    header = parse_envelope(envelope).header.raw
    data = content.encode()
    return SignedContent(header, data, content_signature(signer.keys.identity, header, data))


async def _forward_proof(
    signer: RunningNode, to: RunningNode, origin: SignedContent
) -> SignedContent:
    from protocol.envelope import content_signature, parse_envelope  # noqa: PLC0415

    content = info("Fwd", handling=RED, forwarded=Forwarded(origin))
    envelope = seal_content(signer, to, content)
    header = parse_envelope(envelope).header.raw
    data = content.encode()
    return SignedContent(header, data, content_signature(signer.keys.identity, header, data))
