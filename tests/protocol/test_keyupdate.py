"""Key updates (protocol/keyupdate.py; docs/PROTOCOL.md §6.5, §6.8).

The refusals of a request are pinned by the vectors (tests/vectors/key_updates.py, structure
``key_update``); here: what a verified request says, the admin's rule for signing the
hub's draft ``update-keys`` (every field the hub could change, with its exact error), and
what a replaced identity key still verifies after a planned rotation and after the
compromise procedure (suspend, re-key, reinstate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from protocol import canonical
from protocol.devnet import DevNetwork, build_devnet
from protocol.directory import MemberStatus
from protocol.errors import (
    BadSignature,
    ExpiredError,
    GlobeError,
    MembershipError,
    NotCertified,
    UsageError,
)
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keyupdate import (
    KeyUpdateRequest,
    certificate_for,
    check_key_update_draft,
    make_key_update,
)
from protocol.membership import (
    MAX_DRAFT_AGE,
    Action,
    check_draft_times,
    kem_pop_answer,
    kem_pop_challenge,
    make_action,
)
from protocol.receipts import DeliveryReceipt, make_receipt

FR = AuthorityId.parse("FR-PNF")
DE = AuthorityId.parse("DE-BKA")
ADMITTED = 1767225600 + 3600  # build_devnet's admissions
NOW = ADMITTED + 1000
SERIAL = "ab" * 16


def _net() -> DevNetwork:
    return build_devnet(b"key updates", members=[("FR-PNF", "PNF"), ("DE-BKA", "BKA")])


def _new(net: DevNetwork) -> tuple[SigningKey, SigningKey, KemPrivateKey]:
    return (
        SigningKey.generate(net.rng),
        SigningKey.generate(net.rng),
        KemPrivateKey.generate(net.rng),
    )


def _request(net: DevNetwork, who: str = "FR-PNF") -> tuple[KeyUpdateRequest, SigningKey]:
    """A verified request of ``who`` for three new keys; and its new identity key."""
    m = net.members[who]
    identity, transport, ka = _new(net)
    signed = make_key_update(
        genesis=net.genesis, authority=m.authority, current=m.identity, identity=identity,
        transport=transport, ka_key=ka.public_key, created=NOW,
    )  # fmt: skip
    return KeyUpdateRequest.decode(signed.encode(), net.directory), identity


def _update(net: DevNetwork, req: KeyUpdateRequest, at: int) -> None:
    member = net.directory.member(req.authority)
    cert = certificate_for(req, member.certificate, serial=net.rng(16).hex(), not_before=at)
    net.append(
        make_action(
            genesis=net.genesis, action=Action.UPDATE_KEYS, authority=req.authority,
            prev=member.last_action, issued=at, certificate=cert, signers=net.admins[:2],
        ),
        at,
    )  # fmt: skip


def _status(net: DevNetwork, action: Action, at: int) -> None:
    net.set_status("FR-PNF", action, "stolen laptop", at)


# --- the request ---------------------------------------------------------------------------------


def test_a_verified_request_names_what_it_replaces_and_its_fingerprint():
    net = _net()
    m = net.members["FR-PNF"]
    identity, _, ka = _new(net)
    signed = make_key_update(
        genesis=net.genesis, authority=FR, current=m.identity, identity=identity,
        transport=m.transport, ka_key=ka.public_key, created=NOW,
    )  # fmt: skip
    req = KeyUpdateRequest.decode(signed.encode(), net.directory)
    assert req.replaced == ("identity", "key-agreement")
    assert req.created == NOW
    assert [s.key_id for s in req.signed.signatures] == sorted(
        [m.identity.key_id, identity.key_id, m.transport.key_id], key=str
    )
    assert req.digest == signed.digest()
    cert = certificate_for(req, net.directory.member(FR).certificate, serial=SERIAL,
                           not_before=NOW)  # fmt: skip
    assert cert.fingerprint() == req.fingerprint()
    assert cert.application == req.digest
    assert (cert.serial, cert.not_before) == (SERIAL, NOW)
    assert cert.not_after == net.directory.member(FR).certificate.not_after
    assert cert.transport_key == m.transport.verify_key


def test_the_kem_challenge_is_bound_to_the_request():
    net = _net()
    m = net.members["FR-PNF"]
    identity, transport, ka = _new(net)
    signed = make_key_update(
        genesis=net.genesis, authority=FR, current=m.identity, identity=identity,
        transport=transport, ka_key=ka.public_key, created=NOW,
    )  # fmt: skip
    req = KeyUpdateRequest.decode(signed.encode(), net.directory)
    challenge, secret = kem_pop_challenge(req.ka_key, req.digest)
    assert kem_pop_answer(ka, req.digest, challenge) == secret
    with pytest.raises(GlobeError) as info:
        kem_pop_answer(ka, m.application.digest, challenge)
    assert info.value.slug == "decryption-failed"


# --- the admin's rule for the draft update-keys ---------------------------------------------------


def _draft(net: DevNetwork, req: KeyUpdateRequest, at: int = NOW) -> dict[str, Any]:
    member = net.directory.member(req.authority)
    cert = certificate_for(req, member.certificate, serial=SERIAL, not_before=at)
    action = make_action(
        genesis=net.genesis, action=Action.UPDATE_KEYS, authority=req.authority,
        prev=member.last_action, issued=at, certificate=cert,
    )  # fmt: skip
    return dict(action.signed.payload_json(what="draft"))


def _cert(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def alter(p: dict[str, Any]) -> None:
        p["certificate"] = {**p["certificate"], field: value}

    return alter


def _top(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def alter(p: dict[str, Any]) -> None:
        if value is None:
            del p[field]
        else:
            p[field] = value

    return alter


def test_the_admin_signs_the_draft_the_request_asks_for():
    net = _net()
    req, _ = _request(net)
    draft = canonical.encode(_draft(net, req))
    action = check_key_update_draft(req, draft, net.directory, now=NOW)
    assert action.action is Action.UPDATE_KEYS
    assert action.certificate is not None
    assert action.certificate.identity_key == req.identity_key


_DRAFTS: list[tuple[str, Callable[[dict[str, Any]], None], type[GlobeError], str]] = [
    ("a suspension instead", _top("action", "suspend"), GlobeError, ""),
    ("an admission instead", _top("prev", None), GlobeError, ""),
    ("a reason added", _top("reason", "rotation"), MembershipError,
     "the draft is not a plain key update of FR-PNF"),
    ("another authority", _top("authority", "FR-AFA"), MembershipError,
     "the draft is not a plain key update of FR-PNF"),
    ("an older prev", _top("prev", canonical.b64e(bytes(32))), MembershipError,
     "the draft does not follow the latest action on FR-PNF"),
    ("another name", _cert("name", "Someone else"), MembershipError,
     "the draft certificate does not match the key update"),
    ("a later end", _cert("not_after", NOW + 5000 * 86400), MembershipError,
     "the draft certificate does not match the key update"),
    ("no request digest", _cert("application", canonical.b64e(bytes(32))), MembershipError,
     "the draft certificate does not match the key update"),
    ("a start long ago", _cert("not_before", NOW - MAX_DRAFT_AGE - 1), MembershipError,
     "the draft certificate starts"),
    ("issued long ago", _top("issued", NOW - MAX_DRAFT_AGE - 1), MembershipError,
     "the draft key update is dated"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "alter", "error", "detail"), _DRAFTS, ids=[d[0] for d in _DRAFTS])
def test_the_admin_refuses_a_draft_that_differs(what, alter, error, detail):
    net = _net()
    req, _ = _request(net)
    payload = _draft(net, req)
    alter(payload)
    with pytest.raises(error) as info:
        check_key_update_draft(req, canonical.encode(payload), net.directory, now=NOW)
    assert info.value.detail.startswith(detail)
    if error is GlobeError:
        assert type(info.value) is not MembershipError


def test_a_draft_after_the_certificate_ended_is_refused():
    net = _net()
    req, _ = _request(net)
    end = net.directory.member(FR).certificate.not_after
    draft = canonical.encode(_draft(net, req, at=end - 10))
    with pytest.raises(MembershipError) as info:
        check_key_update_draft(req, draft, net.directory, now=end)
    assert "is not a current validity" in info.value.detail


def test_draft_times_need_a_certificate():
    net = _net()
    suspend = make_action(
        genesis=net.genesis, action=Action.SUSPEND, authority=FR,
        prev=net.directory.member(FR).last_action, issued=NOW, reason="r",
    )  # fmt: skip
    with pytest.raises(UsageError):
        check_draft_times(suspend, now=NOW, what="suspension")


# --- what a replaced identity key still verifies ------------------------------------------------


def _receipt(net: DevNetwork, key: SigningKey, time: int) -> bytes:
    return make_receipt(
        genesis=net.genesis, identity=key, message_id=MessageId(bytes(16)),
        envelope_hash=bytes(32), sender=DE, recipient=FR, time=time,
    ).encode()  # fmt: skip


def test_a_planned_rotation_retires_the_old_key_at_its_entry():
    net = _net()
    old = net.members["FR-PNF"].identity
    req, new = _request(net)
    _update(net, req, NOW)
    state = net.directory
    member = state.member(FR)
    assert member.retired_at == {old.key_id: NOW}
    assert member.suspended_at is None
    assert state.identity_key(FR, new.key_id, NOW + 10) == new.verify_key
    # An envelope dated before the rotation names the old key: still the sender's.
    assert state.identity_key(FR, old.key_id, NOW + 10, signed_at=NOW - 1) == old.verify_key
    for signed_at in (NOW, NOW + 5, None):
        with pytest.raises(NotCertified):
            state.identity_key(FR, old.key_id, NOW + 10, signed_at=signed_at)
    DeliveryReceipt.decode(_receipt(net, old, NOW - 1), state)
    with pytest.raises(BadSignature):
        DeliveryReceipt.decode(_receipt(net, old, NOW), state)


def test_the_compromise_procedure_retires_the_stolen_key_at_the_suspension():
    net = _net()
    old = net.members["FR-PNF"].identity
    _status(net, Action.SUSPEND, NOW)
    assert net.directory.member(FR).suspended_at == NOW
    req, new = _request(net)
    assert req.replaced == ("identity", "transport", "key-agreement")
    _update(net, req, NOW + 100)
    assert net.directory.member(FR).status is MemberStatus.SUSPENDED
    _status(net, Action.REINSTATE, NOW + 200)
    state = net.directory
    member = state.member(FR)
    assert (member.status, member.suspended_at) == (MemberStatus.ACTIVE, None)
    assert member.retired_at == {old.key_id: NOW}
    # The thief's signatures dated after the suspension no longer verify...
    with pytest.raises(NotCertified):
        state.identity_key(FR, old.key_id, NOW + 300, signed_at=NOW + 50)
    with pytest.raises(BadSignature):
        DeliveryReceipt.decode(_receipt(net, old, NOW + 50), state)
    # ...what the member signed before it still does.
    assert state.identity_key(FR, old.key_id, NOW + 300, signed_at=NOW - 1) == old.verify_key
    DeliveryReceipt.decode(_receipt(net, old, NOW - 1), state)
    DeliveryReceipt.decode(_receipt(net, new, NOW + 300), state)


def test_a_revocation_ends_the_suspension():
    net = _net()
    _status(net, Action.SUSPEND, NOW)
    _status(net, Action.REVOKE, NOW + 10)
    member = net.directory.member(FR)
    assert (member.status, member.suspended_at) == (MemberStatus.REVOKED, None)


def test_a_replaced_key_of_an_expired_member_verifies_nothing_new():
    net = _net()
    req, _ = _request(net)
    _update(net, req, NOW)
    end = net.directory.member(FR).certificate.not_after
    with pytest.raises(ExpiredError):
        net.directory.identity_key(FR, req.identity_key.key_id, end, signed_at=NOW)
