"""The checks of each message in an evidence bundle: signer certified and active *at the time*,
the hub's evidence, the receipts, attachments, forwards, and the export's consent basis
(protocol/custody.py; docs/PROTOCOL.md §9.3.5, §9.3.6)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cache

import pytest

from protocol.bundle import BundleMessage, build_bundle, message_prefix, verify_bundle
from protocol.custody import Timeline, export_requires_consent
from protocol.devnet import CERT_LIFETIME, GENESIS_TIME, DevNetwork
from protocol.errors import MemberNotActive, NotCertified
from protocol.ids import AuthorityId, MessageId
from protocol.keys import SigningKey
from protocol.messages import (
    Attachment,
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    SignedContent,
    Tlp,
    Urgency,
)
from protocol.receipts import EvidenceKind
from tests.vectors import bundle_parts as bp
from tests.vectors.logs import T_REVOKE_DE, T_ROTATE_FR, T_SUSPEND_DE, build_continuation
from tests.vectors.vectorlib import (
    ADMIT_AT,
    NOW,
    REINSTATE_AT,
    SUSPEND_AT,
    HpkePool,
    build_network,
    member,
)

POOL = HpkePool()
GREEN = Handling(Tlp.GREEN)
RED = Handling(Tlp.RED)


@cache
def net() -> DevNetwork:
    """The vector network: ES-FCC suspended from SUSPEND_AT to REINSTATE_AT."""
    return build_network()


def bundle_of(
    n: DevNetwork,
    messages: Sequence[BundleMessage],
    *,
    exporter: str = "FR-PNF",
    at: int = NOW,
    identity: SigningKey | None = None,
    included: bool = True,
) -> bytes:
    return build_bundle(
        genesis=n.genesis, entries=n.entries, checkpoint=bp.checkpoint(n, at), messages=messages,
        exporter=AuthorityId.parse(exporter),
        identity=identity or member(n, exporter).identity, created=at, included=included,
    )  # fmt: skip


def failures(data: bytes) -> list[tuple[str, str | None]]:
    return [(f.slug, f.item) for f in verify_bundle(data).failures]


def sent_to_fr(
    n: DevNetwork, name: str, sender: str, content: MessageContent, created: int
) -> tuple[bp.Sealed, BundleMessage, str]:
    """A message ``sender`` sent FR-PNF, as FR-PNF holds it; its member prefix."""
    s = bp.seal(n, POOL, name, sender=sender, recipients=[("FR-PNF", 1)], content=content,
                created=created)  # fmt: skip
    h = bp.held(n, s, sender, created + 1)
    return s, h, message_prefix(member(n, sender).authority, s.message_id)


# --- the signer at the time ---------------------------------------------------------------------


def test_a_message_signed_while_its_author_was_suspended_is_refused() -> None:
    n = net()
    during = SUSPEND_AT + 100
    _, held, p = sent_to_fr(n, "t/suspended", "ES-FCC", bp.information("x", GREEN), during)
    assert failures(bundle_of(n, [held])) == [("member-not-active", p + "content.json")]
    # before the suspension, and after the reinstatement, the same author is a member
    for t in (SUSPEND_AT - 100, REINSTATE_AT):
        _, held, _ = sent_to_fr(n, f"t/active/{t}", "ES-FCC", bp.information("x", GREEN), t)
        assert failures(bundle_of(n, [held])) == []


def test_a_signer_revoked_before_the_message_is_refused() -> None:
    cont = build_continuation()
    n = cont.net  # DE-BKA suspended, then revoked (T_REVOKE_DE)
    fr_now = cont.fr_identity
    at = T_REVOKE_DE + 200
    s, _, p = sent_to_fr(n, "t/revoked", "DE-BKA", bp.information("x", GREEN), at)
    held = BundleMessage(s.envelope, s.content, s.signature)
    report = verify_bundle(bundle_of(n, [held], at=at + 10, identity=fr_now))
    assert [(f.slug, f.item) for f in report.failures] == [
        ("member-not-active", p + "content.json")
    ]
    assert report.failures[0].detail.startswith("the message: DE-BKA was revoked at ")
    # still a member's message: written before its suspension
    s, _, _ = sent_to_fr(n, "t/early", "DE-BKA", bp.information("x", GREEN), T_SUSPEND_DE - 5)
    early = BundleMessage(s.envelope, s.content, s.signature)
    assert failures(bundle_of(n, [early], at=at + 10, identity=fr_now)) == []
    # FR-PNF's receipt signed with the key it replaced before: not FR-PNF's receipt any more
    late = bp.held(n, s, "DE-BKA", T_ROTATE_FR + 1)
    q = message_prefix(member(n, "DE-BKA").authority, s.message_id)
    assert failures(bundle_of(n, [late], at=at + 10, identity=fr_now)) == [
        ("bad-signature", q + "receipt-FR-PNF.json")
    ]


def test_a_message_dated_before_its_author_was_admitted_is_refused() -> None:
    _, held, p = sent_to_fr(net(), "t/early", "DE-BKA", bp.information("x", GREEN), ADMIT_AT - 1)
    assert failures(bundle_of(net(), [held])) == [("not-certified", p + "content.json")]


def test_a_replaced_key_and_a_key_not_yet_certified_are_refused_at_the_time() -> None:
    cont = build_continuation()
    n = cont.net  # FR-PNF's identity key replaced at T_ROTATE_FR
    old = member(n, "FR-PNF")
    content = MessageContent(
        kind=Kind.INFORMATION, subject="s", body="b", language="en", urgency=Urgency.ROUTINE,
        handling=GREEN,
    )  # fmt: skip
    # the new key dated before it was certified; the old key dated after it was replaced
    for key, t, slug in ((cont.fr_identity, T_ROTATE_FR - 10, "not-certified"),
                         (old.identity, T_ROTATE_FR + 10, "bad-signature")):  # fmt: skip
        s = bp.seal(n, POOL, f"t/key/{t}", sender="FR-PNF", recipients=[("IT-ANAC", 1)],
                    content=content, created=t)  # fmt: skip
        resealed = _resign(n, s, key)
        held = BundleMessage(resealed.envelope, resealed.content, resealed.signature)
        p = message_prefix(old.authority, s.message_id)
        assert failures(bundle_of(n, [held], identity=cont.fr_identity)) == [
            (slug, p + "content.json")
        ], slug


def _resign(n: DevNetwork, s: bp.Sealed, key: SigningKey) -> bp.Sealed:
    """``s`` with its header naming ``key`` and both signatures made with it."""
    from protocol.envelope import content_signature, parse_envelope  # noqa: PLC0415
    from tests.vectors.envelopes import frame, sign_frame  # noqa: PLC0415

    env = parse_envelope(s.envelope)
    header = env.header.raw.replace(
        str(member(n, "FR-PNF").identity.key_id).encode(), str(key.key_id).encode()
    )
    raw = sign_frame(key, frame(header, list(env.wrapped), env.body))
    return bp.Sealed(raw, s.content, content_signature(key, header, s.content))


def test_a_message_after_its_authors_certificate_expired_is_refused() -> None:
    late = ADMIT_AT + CERT_LIFETIME + 5
    s = bp.seal(net(), POOL, "t/expired", sender="DE-BKA", recipients=[("FR-PNF", 1)],
                content=bp.information("x", GREEN), created=late)  # fmt: skip
    held = BundleMessage(s.envelope, s.content, s.signature)
    p = message_prefix(member(net(), "DE-BKA").authority, s.message_id)
    assert failures(bundle_of(net(), [held], at=late)) == [("expired", p + "content.json")]


def test_the_timeline_answers_for_a_time_not_for_today() -> None:
    t = Timeline(net().genesis)
    for e in net().entries:
        t.apply(e)
    es = AuthorityId.parse("ES-FCC")
    assert t.at(es, ADMIT_AT - 1) is None
    assert [t.at(es, x).status.value for x in (ADMIT_AT, SUSPEND_AT, REINSTATE_AT)] == [  # type: ignore[union-attr]
        "active", "suspended", "active",
    ]  # fmt: skip
    key = member(net(), "ES-FCC").identity.key_id
    with pytest.raises(MemberNotActive, match="ES-FCC was suspended at"):
        t.signer_at(es, key, SUSPEND_AT, "x")
    with pytest.raises(NotCertified, match="was not the certified identity key"):
        t.key_at(es, member(net(), "FR-PNF").identity.key_id, NOW, "x")
    assert t.signer_at(es, key, NOW, "x").seq == 6


# --- the hub's evidence and the receipts ----------------------------------------------------------


@cache
def ex() -> bp.Exchange:
    return bp.exchange(net(), POOL)


def request_prefix() -> str:
    return message_prefix(member(net(), "FR-PNF").authority, ex().sealed["request"].message_id)


def test_evidence_about_another_envelope_or_other_recipients_is_refused() -> None:
    n, s = net(), ex().sealed
    wrong = [
        bp.evidence(n, EvidenceKind.DELIVERED, s["ack"], sender="DE-BKA", to=["FR-PNF"],
                    time=NOW - 50),
        bp.evidence(n, EvidenceKind.ACCEPTED, s["request"], sender="FR-PNF",
                    to=["DE-BKA", "IT-ANAC"], time=NOW - 50),
        b"{}",
        bp.evidence(n, EvidenceKind.NON_DELIVERY, s["request"], sender="FR-PNF", to=["DE-BKA"],
                    time=NOW - 50),
    ]  # fmt: skip
    request = dataclasses.replace(ex().request, evidence=tuple(wrong))
    p = request_prefix()
    report = verify_bundle(bundle_of(n, [request]))
    assert [(f.slug, f.item) for f in report.failures] == [
        ("malformed", p + "evidence-1.json"), ("malformed", p + "evidence-2.json"),
        ("malformed", p + "evidence-3.json"),
    ]  # fmt: skip
    ((kind, reason),) = [(e.kind, e.reason) for e in report.messages[0].evidence]
    assert (kind, reason) == ("non-delivery", "expired")


def test_hub_acceptance_while_the_sender_was_suspended_is_refused() -> None:
    n = net()
    s, _, p = sent_to_fr(n, "t/accepted", "ES-FCC", bp.information("x", GREEN), SUSPEND_AT - 10)
    ev = bp.evidence(n, EvidenceKind.ACCEPTED, s, sender="ES-FCC", to=["FR-PNF"],
                     time=SUSPEND_AT + 1)  # fmt: skip
    held = BundleMessage(s.envelope, s.content, s.signature, evidence=(ev,))
    assert failures(bundle_of(n, [held])) == [("member-not-active", p + "evidence-1.json")]


def test_receipts_of_another_envelope_signer_or_time_are_refused() -> None:
    n, s = net(), ex().sealed
    fr, de, it = (member(n, a).authority for a in ("FR-PNF", "DE-BKA", "IT-ANAC"))
    p = request_prefix()
    cases = [
        ((de, bp.receipt(n, "DE-BKA", s["ack"], "DE-BKA", NOW)), "malformed"),  # another envelope
        ((fr, bp.receipt(n, "DE-BKA", s["request"], "FR-PNF", NOW)), "malformed"),  # misnamed
        ((it, bp.receipt(n, "IT-ANAC", s["request"], "FR-PNF", NOW)), "malformed"),  # no recipient
        ((de, bp.receipt(n, "DE-BKA", s["request"], "FR-PNF", ADMIT_AT - 1)), "not-certified"),
        ((de, b"{}"), "malformed"),
    ]
    for (who, data), slug in cases:
        request = dataclasses.replace(ex().request, receipts=((who, data),))
        assert failures(bundle_of(n, [request])) == [(slug, f"{p}receipt-{who}.json")], slug


# --- the envelope, the exporter, the attachments ------------------------------------------------


def test_an_envelope_that_does_not_parse_or_is_another_message_is_refused() -> None:
    p = request_prefix()
    data = bundle_of(net(), [ex().request])
    assert failures(bp.edit(data, p + "envelope.bin", lambda d: b"GLBE")) == [
        ("item-altered", p + "envelope.bin"), ("truncated", p + "envelope.bin"),
    ]  # fmt: skip
    ack = dict(bp.members(bundle_of(net(), [ex().ack])))
    other = next(v for k, v in ack.items() if k.endswith("envelope.bin"))
    assert failures(bp.edit(data, p + "envelope.bin", lambda d: other)) == [
        ("item-altered", p + "envelope.bin"), ("malformed", p + "envelope.bin"),
    ]  # fmt: skip


def test_an_outer_signature_that_does_not_verify_is_refused() -> None:
    p = request_prefix()
    data = bundle_of(net(), [ex().request])
    # the hub's evidence and the receipt name the envelope as it was: not this one
    assert failures(bp.flip(data, p + "envelope.bin", -1)) == [
        ("item-altered", p + "envelope.bin"), ("bad-signature", p + "envelope.bin"),
        ("malformed", p + "evidence-1.json"), ("malformed", p + "evidence-2.json"),
        ("malformed", p + "receipt-DE-BKA.json"),
    ]  # fmt: skip


def test_an_exporter_that_neither_sent_nor_received_a_message_is_refused() -> None:
    data = bundle_of(net(), [ex().request], exporter="IT-ANAC")
    assert failures(data) == [("malformed", request_prefix() + "envelope.bin")]


def test_an_attachment_other_than_the_one_signed_is_refused() -> None:
    p = request_prefix() + "attachment-"
    swapped = dataclasses.replace(ex().request, attachments=(b"another file",))
    assert failures(bundle_of(net(), [swapped])) == [("item-altered", p + "1")]
    none = dataclasses.replace(ex().request, attachments=())
    assert failures(bundle_of(net(), [none])) == [("item-missing", p + "1")]
    two = dataclasses.replace(ex().request, attachments=(*ex().request.attachments, b"extra"))
    assert failures(bundle_of(net(), [two])) == [("malformed", p + "2")]
    # digests only, yet the file is there
    assert failures(bundle_of(net(), [ex().request], included=False)) == [("malformed", p + "1")]


# --- forwards ------------------------------------------------------------------------------------


def _forward_of(n: DevNetwork, origin: bp.Sealed, handling: Handling, name: str) -> BundleMessage:
    """DE-BKA forwarding IT-ANAC's ``origin`` to FR-PNF."""
    proof = SignedContent(_header(origin), origin.content, origin.signature)
    content = MessageContent(
        kind=Kind.INFORMATION, subject="Fwd: analysis", body="From our Italian colleagues.",
        language="en", urgency=Urgency.ROUTINE, handling=handling,
        case=MessageContent.decode(origin.content).case, forwarded=Forwarded(proof),
    )  # fmt: skip
    s = bp.seal(n, POOL, name, sender="DE-BKA", recipients=[("FR-PNF", 5)], content=content,
                created=NOW - 5)  # fmt: skip
    return bp.held(n, s, "DE-BKA", NOW - 4)


