"""Hub-signed ``rejected`` evidence for genuine envelopes the hub refuses (R11, §9.2)."""

from __future__ import annotations

from hub.routing import RoutingLimits
from protocol import canonical
from protocol.envelope import envelope_hash
from protocol.ids import MessageId
from protocol.keys import SigningKey
from protocol.membership import Action
from protocol.receipts import Evidence, EvidenceKind
from tests.hub.conftest import Hub, HubFactory


def rejected(reply_json: dict[str, object], hub: Hub) -> Evidence:
    data = canonical.b64d(str(reply_json["evidence"]), what="evidence")
    return Evidence.decode(data, hub.genesis)


async def test_refusal_of_a_genuine_envelope_carries_signed_rejection(hub: Hub) -> None:
    fr = await hub.admit("FR-PNF", "Parquet national financier")
    br = await hub.admit("BR-PF", "Policia Federal")
    await hub.set_status(br, Action.REVOKE, "withdrawn")
    envelope = hub.seal(fr, br)
    body = (await hub.send(fr, envelope)).problem(403, "member-not-active")
    ev = rejected(body, hub)
    assert ev.kind is EvidenceKind.REJECTED
    assert ev.reason == "member-not-active"
    assert ev.envelope_hash == envelope_hash(envelope)
    assert [str(r) for r in ev.recipients] == ["BR-PF"]
    assert str(ev.sender) == "FR-PNF"


async def test_conflict_is_rejected_with_evidence(hub: Hub) -> None:
    fr = await hub.admit("FR-PNF", "Parquet national financier")
    br = await hub.admit("BR-PF", "Policia Federal")
    mid = MessageId.new()
    (await hub.send(fr, hub.seal(fr, br, message_id=mid))).ok(201)
    other = hub.seal(fr, br, message_id=mid)
    ev = rejected((await hub.send(fr, other)).problem(409, "conflict"), hub)
    assert (ev.reason, ev.envelope_hash) == ("conflict", envelope_hash(other))


async def test_no_evidence_for_what_the_hub_cannot_attribute_or_will_retry(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub(limits=RoutingLimits(mailbox_count=1))
    fr = await hub.admit("FR-PNF", "Parquet national financier")
    br = await hub.admit("BR-PF", "Policia Federal")
    # A forged inner identity: the outer signature does not verify, nothing to attest.
    forged = hub.seal(fr, br, identity=SigningKey.generate())
    assert "evidence" not in (await hub.send(fr, forged)).problem(403, "not-certified")
    # Garbage is not an envelope at all.
    assert "evidence" not in (await hub.send(fr, b"GLBE")).problem(400, "truncated")
    # A full mailbox is temporary (507): no rejection is decided.
    (await hub.send(fr, hub.seal(fr, br))).ok(201)
    full = (await hub.send(fr, hub.seal(fr, br))).problem(507, "mailbox-full")
    assert "evidence" not in full
