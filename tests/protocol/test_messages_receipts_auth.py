"""Message kinds, handling, receipts, hub evidence, request authentication and replay rules."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from protocol import canonical, crypto, labels
from protocol.canonical import b64e
from protocol.devnet import GENESIS_TIME, DevNetwork
from protocol.errors import (
    AuthError,
    BadSignature,
    ConflictError,
    InvalidIdentifier,
    MalformedError,
    ReplayError,
    StaleError,
    UnknownField,
    UnknownMember,
    UnsupportedVersion,
    UsageError,
)
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.keys import SigningKey
from protocol.membership import Action, make_action
from protocol.messages import (
    Attachment,
    Consent,
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
    forward_requires_consent,
)
from protocol.receipts import (
    DeliveryReceipt,
    Evidence,
    EvidenceKind,
    make_evidence,
    make_receipt,
)
from protocol.replay import NonceWindow, SeenSet, SeenVerdict, classify_seen, classify_seq
from protocol.requestauth import (
    HUB_AUDIENCE,
    MAX_SKEW,
    RequestAuth,
    parse_request_auth,
    sign_request,
    verify_request,
)
from protocol.signed import sign_object

NOW = GENESIS_TIME + 7200
FR = AuthorityId.parse("FR-PNF")
DE = AuthorityId.parse("DE-BKA")
ES = AuthorityId.parse("ES-FCC")
GB = AuthorityId.parse("GB-SFO")
MID = MessageId(bytes(range(16)))
OTHER_MID = MessageId(b"\xaa" * 16)
ENV_HASH = crypto.sha256(b"envelope bytes")

# --- message content -----------------------------------------------------------------------------


def _attachment(**overrides: Any) -> Attachment:
    args: dict[str, Any] = {
        "name": "bank statements 2024.pdf",
        "size": 123_456,
        "media_type": "application/pdf",
        "sha256": crypto.sha256(b"file"),
        "key": b"\x01" * 32,
        "blob": "0123456789abcdef0123456789abcdef",
    }
    args.update(overrides)
    return Attachment(**args)


def _msg(**overrides: Any) -> MessageContent:
    args: dict[str, Any] = {
        "kind": Kind.INFORMATION,
        "subject": "Payments through shell companies",
        "body": "Details follow.\n\tLine two.",
        "language": "en",
        "urgency": Urgency.ROUTINE,
        "handling": Handling(Tlp.AMBER, frozenset({Restriction.INTELLIGENCE_ONLY})),
    }
    args.update(overrides)
    return MessageContent(**args)


def _raw(m: MessageContent) -> bytes:
    """The canonical bytes ``m`` would encode to, without checking any rule."""
    out: dict[str, object] = {
        "type": "message",
        "v": 1,
        "kind": m.kind.value,
        "subject": m.subject,
        "body": m.body,
        "language": m.language,
        "urgency": m.urgency.value,
        "handling": m.handling.to_json(),
    }
    if m.case is not None:
        out["case"] = m.case
    if m.in_reply_to is not None:
        out["in_reply_to"] = str(m.in_reply_to)
    if m.deadline is not None:
        out["deadline"] = m.deadline
    if m.attachments:
        out["attachments"] = [a.to_json() for a in m.attachments]
    if m.status is not None:
        out["status"] = m.status.to_json()
    if m.consent is not None:
        out["consent"] = m.consent.to_json()
    return canonical.encode(out)


_REQUEST_CONSENT = Consent(MID, (DE, ES), purpose="Use as evidence in case 12/2026")

_VALID: list[tuple[str, MessageContent]] = [
    ("information", _msg()),
    (
        "information with everything",
        _msg(case="PNF/2026-17", attachments=(_attachment(), _attachment(name="b.csv"))),
    ),
    ("request", _msg(kind=Kind.REQUEST, urgency=Urgency.URGENT, deadline=NOW + 86400)),
    ("request without deadline", _msg(kind=Kind.REQUEST)),
    ("answer", _msg(kind=Kind.ANSWER, in_reply_to=MID)),
    (
        "status acknowledged",
        _msg(
            kind=Kind.STATUS,
            in_reply_to=MID,
            status=StatusUpdate(StatusState.ACKNOWLEDGED, expected=NOW + 3600),
        ),
    ),
    (
        "status declined",
        _msg(
            kind=Kind.STATUS,
            in_reply_to=MID,
            status=StatusUpdate(StatusState.DECLINED, reason="Outside our competence.\nSorry."),
        ),
    ),
    (
        "status in progress",
        _msg(kind=Kind.STATUS, in_reply_to=MID, status=StatusUpdate(StatusState.IN_PROGRESS)),
    ),
    ("consent request", _msg(kind=Kind.CONSENT_REQUEST, consent=_REQUEST_CONSENT)),
    (
        "consent granted",
        _msg(
            kind=Kind.CONSENT_DECISION,
            in_reply_to=MID,
            consent=Consent(MID, (DE,), decision=ConsentDecision.GRANTED),
        ),
    ),
    (
        "consent refused",
        _msg(
            kind=Kind.CONSENT_DECISION,
            in_reply_to=MID,
            consent=Consent(MID, (DE,), decision=ConsentDecision.REFUSED, reason="Ongoing"),
        ),
    ),
    ("bulletin", _msg(kind=Kind.BULLETIN, handling=Handling(Tlp.CLEAR))),
]


@pytest.mark.parametrize("message", [v[1] for v in _VALID], ids=[v[0] for v in _VALID])
def test_valid_messages_round_trip(message):
    data = message.encode()
    assert data == _raw(message)
    assert MessageContent.decode(data) == message


def test_message_exact_bytes():
    m = _msg(handling=Handling(Tlp.RED), body="b", subject="s")
    assert m.encode() == (
        b'{"body":"b","handling":{"restrictions":[],"tlp":"RED"},"kind":"information",'
        b'"language":"en","subject":"s","type":"message","urgency":"routine","v":1}'
    )


_RULES: list[tuple[str, MessageContent]] = [
    ("answer without in_reply_to", _msg(kind=Kind.ANSWER)),
    (
        "status without in_reply_to",
        _msg(kind=Kind.STATUS, status=StatusUpdate(StatusState.IN_PROGRESS)),
    ),
    (
        "consent decision without in_reply_to",
        _msg(
            kind=Kind.CONSENT_DECISION,
            consent=Consent(MID, (DE,), decision=ConsentDecision.GRANTED),
        ),
    ),
    ("status kind without status", _msg(kind=Kind.STATUS, in_reply_to=MID)),
    ("status object on information", _msg(status=StatusUpdate(StatusState.CLOSED))),
    (
        "status object on answer",
        _msg(kind=Kind.ANSWER, in_reply_to=MID, status=StatusUpdate(StatusState.CLOSED)),
    ),
    ("consent object on request", _msg(kind=Kind.REQUEST, consent=_REQUEST_CONSENT)),
    ("consent request without consent", _msg(kind=Kind.CONSENT_REQUEST)),
    (
        "consent decision without consent",
        _msg(kind=Kind.CONSENT_DECISION, in_reply_to=MID),
    ),
    (
        "acknowledged without expected",
        _msg(kind=Kind.STATUS, in_reply_to=MID, status=StatusUpdate(StatusState.ACKNOWLEDGED)),
    ),
    (
        "declined without reason",
        _msg(kind=Kind.STATUS, in_reply_to=MID, status=StatusUpdate(StatusState.DECLINED)),
    ),
    ("deadline on information", _msg(deadline=NOW)),
    ("deadline on answer", _msg(kind=Kind.ANSWER, in_reply_to=MID, deadline=NOW)),
    ("deadline on bulletin", _msg(kind=Kind.BULLETIN, deadline=NOW)),
    (
        "consent request without purpose",
        _msg(kind=Kind.CONSENT_REQUEST, consent=Consent(MID, (DE,))),
    ),
    (
        "consent request with a decision",
        _msg(
            kind=Kind.CONSENT_REQUEST,
            consent=Consent(MID, (DE,), purpose="p", decision=ConsentDecision.GRANTED),
        ),
    ),
    (
        "consent decision without decision",
        _msg(kind=Kind.CONSENT_DECISION, in_reply_to=MID, consent=Consent(MID, (DE,))),
    ),
    (
        "refused consent without reason",
        _msg(
            kind=Kind.CONSENT_DECISION,
            in_reply_to=MID,
            consent=Consent(MID, (DE,), decision=ConsentDecision.REFUSED),
        ),
    ),
]


@pytest.mark.parametrize("message", [r[1] for r in _RULES], ids=[r[0] for r in _RULES])
def test_kind_rules(message):
    with pytest.raises(UsageError):
        message.encode()
    with pytest.raises(MalformedError) as info:
        MessageContent.decode(_raw(message))
    assert type(info.value) is MalformedError


_FIELDS: list[tuple[str, MessageContent]] = [
    ("attachment name with slash", _msg(attachments=(_attachment(name="../etc/passwd"),))),
    ("attachment name with backslash", _msg(attachments=(_attachment(name="a\\b.pdf"),))),
    ("attachment name with NUL", _msg(attachments=(_attachment(name="a\x00.pdf"),))),
    ("attachment name with newline", _msg(attachments=(_attachment(name="a\n.pdf"),))),
    ("attachment name with DEL", _msg(attachments=(_attachment(name="a\x7f.pdf"),))),
    ("attachment name dot", _msg(attachments=(_attachment(name="."),))),
    ("attachment name dot-dot", _msg(attachments=(_attachment(name=".."),))),
    ("attachment name empty", _msg(attachments=(_attachment(name=""),))),
    ("attachment name too long", _msg(attachments=(_attachment(name="a" * 256),))),
    ("media type upper case", _msg(attachments=(_attachment(media_type="Application/PDF"),))),
    ("media type without subtype", _msg(attachments=(_attachment(media_type="text"),))),
    ("media type with parameter", _msg(attachments=(_attachment(media_type="text/plain; q=1"),))),
    ("media type two slashes", _msg(attachments=(_attachment(media_type="a/b/c"),))),
    ("media type empty subtype", _msg(attachments=(_attachment(media_type="text/"),))),
    ("attachment key too short", _msg(attachments=(_attachment(key=b"\x01" * 31),))),
    ("attachment sha256 too long", _msg(attachments=(_attachment(sha256=b"\x01" * 33),))),
    ("language upper case", _msg(language="EN")),
    ("language three letters", _msg(language="eng")),
    ("subject empty", _msg(subject="")),
    ("subject with newline", _msg(subject="two\nlines")),
    ("subject with bidi override", _msg(subject="invoice \u202efdp.exe")),
    ("subject too long", _msg(subject="s" * 301)),
    ("case with space", _msg(case="PNF 17")),
    ("case starting with slash", _msg(case="/PNF")),
    ("case too long", _msg(case="C" * 65)),
    (
        "consent with duplicate recipients",
        _msg(kind=Kind.CONSENT_REQUEST, consent=Consent(MID, (DE, DE), purpose="p")),
    ),
    (
        "consent without recipients",
        _msg(kind=Kind.CONSENT_REQUEST, consent=Consent(MID, (), purpose="p")),
    ),
]


def test_attachment_blob_id_on_decode():
    message = _msg(attachments=(_attachment(blob="A" * 32),))
    with pytest.raises(InvalidIdentifier):
        MessageContent.decode(_raw(message))


@pytest.mark.parametrize("message", [f[1] for f in _FIELDS], ids=[f[0] for f in _FIELDS])
def test_field_rules_on_decode(message):
    with pytest.raises(MalformedError) as info:
        MessageContent.decode(_raw(message))
    assert type(info.value) is MalformedError


@pytest.mark.parametrize("message", [f[1] for f in _FIELDS], ids=[f[0] for f in _FIELDS])
def test_field_rules_on_encode_are_usage_errors(message):
    # A locally built bad value is the caller's error, never a remote ProtocolError.
    with pytest.raises(UsageError):
        message.encode()


def test_attachment_blob_id_on_encode_is_usage_error():
    with pytest.raises(UsageError):
        _msg(attachments=(_attachment(blob="A" * 32),)).encode()


def test_lone_surrogate_in_body_is_usage_error():
    with pytest.raises(UsageError):
        _msg(body="file name \udcff").encode()


@pytest.mark.parametrize(
    "name",
    [
        "invoice\u202efdp.exe",  # displays as "invoiceexe.pdf"
        "report\u200b.pdf",
        "scan\u2066.pdf",
        "c1\x85.pdf",
        "bom\ufeff.pdf",
    ],
)
def test_attachment_name_refuses_invisible_characters(name):
    message = _msg(attachments=(_attachment(name=name),))
    with pytest.raises(MalformedError):
        MessageContent.decode(_raw(message))
    with pytest.raises(UsageError):
        message.encode()


@pytest.mark.parametrize(
    "name", ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.pdf", "a\u200db.pdf"]
)
def test_attachment_name_allows_joiners(name):
    message = _msg(attachments=(_attachment(name=name),))
    assert MessageContent.decode(message.encode()) == message


def _edit(message: MessageContent, edit: Any) -> bytes:
    obj = canonical.decode(message.encode(), max_size=1 << 20, what="m")
    edit(obj)
    return canonical.encode(obj)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda o: o.__setitem__("type", "envelope"), MalformedError),
        (lambda o: o.__setitem__("v", 2), UnsupportedVersion),
        (lambda o: o.__setitem__("kind", "gossip"), MalformedError),
        (lambda o: o.__setitem__("urgency", "now"), MalformedError),
        (lambda o: o["handling"].__setitem__("tlp", "WHITE"), MalformedError),
        (lambda o: o["handling"].__setitem__("tlp", "amber"), MalformedError),
        (lambda o: o["handling"].__setitem__("restrictions", ["secret"]), MalformedError),
        (
            lambda o: o["handling"].__setitem__(
                "restrictions", ["no-onward-dissemination", "intelligence-only"]
            ),
            MalformedError,
        ),
        (
            lambda o: o["handling"].__setitem__(
                "restrictions", ["intelligence-only", "intelligence-only"]
            ),
            MalformedError,
        ),
        (lambda o: o["handling"].__setitem__("label", "x"), UnknownField),
        (lambda o: o.__setitem__("priority", 1), UnknownField),
        (lambda o: o.__delitem__("body"), MalformedError),
        (lambda o: o.__delitem__("handling"), MalformedError),
        (lambda o: o.__setitem__("in_reply_to", "not-an-id"), InvalidIdentifier),
        (lambda o: o.__setitem__("attachments", []), MalformedError),
        (lambda o: o.__setitem__("deadline", "tomorrow"), MalformedError),
    ],
)
def test_message_fields_edited(edit, error):
    with pytest.raises(error) as info:
        MessageContent.decode(_edit(_msg(), edit))
    assert type(info.value) is error


def test_consent_recipients_must_be_sorted_and_valid():
    data = _raw(_msg(kind=Kind.CONSENT_REQUEST, consent=_REQUEST_CONSENT))
    swapped = data.replace(b'"to":["DE-BKA","ES-FCC"]', b'"to":["ES-FCC","DE-BKA"]')
    assert swapped != data
    with pytest.raises(MalformedError):
        MessageContent.decode(swapped)
    bad = data.replace(b'"to":["DE-BKA","ES-FCC"]', b'"to":["DE-BKA","es-fcc"]')
    with pytest.raises(InvalidIdentifier):
        MessageContent.decode(bad)


_HANDLINGS = [
    (tlp, frozenset(r))
    for tlp in Tlp
    for r in ((), (Restriction.INTELLIGENCE_ONLY,), (Restriction.NO_ONWARD,), tuple(Restriction))
]


@pytest.mark.parametrize(
    ("tlp", "restrictions"),
    _HANDLINGS,
    ids=[f"{t.value}-{'+'.join(sorted(r.value for r in rs)) or 'none'}" for t, rs in _HANDLINGS],
)
def test_forward_requires_consent(tlp, restrictions):
    expected = {
        Tlp.CLEAR: False,
        Tlp.GREEN: False,
        Tlp.AMBER: True,
        Tlp.AMBER_STRICT: True,
        Tlp.RED: True,
    }[tlp] or Restriction.NO_ONWARD in restrictions
    assert forward_requires_consent(Handling(tlp, restrictions)) is expected


def test_forward_requires_consent_table_size():
    assert len(_HANDLINGS) == 20
    assert sum(forward_requires_consent(Handling(t, r)) for t, r in _HANDLINGS) == 16


# --- delivery receipts ---------------------------------------------------------------------------


def _receipt_payload(net: DevNetwork, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "receipt",
        "v": 1,
        "network": b64e(net.genesis.digest),
        "id": str(MID),
        "envelope": b64e(ENV_HASH),
        "sender": "FR-PNF",
        "recipient": "DE-BKA",
        "key": str(net.members["DE-BKA"].identity.key_id),
        "time": NOW,
    }
    payload.update(overrides)
    return payload


def _receipt(
    net: DevNetwork, identity: SigningKey, recipient: AuthorityId = DE, time: int = NOW
) -> bytes:
    return make_receipt(
        genesis=net.genesis,
        identity=identity,
        message_id=MID,
        envelope_hash=ENV_HASH,
        sender=FR,
        recipient=recipient,
        time=time,
    ).encode()


def test_receipt_round_trip(net):
    de = net.members["DE-BKA"]
    data = _receipt(net, de.identity)
    assert data == sign_object(_receipt_payload(net), labels.RECEIPT, [de.identity]).encode()
    receipt = DeliveryReceipt.decode(data, net.directory)
    assert receipt.message_id == MID
    assert receipt.envelope_hash == ENV_HASH
    assert (receipt.sender, receipt.recipient) == (FR, DE)
    assert receipt.key == de.identity.key_id
    assert receipt.time == NOW
    assert receipt.matches(MID, ENV_HASH)
    assert not receipt.matches(OTHER_MID, ENV_HASH)
    assert not receipt.matches(MID, crypto.sha256(b"other bytes"))


def _signed_receipt(
    net: DevNetwork, signers: list[str], label: bytes = labels.RECEIPT, **kw: Any
) -> bytes:
    keys = {
        "de identity": net.members["DE-BKA"].identity,
        "de transport": net.members["DE-BKA"].transport,
        "fr identity": net.members["FR-PNF"].identity,
        "hub": net.hub,
    }
    return sign_object(_receipt_payload(net, **kw), label, [keys[s] for s in signers]).encode()


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda n: _receipt(n, n.members["DE-BKA"].transport), BadSignature),
        (lambda n: _receipt(n, n.members["FR-PNF"].identity), BadSignature),
        (lambda n: _receipt(n, n.hub), BadSignature),
        (lambda n: _signed_receipt(n, ["de transport"]), BadSignature),
        (
            lambda n: _signed_receipt(
                n, ["de identity"], key=str(n.members["FR-PNF"].identity.key_id)
            ),
            BadSignature,
        ),
        (
            lambda n: _signed_receipt(
                n, ["de identity"], key=str(n.members["DE-BKA"].transport.key_id)
            ),
            BadSignature,
        ),
        (lambda n: _signed_receipt(n, ["de identity", "de transport"]), BadSignature),
        (lambda n: _signed_receipt(n, []), BadSignature),
        (lambda n: _signed_receipt(n, ["de identity"], label=labels.EVIDENCE), BadSignature),
        (lambda n: _receipt(n, n.members["DE-BKA"].identity, recipient=GB), UnknownMember),
        (lambda n: _signed_receipt(n, ["de identity"], recipient="GB-SFO"), UnknownMember),
        (lambda n: _signed_receipt(n, ["de identity"], network=b64e(bytes(32))), MalformedError),
        (lambda n: _signed_receipt(n, ["de identity"], type="evidence"), MalformedError),
        (lambda n: _signed_receipt(n, ["de identity"], v=2), UnsupportedVersion),
        (lambda n: _signed_receipt(n, ["de identity"], id="X" * 32), InvalidIdentifier),
        (lambda n: _signed_receipt(n, ["de identity"], sender="fr-pnf"), InvalidIdentifier),
        (lambda n: _signed_receipt(n, ["de identity"], key="ed25519:xyz"), InvalidIdentifier),
        (lambda n: _signed_receipt(n, ["de identity"], envelope=b64e(bytes(31))), MalformedError),
        (lambda n: _signed_receipt(n, ["de identity"], extra=True), UnknownField),
    ],
)
def test_receipt_refused(net, build, error):
    with pytest.raises(error) as info:
        DeliveryReceipt.decode(build(net), net.directory)
    assert type(info.value) is error


def test_receipt_survives_key_rotation(fresh_net):
    """A receipt signed before a rotation stays evidence; the new key signs new ones."""
    net = fresh_net()
    de = net.members["DE-BKA"]
    old_receipt = _receipt(net, de.identity)
    DeliveryReceipt.decode(old_receipt, net.directory)
    member = net.directory.members[DE]
    new_identity = SigningKey.generate(net.rng)
    cert = dataclasses.replace(
        member.certificate, serial=net.rng(16).hex(), identity_key=new_identity.verify_key
    )
    net.append(_make_update(net, cert, member.last_action), NOW + 10)
    assert set(member.identity_keys) == {de.identity.key_id, new_identity.key_id}
    assert member.retired_at == {de.identity.key_id: NOW + 10}
    assert DeliveryReceipt.decode(old_receipt, net.directory).key == de.identity.key_id
    # The replaced key cannot sign evidence dated at or after its replacement.
    for late in (NOW + 10, NOW + 11):
        with pytest.raises(BadSignature) as info:
            DeliveryReceipt.decode(_receipt(net, de.identity, time=late), net.directory)
        assert type(info.value) is BadSignature
    new_receipt = DeliveryReceipt.decode(_receipt(net, new_identity), net.directory)
    assert new_receipt.key == new_identity.key_id
    # Still only identity keys: the (unchanged) transport key never signs receipts.
    with pytest.raises(BadSignature):
        DeliveryReceipt.decode(_receipt(net, de.transport), net.directory)
    # Another member's identity key, old or new, is not the recipient's.
    with pytest.raises(BadSignature):
        DeliveryReceipt.decode(_receipt(net, net.members["FR-PNF"].identity), net.directory)


def _make_update(net: DevNetwork, cert: Any, prev: bytes) -> Any:
    return make_action(
        genesis=net.genesis,
        action=Action.UPDATE_KEYS,
        authority=cert.authority,
        prev=prev,
        issued=NOW,
        certificate=cert,
        signers=net.admins[:2],
    )


def test_receipt_from_suspended_recipient_still_verifies(fresh_net):
    net = fresh_net()
    net.set_status("DE-BKA", Action.SUSPEND, "inquiry", NOW)
    receipt = DeliveryReceipt.decode(_receipt(net, net.members["DE-BKA"].identity), net.directory)
    assert receipt.recipient == DE


# --- hub evidence --------------------------------------------------------------------------------


def _evidence(net: DevNetwork, kind: EvidenceKind, reason: str | None, **kw: Any) -> Evidence:
    args: dict[str, Any] = {
        "genesis": net.genesis,
        "hub": net.hub,
        "kind": kind,
        "message_id": MID,
        "envelope_hash": ENV_HASH,
        "sender": FR,
        "recipients": [ES, DE],
        "time": NOW,
        "reason": reason,
    }
    args.update(kw)
    return make_evidence(**args)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (EvidenceKind.ACCEPTED, None),
        (EvidenceKind.REJECTED, "bad-signature"),
        (EvidenceKind.DELIVERED, None),
        (EvidenceKind.NON_DELIVERY, "expired"),
    ],
)
def test_evidence_round_trip(net, kind, reason):
    ev = _evidence(net, kind, reason)
    data = ev.signed.encode()
    again = Evidence.decode(data, net.genesis)
    assert again == ev
    assert again.kind is kind
    assert again.reason == reason
    assert again.recipients == (DE, ES)  # sorted
    assert (again.message_id, again.envelope_hash, again.sender, again.time) == (
        MID,
        ENV_HASH,
        FR,
        NOW,
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (EvidenceKind.ACCEPTED, "ok"),
        (EvidenceKind.DELIVERED, "ok"),
        (EvidenceKind.REJECTED, None),
        (EvidenceKind.NON_DELIVERY, None),
    ],
)
def test_evidence_reason_rules(net, kind, reason):
    with pytest.raises(MalformedError):
        _evidence(net, kind, reason)


def _evidence_payload(net: DevNetwork, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "evidence",
        "v": 1,
        "network": b64e(net.genesis.digest),
        "kind": "accepted",
        "id": str(MID),
        "envelope": b64e(ENV_HASH),
        "sender": "FR-PNF",
        "recipients": ["DE-BKA", "ES-FCC"],
        "time": NOW,
    }
    payload.update(overrides)
    return payload


@pytest.mark.parametrize(
    ("signers", "label", "overrides", "error"),
    [
        (["hub"], labels.EVIDENCE, {}, None),
        (["admin"], labels.EVIDENCE, {}, BadSignature),
        (["member"], labels.EVIDENCE, {}, BadSignature),
        (["hub", "admin"], labels.EVIDENCE, {}, BadSignature),
        ([], labels.EVIDENCE, {}, BadSignature),
        (["hub"], labels.CHECKPOINT, {}, BadSignature),
        (["hub"], labels.RECEIPT, {}, BadSignature),
        (["hub"], labels.EVIDENCE, {"recipients": ["ES-FCC", "DE-BKA"]}, MalformedError),
        (["hub"], labels.EVIDENCE, {"recipients": ["DE-BKA", "DE-BKA"]}, MalformedError),
        (["hub"], labels.EVIDENCE, {"recipients": []}, MalformedError),
        (["hub"], labels.EVIDENCE, {"recipients": ["de-bka"]}, InvalidIdentifier),
        (["hub"], labels.EVIDENCE, {"kind": "lost"}, MalformedError),
        (["hub"], labels.EVIDENCE, {"reason": "r" * 65, "kind": "rejected"}, MalformedError),
        (["hub"], labels.EVIDENCE, {"network": b64e(bytes(32))}, MalformedError),
        (["hub"], labels.EVIDENCE, {"v": 3}, UnsupportedVersion),
        (["hub"], labels.EVIDENCE, {"extra": 1}, UnknownField),
    ],
)
def test_evidence_refused(net, signers, label, overrides, error):
    keys = {"hub": net.hub, "admin": net.admins[0], "member": net.members["FR-PNF"].identity}
    data = sign_object(
        _evidence_payload(net, **overrides), label, [keys[s] for s in signers]
    ).encode()
    if error is None:
        assert Evidence.decode(data, net.genesis).kind is EvidenceKind.ACCEPTED
        return
    with pytest.raises(error) as info:
        Evidence.decode(data, net.genesis)
    assert type(info.value) is error


# --- request authentication ----------------------------------------------------------------------

KEY = SigningKey(b"\x05" * 32)
OTHER_KEY = SigningKey(b"\x06" * 32)
NETWORK = crypto.sha256(b"network")
REQUEST: dict[str, Any] = {
    "network": NETWORK,
    "audience": HUB_AUDIENCE,
    "method": "POST",
    "target": "/v1/envelopes?recipient=DE-BKA&x=1",
    "body": b'{"hello":"world"}',
}
CREATED = 1_767_230_000


def _header(**overrides: Any) -> str:
    args: dict[str, Any] = {
        **REQUEST,
        "key": KEY,
        "created": CREATED,
        "rng": crypto.deterministic_rng(b"nonce"),
    }
    args.update(overrides)
    return sign_request(**args)


def _verify(header: str, *, now: int = CREATED, **overrides: Any) -> None:
    args: dict[str, Any] = {**REQUEST, "key": KEY.verify_key, "now": now}
    args.update(overrides)
    verify_request(parse_request_auth(header), **args)


def test_request_auth_round_trip():
    header = _header()
    nonce = crypto.deterministic_rng(b"nonce")(16)
    assert re.fullmatch(
        r"v1;kid=ed25519:[0-9a-f]{32};created=1767230000;nonce=[A-Za-z0-9_-]{22};"
        r"sig=[A-Za-z0-9_-]{86}",
        header,
    )
    assert header.startswith(f"v1;kid={KEY.key_id};created={CREATED};nonce={b64e(nonce)};sig=")
    auth = parse_request_auth(header)
    assert auth == RequestAuth(KEY.key_id, CREATED, nonce, auth.signature)
    assert len(auth.signature) == 64
    _verify(header)
    # Deterministic: same inputs, same header.
    assert _header() == header


def test_request_auth_empty_body_and_get():
    header = _header(method="GET", target="/", body=b"")
    _verify(header, method="GET", target="/", body=b"")


@pytest.mark.parametrize(
    "tamper",
    [
        {"method": "PUT"},
        {"method": "GET"},
        {"method": "post"},  # methods are upper case: never normalised
        {"target": "/v1/envelopes"},
        {"target": "/v1/envelopes?recipient=DE-BKA&x=2"},
        {"target": "/v1/envelopes?x=1&recipient=DE-BKA"},  # query order is signed
        {"target": "/v1/envelopes/?recipient=DE-BKA&x=1"},
        {"target": "/V1/envelopes?recipient=DE-BKA&x=1"},
        {"target": "v1/envelopes?recipient=DE-BKA&x=1"},
        {"target": "/v1/envelopes?recipient=DE-BKA&x=1 "},
        {"body": b'{"hello":"world!"}'},
        {"body": b""},
        {"body": b'{"hello":"world"}\n'},
        {"network": crypto.sha256(b"other network")},
        {"audience": "DE-BKA"},  # a request for the hub replayed to a peer
        {"key": OTHER_KEY.verify_key},
    ],
)
def test_request_auth_tampered_request(tamper):
    with pytest.raises(AuthError) as info:
        _verify(_header(), **tamper)
    assert type(info.value) is AuthError


def _replace_param(header: str, name: str, value: str) -> str:
    return re.sub(rf"{name}=[^;]*", f"{name}={value}", header)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h: _replace_param(h, "created", str(CREATED + 1)),
        lambda h: _replace_param(h, "created", str(CREATED - 1)),
        lambda h: _replace_param(h, "nonce", b64e(b"\x00" * 16)),
        lambda h: _replace_param(h, "kid", str(OTHER_KEY.key_id)),
        lambda h: _replace_param(
            h,
            "sig",
            b64e(bytes([canonical.b64d(h.rsplit("=", 1)[1], what="s")[0] ^ 1]) + bytes(63)),
        ),
        lambda h: _replace_param(h, "sig", _header(created=CREATED + 1).rsplit("=", 1)[1]),
        lambda h: _replace_param(h, "sig", _header(target="/").rsplit("=", 1)[1]),
    ],
)
def test_request_auth_tampered_header(tamper):
    with pytest.raises(AuthError) as info:
        _verify(tamper(_header()), now=CREATED)
    assert type(info.value) is AuthError


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (0, True),
        (MAX_SKEW, True),
        (-MAX_SKEW, True),
        (MAX_SKEW + 1, False),
        (-MAX_SKEW - 1, False),
        (86400, False),
        (-CREATED, False),
    ],
)
def test_request_auth_clock_window(offset, ok):
    header = _header()
    if ok:
        _verify(header, now=CREATED + offset)
    else:
        with pytest.raises(StaleError):
            _verify(header, now=CREATED + offset)


def test_request_auth_custom_skew():
    _verify(_header(), now=CREATED + 300, max_skew=300)
    with pytest.raises(StaleError):
        _verify(_header(), now=CREATED + 11, max_skew=10)


def test_stale_is_checked_before_the_signature():
    # A stale request with a bad signature reports the time, not the signature.
    with pytest.raises(StaleError):
        _verify(_header(), now=CREATED + 1000, body=b"other")


_GOOD = _header()
_KID = f"kid={KEY.key_id}"
_PARTS = _GOOD.split(";")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1",
        ";".join(_PARTS[:-1]),  # no sig
        ";".join([_PARTS[0], *_PARTS[2:]]),  # no kid
        ";".join([_PARTS[0], _PARTS[1], _PARTS[3], _PARTS[4]]),  # no created
        ";".join([*_PARTS[:3], _PARTS[4]]),  # no nonce
        ";".join(_PARTS[1:]),  # no version
        ";".join([_PARTS[0], _PARTS[2], _PARTS[1], *_PARTS[3:]]),  # kid and created swapped
        ";".join([_PARTS[0], _PARTS[1], _PARTS[2], _PARTS[4], _PARTS[3]]),  # nonce after sig
        "v2;" + ";".join(_PARTS[1:]),
        "V1;" + ";".join(_PARTS[1:]),
        _GOOD + ";",
        _GOOD + ";extra=1",
        _GOOD + "\n",
        _GOOD + " ",
        " " + _GOOD,
        _GOOD.replace(";", "; "),
        _GOOD.replace(";", " ;"),
        _GOOD.replace("=", " = "),
        _GOOD.replace(";", ","),
        _GOOD.replace(_KID, _KID.upper().replace("KID=ED25519", "kid=ed25519")),
        _GOOD.replace("kid=ed25519:", "kid=mlkem768x25519:"),
        _GOOD.replace("kid=ed25519:", "kid="),
        _GOOD.replace(_KID, _KID[:-1]),  # 31 hex digits
        _GOOD.replace(_KID, _KID + "0"),
        _GOOD.replace(f"created={CREATED}", "created="),
        _GOOD.replace(f"created={CREATED}", "created=-1"),
        _GOOD.replace(f"created={CREATED}", "created=1.5"),
        _GOOD.replace(f"created={CREATED}", "created=" + "1" * 17),
        _GOOD.replace(f"created={CREATED}", f"created=+{CREATED}"),
        _replace_param(_GOOD, "nonce", "A" * 21),
        _replace_param(_GOOD, "nonce", "A" * 23),
        _replace_param(_GOOD, "nonce", "A" * 21 + "B"),  # stray bits
        _replace_param(_GOOD, "nonce", "A" * 20 + "+A"),
        _replace_param(_GOOD, "nonce", "A" * 22 + "=="),
        _replace_param(_GOOD, "sig", "A" * 85),
        _replace_param(_GOOD, "sig", "A" * 87),
        _replace_param(_GOOD, "sig", "A" * 85 + "B"),  # stray bits
        _replace_param(_GOOD, "sig", "A" * 86 + "=="),
        _GOOD.replace("sig=", "signature="),
        _GOOD.replace("v1;", "v1;kid=" + str(KEY.key_id) + ";"),  # kid twice
    ],
)
def test_request_auth_malformed_header(header):
    with pytest.raises(AuthError) as info:
        parse_request_auth(header)
    assert type(info.value) is AuthError


@pytest.mark.parametrize("created", [f"00{CREATED}", "00", "01"])
def test_request_auth_created_with_leading_zeros_refused(created):
    with pytest.raises(AuthError):
        parse_request_auth(_GOOD.replace(f"created={CREATED}", f"created={created}"))


def test_request_auth_created_zero():
    header = _header(created=0)
    assert parse_request_auth(header).created == 0
    _verify(header, now=0)


def test_request_auth_peer_audience():
    header = _header(audience="DE-BKA")
    _verify(header, audience="DE-BKA")
    for other in ("hub", "FR-PNF"):
        with pytest.raises(AuthError):
            _verify(header, audience=other)


@pytest.mark.parametrize("audience", ["Hub", "HUB", "", "de-bka", "DE-BKA ", "hub\n", "peer"])
def test_request_auth_invalid_audience(audience):
    with pytest.raises(AuthError):
        _header(audience=audience)
    with pytest.raises(AuthError) as info:
        _verify(_header(), audience=audience)
    assert type(info.value) is AuthError


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("get", "/x"),
        ("GE", "/x"),
        ("DELETEXX", "/x"),
        ("G-T", "/x"),
        ("GET", "x"),
        ("GET", ""),
        ("GET", "/a b"),
        ("GET", "/caf\u00e9"),
        ("GET", "/x\n"),
        ("GET", "/" + "a" * 4096),
    ],
)
def test_request_auth_invalid_method_or_target(method, target):
    header = _header(method="GET", target="/x")
    with pytest.raises(AuthError) as info:
        _verify(header, method=method, target=target)
    assert type(info.value) is AuthError
    with pytest.raises(AuthError):
        _header(method=method, target=target)


# --- nonce window --------------------------------------------------------------------------------


def test_nonce_window_refuses_repeats():
    window = NonceWindow(window=60)
    window.check_and_add(KEY.key_id, b"n" * 16, CREATED, CREATED)
    with pytest.raises(ReplayError):
        window.check_and_add(KEY.key_id, b"n" * 16, CREATED, CREATED)
    with pytest.raises(ReplayError):
        window.check_and_add(KEY.key_id, b"n" * 16, CREATED + 30, CREATED + 60)
    # Same nonce, other key: independent.
    window.check_and_add(OTHER_KEY.key_id, b"n" * 16, CREATED, CREATED)
    window.check_and_add(KEY.key_id, b"m" * 16, CREATED, CREATED)
    assert len(window) == 3


@pytest.mark.parametrize(
    ("later", "remembered"),
    [(0, True), (60, True), (120, True), (121, False), (10_000, False)],
)
def test_nonce_window_expiry(later, remembered):
    window = NonceWindow(window=60)
    window.check_and_add(KEY.key_id, b"n" * 16, CREATED, CREATED)
    if remembered:
        with pytest.raises(ReplayError):
            window.check_and_add(KEY.key_id, b"n" * 16, CREATED, CREATED + later)
    else:
        window.check_and_add(KEY.key_id, b"n" * 16, CREATED + later, CREATED + later)
        assert len(window) == 1


def test_nonce_window_never_forgets_an_acceptable_nonce():
    """While ``created`` is within ``now ± window`` the nonce is still remembered."""
    window = NonceWindow(window=60)
    for i in range(50):
        window.check_and_add(KEY.key_id, bytes([i]) * 16, CREATED + i, CREATED + i)
    for now in range(CREATED, CREATED + 200, 7):
        for i in range(50):
            if abs(now - (CREATED + i)) <= 60:
                with pytest.raises(ReplayError):
                    window.check_and_add(KEY.key_id, bytes([i]) * 16, CREATED + i, now)


def test_nonce_window_capacity():
    window = NonceWindow(window=60, capacity=3)
    nonces = [bytes([i]) * 16 for i in range(5)]
    for n in nonces:
        window.check_and_add(KEY.key_id, n, CREATED, CREATED)
        assert len(window) <= 3
    assert len(window) == 3
    for n in nonces[2:]:
        with pytest.raises(ReplayError):
            window.check_and_add(KEY.key_id, n, CREATED, CREATED)
    # The oldest were dropped to respect the bound.
    window.check_and_add(KEY.key_id, nonces[0], CREATED, CREATED)
    assert len(window) == 3


# --- seen set and sequence numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "verdict"),
    [
        (None, b"a", SeenVerdict.NEW),
        (b"a", b"a", SeenVerdict.REPLAY),
        (b"a", b"b", SeenVerdict.CONFLICT),
    ],
)
def test_classify_seen(previous, current, verdict):
    assert classify_seen(previous, current) is verdict


def test_seen_set():
    seen = SeenSet()
    seen.check_and_add(FR, MID, b"h1")
    with pytest.raises(ReplayError):
        seen.check_and_add(FR, MID, b"h1")
    with pytest.raises(ConflictError):
        seen.check_and_add(FR, MID, b"h2")
    seen.check_and_add(DE, MID, b"h2")  # same id from another sender is another message
    seen.check_and_add(FR, OTHER_MID, b"h1")


@pytest.mark.parametrize(
    ("last", "seq", "in_order", "missing", "old"),
    [
        (0, 1, True, [], False),
        (5, 6, True, [], False),
        (0, 2, False, [1], False),
        (0, 4, False, [1, 2, 3], False),
        (5, 9, False, [6, 7, 8], False),
        (5, 5, False, [], True),
        (5, 4, False, [], True),
        (5, 0, False, [], True),
        (0, 0, False, [], True),
    ],
)
def test_classify_seq(last, seq, in_order, missing, old):
    verdict = classify_seq(last, seq)
    assert verdict.in_order is in_order
    assert list(verdict.missing) == missing
    assert verdict.old is old


def test_key_id_type_in_request_auth():
    assert isinstance(parse_request_auth(_GOOD).key_id, KeyId)


@pytest.mark.parametrize(
    "reason", ["Bad-Signature", "bad signature", "-lead", "bad\u202eslug", "x" * 65, "a\x00"]
)
def test_evidence_reason_must_be_a_problem_slug(net, reason):
    with pytest.raises(MalformedError) as info:
        _evidence(net, EvidenceKind.REJECTED, reason)
    assert type(info.value) is MalformedError