def _header(s: bp.Sealed) -> bytes:
    from protocol.envelope import parse_envelope  # noqa: PLC0415

    return parse_envelope(s.envelope).header.raw


def _from_it(handling: Handling, name: str, created: int = NOW - 30) -> bp.Sealed:
    return bp.seal(net(), POOL, name, sender="IT-ANAC", recipients=[("DE-BKA", 2)],
                   content=bp.information("analysis", handling), created=created)  # fmt: skip


def test_a_forward_names_its_original_and_is_checked_as_a_forward() -> None:
    origin = _from_it(GREEN, "t/fwd/origin")
    report = verify_bundle(bundle_of(net(), [_forward_of(net(), origin, GREEN, "t/fwd")]))
    assert report.ok
    fwd = report.messages[0].forwarded
    assert fwd is not None
    assert (fwd.message_id, fwd.sender, fwd.tlp) == (str(origin.message_id), "IT-ANAC", "GREEN")
    assert fwd.signer is not None
    assert fwd.signer.authority == "IT-ANAC"
    assert report.messages[0].basis == "TLP:GREEN; TLP:GREEN"
    assert [m.authority for m in report.members] == ["DE-BKA", "FR-PNF", "IT-ANAC"]
    # lowered on the way: refused as a forward
    amber = _from_it(Handling(Tlp.AMBER), "t/fwd/amber")
    lowered = _forward_of(net(), amber, GREEN, "t/fwd/lowered")
    p = message_prefix(member(net(), "DE-BKA").authority, _mid(lowered))
    assert failures(bundle_of(net(), [lowered])) == [("handling-lowered", p + "content.json")]


