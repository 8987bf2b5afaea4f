"""Hypothesis round trips for every signed structure, and truncation at every byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol import crypto
from protocol.canonical import MAX_INT
from protocol.devnet import GENESIS_TIME, DevNetwork
from protocol.errors import DecodeError, MalformedError
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    AUTHORITY_KINDS,
    MAX_ACTION_SIZE,
    Action,
    Application,
    Certificate,
    Checkpoint,
    LogEntry,
    MembershipAction,
    make_action,
    make_application,
    make_checkpoint,
)
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
)
from protocol.prekeys import MAX_PREKEY_LIFETIME, SignedPrekey, make_prekey
from protocol.receipts import (
    DeliveryReceipt,
    Evidence,
    EvidenceKind,
    make_evidence,
    make_receipt,
)
from protocol.signed import SignedObject

SETTINGS = settings(max_examples=50, deadline=None)

_RNG = crypto.deterministic_rng(b"test_roundtrip")
KEM_KEYS = [KemPrivateKey.generate(_RNG) for _ in range(3)]
NOW = GENESIS_TIME + 7200

# --- strategies ----------------------------------------------------------------------------------

AUTHORITIES = ["FR-PNF", "DE-BKA", "US-DOJ", "GB-SFO", "BR-CGU12", "IT-ANAC", "ES-FCC", "CH-MPC"]
authorities = st.sampled_from(AUTHORITIES).map(AuthorityId.parse)
members = st.sampled_from(["FR-PNF", "DE-BKA", "ES-FCC", "IT-ANAC"])

# Human text: no controls, format (bidi, zero-width), separators, unassigned or private use.
_chars = st.characters(exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp"))
_multiline_chars = st.one_of(_chars, st.sampled_from("\n\t"))


def line(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_chars, min_size=1, max_size=max_size)


def lines(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_multiline_chars, min_size=1, max_size=max_size)


kinds = st.lists(st.sampled_from(sorted(AUTHORITY_KINDS)), min_size=1, unique=True)
languages = st.lists(
    st.from_regex(r"[a-z]{2}", fullmatch=True), min_size=1, max_size=16, unique=True
)
endpoints = st.one_of(
    st.none(),
    st.sampled_from(
        ["https://node.example", "http://10.0.0.1:8443/globe", "https://a-b.example/x/y_z~"]
    ),
)
times = st.integers(min_value=0, max_value=MAX_INT)
seeds = st.binary(min_size=32, max_size=32)
digests = st.binary(min_size=32, max_size=32)
kem_keys = st.sampled_from(KEM_KEYS)
serials = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
message_ids = st.binary(min_size=16, max_size=16).map(MessageId)


def _two_keys(pair: tuple[bytes, bytes]) -> tuple[SigningKey, SigningKey]:
    return SigningKey(pair[0]), SigningKey(pair[1])


key_pairs = st.tuples(seeds, seeds).filter(lambda p: p[0] != p[1]).map(_two_keys)


# --- applications --------------------------------------------------------------------------------


@given(
    st.fixed_dictionaries(
        {
            "authority": authorities,
            "name": line(200),
            "kinds": kinds,
            "languages": languages,
            "contact": lines(1000),
            "legal_basis": lines(2000),
            "endpoint": endpoints,
            "keys": key_pairs,
            "ka": kem_keys,
            "created": times,
        }
    )
)
@SETTINGS
def test_application(net, args):
    authority, name, contact, legal_basis = (
        args["authority"],
        args["name"],
        args["contact"],
        args["legal_basis"],
    )
    kinds, languages, endpoint, ka, created = (
        args["kinds"],
        args["languages"],
        args["endpoint"],
        args["ka"],
        args["created"],
    )
    identity, transport = args["keys"]
    app = make_application(
        genesis=net.genesis,
        authority=authority,
        name=name,
        kinds=kinds,
        languages=languages,
        contact=contact,
        legal_basis=legal_basis,
        endpoint=endpoint,
        identity=identity,
        transport=transport,
        ka_key=ka.public_key,
        created=created,
    )
    data = app.signed.encode()
    again = Application.decode(data, net.genesis)
    assert again == app
    assert again.signed.encode() == data
    assert (again.authority, again.name, again.contact, again.legal_basis) == (
        authority,
        name,
        contact,
        legal_basis,
    )
    assert again.kinds == tuple(sorted(kinds))
    assert again.languages == tuple(sorted(languages))
    assert (again.endpoint, again.created) == (endpoint, created)
    assert again.identity_key == identity.verify_key
    assert again.transport_key == transport.verify_key
    assert again.ka_key == ka.public_key


# --- membership actions --------------------------------------------------------------------------


@st.composite
def certificates(draw: st.DrawFn, authority: AuthorityId, admit: bool) -> Certificate:
    identity, transport = draw(key_pairs)
    not_before = draw(st.integers(min_value=0, max_value=MAX_INT - 1))
    not_after = draw(st.integers(min_value=not_before + 1, max_value=MAX_INT))
    application = draw(digests if admit else st.one_of(st.none(), digests))
    return Certificate(
        authority=authority,
        serial=draw(serials),
        name=draw(line(200)),
        kinds=tuple(sorted(draw(kinds))),
        languages=tuple(sorted(draw(languages))),
        endpoint=draw(endpoints),
        identity_key=identity.verify_key,
        transport_key=transport.verify_key,
        ka_key_raw=bytes(draw(kem_keys).public_key),
        not_before=not_before,
        not_after=not_after,
        application=application,
    )


@st.composite
def actions(draw: st.DrawFn, net: DevNetwork) -> tuple[MembershipAction, dict[str, Any]]:
    kind = draw(st.sampled_from(list(Action)))
    authority = draw(authorities)
    carries = kind in (Action.ADMIT, Action.UPDATE_KEYS)
    fields: dict[str, Any] = {
        "action": kind,
        "authority": authority,
        "prev": None if kind is Action.ADMIT else draw(digests),
        "issued": draw(times),
        "reason": draw(st.one_of(st.none(), lines(2000)) if carries else lines(2000)),
        "certificate": draw(certificates(authority, kind is Action.ADMIT)) if carries else None,
    }
    signers = draw(st.lists(st.sampled_from(net.admins), unique=True))
    return make_action(genesis=net.genesis, signers=signers, **fields), fields


@given(data=st.data())
@SETTINGS
def test_membership_action(net, data):
    action, fields = data.draw(actions(net))
    raw = action.signed.encode()
    signed = SignedObject.decode(raw, max_size=MAX_ACTION_SIZE, what="action")
    assert signed == action.signed
    again = MembershipAction.from_signed(signed, net.genesis)
    assert again == action
    for name, value in fields.items():
        assert getattr(again, name) == value


# --- checkpoints, prekeys, receipts, evidence ----------------------------------------------------


@given(seq=times, head=digests, time=times)
@SETTINGS
def test_checkpoint(net, seq, head, time):
    cp = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=seq, head=head, time=time)
    again = Checkpoint.decode(cp.signed.encode(), net.genesis)
    assert again == cp
    assert (again.seq, again.head, again.time) == (seq, head, time)


_windows = st.tuples(
    st.integers(min_value=0, max_value=MAX_INT - MAX_PREKEY_LIFETIME),
    st.integers(min_value=1, max_value=MAX_PREKEY_LIFETIME),
)


@given(member=members, authority=authorities, key=kem_keys, window=_windows)
@SETTINGS
def test_signed_prekey(net, member, authority, key, window):
    not_before, window = window
    identity = net.members[member].identity
    pk = make_prekey(
        genesis=net.genesis,
        authority=authority,
        identity=identity,
        key=key.public_key,
        not_before=not_before,
        not_after=not_before + window,
    )
    again = SignedPrekey.decode(
        pk.signed.encode(), net.genesis, identity.verify_key, authority=authority
    )
    assert again == pk
    assert (again.authority, again.key) == (authority, key.public_key)
    assert (again.not_before, again.not_after) == (not_before, not_before + window)
    again.check_valid_at(not_before)
    again.check_valid_at(not_before + window - 1)


@given(recipient=members, sender=authorities, ids=st.tuples(message_ids, digests), time=times)
@SETTINGS
def test_delivery_receipt(net, recipient, sender, ids, time):
    mid, env = ids
    member = net.members[recipient]
    signed = make_receipt(
        genesis=net.genesis,
        identity=member.identity,
        message_id=mid,
        envelope_hash=env,
        sender=sender,
        recipient=member.authority,
        time=time,
    )
    receipt = DeliveryReceipt.decode(signed.encode(), net.directory)
    assert receipt.signed == signed
    assert (receipt.message_id, receipt.envelope_hash, receipt.sender) == (mid, env, sender)
    assert (receipt.recipient, receipt.key, receipt.time) == (
        member.authority,
        member.identity.key_id,
        time,
    )
    assert receipt.matches(mid, env)


_slugs = st.from_regex(r"[a-z][a-z0-9-]{0,63}", fullmatch=True)


@given(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(list(EvidenceKind)),
            "mid": message_ids,
            "env": digests,
            "sender": authorities,
            "recipients": st.lists(authorities, min_size=1, max_size=8, unique=True),
            "time": times,
            "slug": _slugs,
        }
    )
)
@SETTINGS
def test_evidence(net, args):
    kind, mid, env, sender = args["kind"], args["mid"], args["env"], args["sender"]
    recipients, time, slug = args["recipients"], args["time"], args["slug"]
    reason = slug if kind in (EvidenceKind.REJECTED, EvidenceKind.NON_DELIVERY) else None
    ev = make_evidence(
        genesis=net.genesis,
        hub=net.hub,
        kind=kind,
        message_id=mid,
        envelope_hash=env,
        sender=sender,
        recipients=recipients,
        time=time,
        reason=reason,
    )
    again = Evidence.decode(ev.signed.encode(), net.genesis)
    assert again == ev
    assert again.recipients == tuple(sorted(recipients, key=str))
    assert (again.kind, again.reason, again.sender, again.time) == (kind, reason, sender, time)
    assert (again.message_id, again.envelope_hash) == (mid, env)


# --- genesis -------------------------------------------------------------------------------------


@st.composite
def geneses(draw: st.DrawFn) -> tuple[Genesis, dict[str, Any]]:
    key_seeds = draw(st.lists(seeds, min_size=2, max_size=5, unique=True))
    hub, admins = SigningKey(key_seeds[0]), [SigningKey(s) for s in key_seeds[1:]]
    threshold = draw(st.integers(min_value=1, max_value=len(admins)))
    signers = draw(st.lists(st.sampled_from(admins), min_size=threshold, unique=True))
    fields: dict[str, Any] = {
        "network_id": draw(st.from_regex(r"[a-z0-9][a-z0-9-]{2,62}", fullmatch=True)),
        "name": draw(line(200)),
        "admins": [(draw(line(200)), k.verify_key) for k in admins],
        "threshold": threshold,
        "hub_key": hub.verify_key,
        "hub_url": draw(
            st.from_regex(
                r"https?://[a-z0-9.-]{1,30}(:[0-9]{1,5})?(/[a-z0-9._~/-]{0,20})?", fullmatch=True
            )
        ),
        "created": draw(times),
    }
    return make_genesis(signers=signers, **fields), fields


@given(geneses())
@SETTINGS
def test_genesis(drawn):
    genesis, fields = drawn
    again = Genesis.decode(genesis.encode())
    assert again == genesis
    assert again.digest == genesis.digest
    assert str(again.network_id) == fields["network_id"]
    assert again.name == fields["name"]
    assert [(a.name, a.key) for a in again.admins] == fields["admins"]
    assert (again.threshold, again.hub_key) == (fields["threshold"], fields["hub_key"])
    assert (again.hub_url, again.created) == (fields["hub_url"], fields["created"])


# --- message content -----------------------------------------------------------------------------

_names = st.text(
    st.characters(
        exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp"), exclude_characters="/\\"
    ),
    min_size=1,
    max_size=255,
).filter(lambda n: n not in (".", ".."))
_media = st.from_regex(
    r"[a-z0-9][a-z0-9!#$&^_.+-]{0,20}/[a-z0-9][a-z0-9!#$&^_.+-]{0,20}", fullmatch=True
)
attachments = st.builds(
    Attachment,
    name=_names,
    size=times,
    media_type=_media,
    sha256=digests,
    key=digests,
    blob=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
)
handlings = st.builds(
    Handling, st.sampled_from(list(Tlp)), st.frozensets(st.sampled_from(list(Restriction)))
)
_consent_to = st.lists(authorities, min_size=1, max_size=5, unique=True).map(
    lambda xs: tuple(sorted(xs, key=str))
)


@st.composite
def contents(draw: st.DrawFn) -> MessageContent:
    kind = draw(st.sampled_from(list(Kind)))
    needs_reply = kind in (Kind.ANSWER, Kind.STATUS, Kind.CONSENT_DECISION)
    status = None
    if kind is Kind.STATUS:
        state = draw(st.sampled_from(list(StatusState)))
        expecting = (StatusState.ACKNOWLEDGED, StatusState.IN_PROGRESS)
        expected = draw(
            times
            if state is StatusState.ACKNOWLEDGED
            else st.one_of(st.none(), times)
            if state in expecting
            else st.none()
        )
        reasoned = state in (StatusState.DECLINED, StatusState.WITHDRAWN)
        reason = draw(lines(2000) if reasoned else st.one_of(st.none(), lines(2000)))
        deadline = draw(times) if state is StatusState.EXTENDED else None
        status = StatusUpdate(state, expected, reason, deadline)
    consent = None
    if kind is Kind.CONSENT_REQUEST:
        consent = Consent(
            draw(message_ids),
            draw(_consent_to),
            purpose=draw(lines(2000)),
            reason=draw(st.one_of(st.none(), lines(2000))),
        )
    elif kind is Kind.CONSENT_DECISION:
        decision = draw(st.sampled_from(list(ConsentDecision)))
        refused = decision is ConsentDecision.REFUSED
        consent = Consent(
            draw(message_ids),
            draw(_consent_to),
            purpose=draw(st.one_of(st.none(), lines(2000))),
            decision=decision,
            reason=draw(lines(2000) if refused else st.one_of(st.none(), lines(2000))),
        )
    return MessageContent(
        kind=kind,
        subject=draw(line(300)),
        body=draw(st.text(st.characters(codec="utf-8"), max_size=500)),
        language=draw(st.from_regex(r"[a-z]{2}", fullmatch=True)),
        urgency=draw(st.sampled_from(list(Urgency))),
        handling=draw(handlings),
        case=draw(
            st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}", fullmatch=True))
        ),
        in_reply_to=draw(message_ids if needs_reply else st.one_of(st.none(), message_ids)),
        deadline=draw(st.one_of(st.none(), times)) if kind is Kind.REQUEST else None,
        attachments=tuple(draw(st.lists(attachments, max_size=3))),
        status=status,
        consent=consent,
    )


@given(contents())
@SETTINGS
def test_message_content(message):
    data = message.encode()
    again = MessageContent.decode(data)
    assert again == message
    assert again.encode() == data


# --- truncation at every byte --------------------------------------------------------------------


def _examples(net: DevNetwork) -> dict[str, tuple[bytes, Callable[[bytes], object]]]:
    fr = net.members["FR-PNF"]
    de = net.members["DE-BKA"]
    g = net.genesis
    action = LogEntry.decode(net.entries[1], g).action
    checkpoint = make_checkpoint(
        genesis=g, hub=net.hub, seq=net.directory.seq, head=net.directory.head, time=NOW
    )
    receipt = make_receipt(
        genesis=g,
        identity=de.identity,
        message_id=MessageId(bytes(16)),
        envelope_hash=bytes(32),
        sender=fr.authority,
        recipient=de.authority,
        time=NOW,
    )
    evidence = make_evidence(
        genesis=g,
        hub=net.hub,
        kind=EvidenceKind.REJECTED,
        message_id=MessageId(bytes(16)),
        envelope_hash=bytes(32),
        sender=fr.authority,
        recipients=[de.authority],
        time=NOW,
        reason="bad-signature",
    )
    message = MessageContent(
        kind=Kind.STATUS,
        subject="Status of your request",
        body="Declined.",
        language="en",
        urgency=Urgency.PRIORITY,
        handling=Handling(Tlp.AMBER_STRICT, frozenset(Restriction)),
        case="PNF/2026-1",
        in_reply_to=MessageId(bytes(16)),
        status=StatusUpdate(StatusState.DECLINED, reason="Outside our competence"),
        attachments=(Attachment("a.pdf", 1, "application/pdf", bytes(32), bytes(32), "0" * 32),),
    )

    def action_decode(data: bytes) -> object:
        signed = SignedObject.decode(data, max_size=MAX_ACTION_SIZE, what="action")
        return MembershipAction.from_signed(signed, g)

    return {
        "genesis": (g.encode(), Genesis.decode),
        "application": (fr.application.signed.encode(), lambda d: Application.decode(d, g)),
        "action": (action.signed.encode(), action_decode),
        "log entry": (net.entries[1], lambda d: LogEntry.decode(d, g)),
        "checkpoint": (checkpoint.signed.encode(), lambda d: Checkpoint.decode(d, g)),
        "prekey": (
            fr.signed_prekey.signed.encode(),
            lambda d: SignedPrekey.decode(d, g, fr.identity.verify_key, authority=fr.authority),
        ),
        "receipt": (receipt.encode(), lambda d: DeliveryReceipt.decode(d, net.directory)),
        "evidence": (evidence.signed.encode(), lambda d: Evidence.decode(d, g)),
        "message": (message.encode(), MessageContent.decode),
    }


_STRUCTURES = [
    "genesis",
    "application",
    "action",
    "log entry",
    "checkpoint",
    "prekey",
    "receipt",
    "evidence",
    "message",
]


@pytest.mark.parametrize("structure", _STRUCTURES)
def test_truncated_at_every_byte(net, structure):
    data, decode = _examples(net)[structure]
    decode(data)  # the whole example is valid
    for cut in range(len(data)):
        with pytest.raises(DecodeError) as info:
            decode(data[:cut])
        # A strict prefix of a JSON object is never JSON: the parser refuses it.
        assert type(info.value) is MalformedError, (cut, info.value)


@pytest.mark.parametrize("structure", _STRUCTURES)
def test_trailing_bytes_refused(net, structure):
    data, decode = _examples(net)[structure]
    for suffix in (b" ", b"\n", b"\x00", b"}", b"{}", b",", b"\xff"):
        with pytest.raises(DecodeError):
            decode(data + suffix)


@given(data=st.data())
@SETTINGS
def test_truncated_random_structures(net, data):
    """A few generated structures, cut at a random point, are refused too."""
    action, _ = data.draw(actions(net))
    raw = action.signed.encode()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    assume(cut < len(raw))
    with pytest.raises(MalformedError):
        SignedObject.decode(raw[:cut], max_size=MAX_ACTION_SIZE, what="action")