def test_a_forwarded_original_is_checked_at_its_own_time() -> None:
    origin = _from_it(GREEN, "t/fwd/early", created=ADMIT_AT - 100)
    fwd = _forward_of(net(), origin, GREEN, "t/fwd/early-fwd")
    p = message_prefix(member(net(), "DE-BKA").authority, _mid(fwd))
    report = verify_bundle(bundle_of(net(), [fwd]))
    assert [(f.slug, f.item) for f in report.failures] == [("not-certified", p + "content.json")]
    assert report.messages[0].forwarded is not None
    assert report.messages[0].forwarded.signer is None


def _mid(m: BundleMessage) -> MessageId:
    from protocol.envelope import parse_envelope  # noqa: PLC0415

    return parse_envelope(m.envelope).header.message_id


# --- the consent basis of an export -----------------------------------------------------------


@pytest.mark.parametrize(
    ("handling", "needs"),
    [
        (Handling(Tlp.CLEAR), False), (Handling(Tlp.GREEN), False), (Handling(Tlp.AMBER), False),
        (Handling(Tlp.AMBER_STRICT), True), (Handling(Tlp.RED), True),
        (Handling(Tlp.GREEN, frozenset({Restriction.NO_ONWARD})), True),
        (Handling(Tlp.AMBER, frozenset({Restriction.INTELLIGENCE_ONLY})), False),
    ],
)  # fmt: skip
def test_which_handling_codes_need_the_originators_consent_to_export(
    handling: Handling, needs: bool
) -> None:
    assert export_requires_consent(handling) is needs


def test_restricted_material_of_another_authority_needs_its_consent_in_the_bundle() -> None:
    n = net()
    s, held, p = sent_to_fr(n, "t/red", "DE-BKA", bp.information("red", RED), NOW - 100)
    report = verify_bundle(bundle_of(n, [held]))
    assert [(f.slug, f.item) for f in report.failures] == [("consent-required", p.rstrip("/"))]
    assert "TLP:RED: the bundle holds no consent of DE-BKA" in report.failures[0].detail
    ask, grant = bp.consent_pair(n, POOL, s, "DE-BKA", at=NOW - 50, name="t/red/consent")
    report = verify_bundle(bundle_of(n, [held, ask, grant]))
    assert report.ok
    basis = {m.kind: m.basis for m in report.messages}
    assert basis["information"] == f"consent {_mid(grant)} of DE-BKA"
    # a grant that does not answer the exporter's own request is no basis for the export
    assert failures(bundle_of(n, [held, grant])) == [("consent-required", p.rstrip("/"))]
    nowarded = bp.information("no onward", Handling(Tlp.GREEN, frozenset({Restriction.NO_ONWARD})))
    _, other, q = sent_to_fr(n, "t/noonward", "DE-BKA", nowarded, NOW - 90)
    report = verify_bundle(bundle_of(n, [other]))
    assert "with no onward dissemination" in report.failures[0].detail
    assert [(f.slug, f.item) for f in report.failures] == [("consent-required", q.rstrip("/"))]
    # the exporter's own restricted material needs nobody's consent
    mine = bp.seal(n, POOL, "t/mine", sender="FR-PNF", recipients=[("DE-BKA", 9)],
                   content=bp.information("mine", RED), created=NOW - 20)  # fmt: skip
    assert (
        failures(bundle_of(n, [BundleMessage(mine.envelope, mine.content, mine.signature)])) == []
    )


def test_a_restricted_original_inside_a_forward_needs_its_originators_consent() -> None:
    n = net()
    origin = _from_it(RED, "t/fwd/red")
    fwd = _forward_of(n, origin, RED, "t/fwd/red-fwd")
    p = message_prefix(member(n, "DE-BKA").authority, _mid(fwd)).rstrip("/")
    # DE-BKA may not forward IT-ANAC's RED message without IT-ANAC's grant: refused as a
    # forward; and FR-PNF may not export DE-BKA's RED forward without DE-BKA's consent
    assert failures(bundle_of(n, [fwd])) == [
        ("consent-required", p + "/content.json"), ("consent-required", p),
    ]  # fmt: skip


def test_attachment_facts_name_the_held_file() -> None:
    report = verify_bundle(bundle_of(net(), [ex().request]))
    (att,) = report.messages[0].attachments
    assert att.item == request_prefix() + "attachment-1"
    assert isinstance(Attachment, type)
    assert GENESIS_TIME < ADMIT_AT


def test_an_export_of_a_restricted_forward_needs_both_authors_consent() -> None:
    n = net()
    origin = _from_it(RED, "t/fwd2/origin")
    fr = member(n, "FR-PNF").authority
    grant_to_fr = MessageContent(
        kind=Kind.CONSENT_DECISION, subject="Re: consent", body="Granted.", language="en",
        urgency=Urgency.ROUTINE, handling=Handling(Tlp.AMBER),
        in_reply_to=origin.message_id,  # answering DE-BKA's request (any id will do here)
        consent=Consent(origin.message_id, (fr,), None, ConsentDecision.GRANTED),
    )  # fmt: skip
    g = bp.seal(n, POOL, "t/fwd2/grant", sender="IT-ANAC", recipients=[("DE-BKA", 3)],
                content=grant_to_fr, created=NOW - 25)  # fmt: skip
    proof = SignedContent(_header(origin), origin.content, origin.signature)
    carried = SignedContent(_header(g), g.content, g.signature)
    content = MessageContent(
        kind=Kind.INFORMATION, subject="Fwd: analysis", body="With IT-ANAC's consent.",
        language="en", urgency=Urgency.ROUTINE, handling=RED,
        forwarded=Forwarded(proof, (carried,)),
    )  # fmt: skip
    s = bp.seal(n, POOL, "t/fwd2", sender="DE-BKA", recipients=[("FR-PNF", 6)], content=content,
                created=NOW - 5)  # fmt: skip
    fwd = bp.held(n, s, "DE-BKA", NOW - 4)
    p = message_prefix(member(n, "DE-BKA").authority, s.message_id).rstrip("/")
    # IT-ANAC consented to FR-PNF *holding* its message, not to FR-PNF exporting it
    report = verify_bundle(bundle_of(n, [fwd]))
    assert [(f.slug, f.item) for f in report.failures] == [
        ("consent-required", p), ("consent-required", p + "/content.json"),
    ]  # fmt: skip
    assert ["of DE-BKA" in f.detail for f in report.failures] == [True, False]
    pairs = [
        *bp.consent_pair(n, POOL, s, "DE-BKA", at=NOW - 3, name="t/fwd2/de"),
        *bp.consent_pair(n, POOL, origin, "IT-ANAC", at=NOW - 3, name="t/fwd2/it"),
    ]
    report = verify_bundle(bundle_of(n, [fwd, *pairs], at=NOW + 30))
    assert report.ok, report.failures
    (forward,) = [m for m in report.messages if m.forwarded is not None]
    assert forward.basis is not None
    assert forward.basis.count("consent ") == 2


def test_a_profile_entry_in_the_slice_changes_no_ones_membership() -> None:
    from protocol.membership import make_checkpoint  # noqa: PLC0415
    from protocol.profile import make_profile, make_profile_entry  # noqa: PLC0415

    n = build_network()
    de = member(n, "DE-BKA")
    profile = make_profile(genesis=n.genesis, authority=de.authority, seq=1, identity=de.identity)
    entry = make_profile_entry(genesis=n.genesis, seq=7, prev=n.directory.head, time=NOW - 1,
                               profile=profile.signed)  # fmt: skip
    n.directory.apply(entry)
    n.entries.append(entry)
    t = Timeline(n.genesis)
    for e in n.entries:
        t.apply(e)
    assert [s.seq for s in t.stages(de.authority)] == [2]
    cp = make_checkpoint(genesis=n.genesis, hub=n.hub, seq=7, head=n.directory.head, time=NOW)
    exchange = bp.exchange(n, POOL)
    assert verify_bundle(exchange.bundle(checkpoint_bytes=cp.signed.encode())).ok
