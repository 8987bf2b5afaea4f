"""The verified directory: log replay, transitions, tampering, key reuse, rollback and fork."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from protocol import canonical, crypto
from protocol.canonical import b64e
from protocol.devnet import GENESIS_TIME, DevNetwork, build_devnet
from protocol.directory import (
    TRANSITIONS,
    DirectoryState,
    HeadRelation,
    MemberStatus,
    verify_log,
)
from protocol.errors import (
    BadSignature,
    ChainBroken,
    DuplicateKey,
    ExpiredError,
    ForkDetected,
    InvalidIdentifier,
    LogError,
    MalformedError,
    MemberNotActive,
    NonCanonical,
    NotCertified,
    NotYetValid,
    QuorumNotMet,
    RollbackDetected,
    UnknownField,
    UnknownMember,
    UnsupportedVersion,
    UsageError,
)
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    Action,
    Certificate,
    MembershipAction,
    make_action,
    make_application,
    make_checkpoint,
    make_entry,
)
from protocol.prekeys import SignedPrekey
from protocol.signed import SignedObject

T1 = GENESIS_TIME + 3600  # when the devnet members were admitted
LATER = GENESIS_TIME + 7200
FR = AuthorityId.parse("FR-PNF")
DE = AuthorityId.parse("DE-BKA")
GB = AuthorityId.parse("GB-SFO")


# --- helpers -------------------------------------------------------------------------------------


def _snapshot(state: DirectoryState) -> tuple[Any, ...]:
    members = {
        aid: (m.status, m.last_action, m.updated_seq, m.reason, m.certificate)
        for aid, m in state.members.items()
    }
    return (
        state.seq,
        state.head,
        tuple(state.heads),
        state.time,
        members,
        frozenset(state.serials),
        dict(state.key_owner),
    )


def _entry(
    state: DirectoryState,
    signed: SignedObject,
    *,
    time: int = LATER,
    seq: int | None = None,
    prev: bytes | None = None,
) -> bytes:
    return make_entry(
        genesis=state.genesis,
        seq=state.seq + 1 if seq is None else seq,
        prev=state.head if prev is None else prev,
        time=time,
        action=signed,
    )


def _refuse(state: DirectoryState, entry: bytes, error: type[Exception]) -> None:
    """Apply ``entry``: it must fail with exactly ``error`` and leave the state unchanged."""
    before = _snapshot(state)
    with pytest.raises(error) as info:
        state.apply(entry)
    assert type(info.value) is error, info.value
    assert _snapshot(state) == before


def _cert(
    net: DevNetwork, authority: AuthorityId, *, serial: str | None = None, **keys: Any
) -> Certificate:
    """A certificate for ``authority`` with fresh keys (overridable) and a fresh serial."""
    identity = SigningKey.generate(net.rng)
    transport = SigningKey.generate(net.rng)
    ka = KemPrivateKey.generate(net.rng)
    app = make_application(
        genesis=net.genesis,
        authority=authority,
        name=f"Authority {authority}",
        kinds=["anti-corruption"],
        languages=["en"],
        contact="duty officer",
        legal_basis="UNCAC art. 36",
        endpoint=None,
        identity=identity,
        transport=transport,
        ka_key=ka.public_key,
        created=T1,
    )
    cert = Certificate.from_application(
        app,
        serial=serial or net.rng(16).hex(),
        not_before=T1,
        not_after=T1 + 365 * 86400,
    )
    return dataclasses.replace(cert, **keys) if keys else cert


def _action(
    net: DevNetwork,
    kind: Action,
    authority: AuthorityId,
    *,
    prev: bytes | None = None,
    certificate: Certificate | None = None,
    signers: list[SigningKey] | None = None,
) -> MembershipAction:
    carries = kind in (Action.ADMIT, Action.UPDATE_KEYS)
    if carries and certificate is None:
        certificate = _cert(net, authority)
    return make_action(
        genesis=net.genesis,
        action=kind,
        authority=authority,
        prev=prev,
        issued=LATER,
        reason=None if carries else f"{kind.value} for the test",
        certificate=certificate,
        signers=net.admins[: net.genesis.threshold] if signers is None else signers,
    )


def _last(net: DevNetwork, authority: AuthorityId) -> bytes:
    return net.directory.members[authority].last_action


# --- replay of the devnet log --------------------------------------------------------------------


def test_verify_log_rebuilds_devnet_state(net):
    state = verify_log(net.genesis, net.entries)
    expected = net.directory
    assert state.seq == expected.seq == len(net.entries) == 4
    assert state.head == expected.head
    assert state.heads == expected.heads
    assert state.heads[0] == net.genesis.digest
    assert state.time == expected.time
    assert (
        set(state.members) == set(expected.members) == {AuthorityId.parse(a) for a in net.members}
    )
    for aid, member in expected.members.items():
        got = state.members[aid]
        assert got.status is member.status is MemberStatus.ACTIVE
        assert got.certificate == member.certificate
        assert got.last_action == member.last_action
        assert (got.admitted_seq, got.updated_seq) == (member.admitted_seq, member.updated_seq)
    assert state.serials == expected.serials
    assert state.key_owner == expected.key_owner


def test_empty_log(net):
    state = verify_log(net.genesis, [])
    assert (state.seq, state.head, state.members) == (0, net.genesis.digest, {})
    with pytest.raises(UnknownMember):
        state.member(FR)


def test_extend_keeps_verified_prefix(net):
    state = DirectoryState(net.genesis)
    entries = [net.entries[0], net.entries[1], net.entries[3]]
    with pytest.raises(ChainBroken):
        state.extend(entries)
    assert state.seq == 2
    assert state.head == verify_log(net.genesis, net.entries[:2]).head


def test_a_state_copied_with_its_heads_continues_the_chain(net):
    """A state built from another's fields keeps the given heads (no genesis reset)."""
    prefix = verify_log(net.genesis, net.entries[:2])
    copy = dataclasses.replace(
        prefix, heads=list(prefix.heads), members=dict(prefix.members),
        key_owner=dict(prefix.key_owner), serials=set(prefix.serials),
    )  # fmt: skip
    assert (copy.seq, copy.head, copy.heads) == (2, prefix.head, prefix.heads)
    copy.extend(net.entries[2:])
    assert (copy.seq, copy.head) == (len(net.entries), net.directory.head)
    assert prefix.seq == 2  # the original is untouched


# --- transitions ---------------------------------------------------------------------------------

_STATUSES: list[MemberStatus | None] = [None, *MemberStatus]
_PAIRS = [(status, action) for status in _STATUSES for action in Action]


def _network_with(fresh_net: Any, status: MemberStatus | None) -> tuple[DevNetwork, AuthorityId]:
    net = fresh_net()
    if status is None:
        return net, GB
    if status is MemberStatus.SUSPENDED:
        net.set_status("FR-PNF", Action.SUSPEND, "inquiry", LATER)
    elif status is MemberStatus.REVOKED:
        net.set_status("FR-PNF", Action.REVOKE, "withdrawn", LATER)
    return net, FR


@pytest.mark.parametrize(
    ("status", "action"),
    _PAIRS,
    ids=[f"{s.value if s else 'absent'}-{a.value}" for s, a in _PAIRS],
)
def test_transition_table(fresh_net, status, action):
    net, aid = _network_with(fresh_net, status)
    state = net.directory
    assert (state.members[aid].status if aid in state.members else None) is status
    if action is Action.ADMIT:
        prev = None
    elif aid in state.members:
        prev = _last(net, aid)
    else:
        prev = crypto.sha256(b"no such action")
    entry = _entry(state, _action(net, action, aid, prev=prev).signed)
    expected = TRANSITIONS.get((status, action))
    if expected is None:
        _refuse(state, entry, LogError)
    else:
        state.apply(entry)
        assert state.members[aid].status is expected
        assert state.seq == len(net.entries) + 1


def test_transition_table_is_complete():
    allowed = {(s, a) for (s, a) in _PAIRS if (s, a) in TRANSITIONS}
    assert len(allowed) == 7
    assert set(TRANSITIONS) == allowed
    assert all(s is not MemberStatus.REVOKED for s, _ in TRANSITIONS)


def test_old_action_cannot_be_replayed(fresh_net):
    net = fresh_net()
    net.set_status("FR-PNF", Action.SUSPEND, "first inquiry", LATER)
    net.set_status("FR-PNF", Action.REINSTATE, "cleared", LATER + 1)
    reinstate = net.members["FR-PNF"].last_action
    net.set_status("FR-PNF", Action.SUSPEND, "second inquiry", LATER + 2)
    state = net.directory
    assert state.members[FR].status is MemberStatus.SUSPENDED
    # The transition suspended -> active is allowed; only ``prev`` betrays the replay.
    _refuse(state, _entry(state, reinstate.signed, time=LATER + 3), LogError)


def test_action_with_wrong_prev(fresh_net):
    net = fresh_net()
    state = net.directory
    admit_of_de = _last(net, DE)
    for prev in (admit_of_de, crypto.sha256(b"x"), net.genesis.digest):
        suspend = _action(net, Action.SUSPEND, FR, prev=prev)
        _refuse(state, _entry(state, suspend.signed), LogError)


def test_admit_action_cannot_be_replayed(net):
    state = verify_log(net.genesis, net.entries)
    admit = MembershipAction.from_signed(
        SignedObject.from_json(
            canonical.decode(net.entries[0], max_size=1 << 16, what="e")["action"], what="a"
        ),
        net.genesis,
    )
    _refuse(state, _entry(state, admit.signed), LogError)
    _refuse(state, net.entries[0], ChainBroken)


# --- chain ---------------------------------------------------------------------------------------


def _valid_next(net: DevNetwork, state: DirectoryState) -> SignedObject:
    return _action(net, Action.SUSPEND, FR, prev=state.members[FR].last_action).signed


def test_chain_valid_next_entry(net):
    state = verify_log(net.genesis, net.entries)
    state.apply(_entry(state, _valid_next(net, state), time=state.time))  # same time is fine
    assert state.members[FR].status is MemberStatus.SUSPENDED


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"seq": 6}, ChainBroken),  # gap
        ({"seq": 4}, ChainBroken),  # repeats the last position
        ({"seq": 1}, ChainBroken),
        ({"seq": 0}, MalformedError),  # seq starts at 1
        ({"prev": b"\x00" * 32}, ChainBroken),
        ({"prev": b"genesis"}, ChainBroken),
        ({"prev": b"previous entry"}, ChainBroken),
        ({"time": T1 - 1}, ChainBroken),  # time goes backwards
        ({"time": 0}, ChainBroken),
    ],
)
def test_chain_refused(net, change, error):
    state = verify_log(net.genesis, net.entries)
    prev = change.get("prev")
    if prev == b"genesis":
        prev = net.genesis.digest
    elif prev == b"previous entry":
        prev = state.heads[-2]
    entry = _entry(
        state,
        _valid_next(net, state),
        seq=change.get("seq"),
        prev=prev,
        time=change.get("time", LATER),
    )
    _refuse(state, entry, error)


@pytest.mark.parametrize(("offset", "ok"), [(-1, False), (-86400, False), (0, True)])
def test_first_entry_not_before_genesis(net, offset, ok):
    state = verify_log(net.genesis, [])
    admit = _action(net, Action.ADMIT, GB)
    entry = _entry(state, admit.signed, time=net.genesis.created + offset)
    if ok:
        state.apply(entry)
        assert state.time == net.genesis.created
    else:
        _refuse(state, entry, ChainBroken)


@pytest.mark.parametrize(
    "order",
    [[1, 0, 2, 3], [0, 2, 1, 3], [0, 1, 3], [1, 2, 3], [0, 1, 2, 3, 3], [0, 0]],
)
def test_reordered_dropped_or_repeated_entries(net, order):
    with pytest.raises(ChainBroken):
        verify_log(net.genesis, [net.entries[i] for i in order])


def test_log_of_another_network(net, fresh_net):
    other = fresh_net(b"another network")
    with pytest.raises(MalformedError):
        verify_log(net.genesis, other.entries)


# --- entries edited behind the log's back --------------------------------------------------------


def _edit_entry(raw: bytes, edit: Any) -> bytes:
    obj = canonical.decode(raw, max_size=1 << 16, what="e")
    edit(obj)
    return canonical.encode(obj)


def _edit_payload(raw: bytes, edit: Any) -> bytes:
    """Edit the admin-signed action payload, keeping the signatures."""

    def change(obj: dict[str, Any]) -> None:
        payload = canonical.decode(
            canonical.b64d(obj["action"]["payload"], what="p"), max_size=1 << 16, what="p"
        )
        edit(payload)
        obj["action"]["payload"] = b64e(canonical.encode(payload))

    return _edit_entry(raw, change)


def _set_cert(name: str, value: Any) -> Any:
    return lambda p: p["certificate"].__setitem__(name, value)


def _flip_sig(obj: dict[str, Any]) -> None:
    sig = canonical.b64d(obj["action"]["sigs"][0]["sig"], what="s")
    obj["action"]["sigs"][0]["sig"] = b64e(bytes([sig[0] ^ 1]) + sig[1:])


def _fr_identity(net: DevNetwork) -> str:
    return b64e(bytes(net.members["FR-PNF"].identity.verify_key))


_EDITS: list[tuple[str, Any, type[Exception]]] = [
    (
        "certificate name changed, signatures kept",
        lambda n, raw: _edit_payload(raw, _set_cert("name", "Bundespolizei")),
        QuorumNotMet,
    ),
    (
        "certificate identity key swapped for another member's",
        lambda n, raw: _edit_payload(raw, _set_cert("identity_key", _fr_identity(n))),
        QuorumNotMet,
    ),
    (
        "certificate validity extended",
        lambda n, raw: _edit_payload(raw, _set_cert("not_after", 2**40)),
        QuorumNotMet,
    ),
    (
        "action authority changed",
        lambda n, raw: _edit_payload(raw, lambda p: p.__setitem__("authority", "DE-BKA2")),
        QuorumNotMet,
    ),
    ("one admin signature flipped", lambda n, raw: _edit_entry(raw, _flip_sig), QuorumNotMet),
    (
        "one admin signature dropped",
        lambda n, raw: _edit_entry(raw, lambda o: o["action"]["sigs"].pop()),
        QuorumNotMet,
    ),
    (
        "all signatures dropped",
        lambda n, raw: _edit_entry(raw, lambda o: o["action"].__setitem__("sigs", [])),
        QuorumNotMet,
    ),
    (
        "a signature duplicated",
        lambda n, raw: _edit_entry(
            raw, lambda o: o["action"]["sigs"].__setitem__(1, o["action"]["sigs"][0])
        ),
        MalformedError,
    ),
    (
        "time changed (breaks the next link)",
        lambda n, raw: _edit_entry(raw, lambda o: o.__setitem__("time", T1 + 5)),
        ChainBroken,
    ),
    ("seq changed", lambda n, raw: raw.replace(b'"seq":2', b'"seq":3'), ChainBroken),
    (
        "network changed",
        lambda n, raw: _edit_entry(raw, lambda o: o.__setitem__("network", b64e(bytes(32)))),
        MalformedError,
    ),
    (
        "type changed",
        lambda n, raw: _edit_entry(raw, lambda o: o.__setitem__("type", "log")),
        MalformedError,
    ),
    (
        "version changed",
        lambda n, raw: _edit_entry(raw, lambda o: o.__setitem__("v", 2)),
        UnsupportedVersion,
    ),
    (
        "field added",
        lambda n, raw: _edit_entry(raw, lambda o: o.__setitem__("note", "x")),
        UnknownField,
    ),
    (
        "field added to the container",
        lambda n, raw: _edit_entry(raw, lambda o: o["action"].__setitem__("note", "x")),
        UnknownField,
    ),
    ("whitespace added", lambda n, raw: raw.replace(b'"seq":2', b'"seq": 2'), NonCanonical),
    ("key repeated", lambda n, raw: raw.replace(b'"seq":2', b'"seq":2,"seq":2'), DuplicateKey),
    (
        "escape added",
        lambda n, raw: raw.replace(b'"log-entry"', b'"log\\u002dentry"'),
        NonCanonical,
    ),
    ("trailing newline", lambda n, raw: raw + b"\n", NonCanonical),
    ("truncated", lambda n, raw: raw[:-1], MalformedError),
]


@pytest.mark.parametrize(
    ("edit", "error"), [(e[1], e[2]) for e in _EDITS], ids=[e[0] for e in _EDITS]
)
def test_edited_entry(net, edit, error):
    edited = edit(net, net.entries[1])
    assert edited != net.entries[1]
    entries = [net.entries[0], edited, *net.entries[2:]]
    with pytest.raises(error) as info:
        verify_log(net.genesis, entries)
    assert type(info.value) is error


def test_every_bit_flip_in_an_entry_is_caught(net):
    """Flip the low bit of every byte of entry 2: refused, or (in ``time``) caught by the link."""
    state = verify_log(net.genesis, net.entries[:1])
    raw = net.entries[1]
    start = raw.index(b'"time":') + len(b'"time":')
    time_digits = range(start, raw.index(b",", start))
    before = _snapshot(state)
    accepted = []
    for i in range(len(raw)):
        flipped = raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :]
        try:
            state.apply(flipped)
        except (
            MalformedError,
            NonCanonical,
            DuplicateKey,
            UnknownField,
            InvalidIdentifier,
            UnsupportedVersion,
            QuorumNotMet,
            ChainBroken,
        ):
            assert _snapshot(state) == before
            continue
        accepted.append(i)
        # Accepted only with another time; then the original next entry no longer links.
        with pytest.raises(ChainBroken):
            state.apply(net.entries[2])
        state = verify_log(net.genesis, net.entries[:1])
    assert accepted
    assert all(i in time_digits for i in accepted)


def test_member_added_without_admin_signatures(net):
    state = verify_log(net.genesis, net.entries)
    admit = _action(net, Action.ADMIT, GB, signers=[])
    assert admit.signed.signatures == ()
    _refuse(state, _entry(state, admit.signed), QuorumNotMet)


def test_status_change_without_quorum(net):
    state = verify_log(net.genesis, net.entries)
    for signers in ([], [net.admins[2]], [net.members["FR-PNF"].identity, net.admins[0]]):
        revoke = _action(
            net, Action.REVOKE, DE, prev=state.members[DE].last_action, signers=signers
        )
        _refuse(state, _entry(state, revoke.signed), QuorumNotMet)


# --- key and serial reuse (R4) -------------------------------------------------------------------


def _fr_keys(net: DevNetwork) -> dict[str, Any]:
    fr = net.members["FR-PNF"]
    return {
        "identity": fr.identity.verify_key,
        "transport": fr.transport.verify_key,
        "ka": bytes(fr.ka.public_key),
        "serial": fr.certificate.serial,
    }


_REUSE = [
    ("identity_key", "member identity"),
    ("identity_key", "member transport"),
    ("transport_key", "member transport"),
    ("transport_key", "member identity"),
    ("ka_key_raw", "member ka"),
    ("identity_key", "hub"),
    ("transport_key", "hub"),
    ("identity_key", "admin 0"),
    ("transport_key", "admin 2"),
]


@pytest.mark.parametrize(("field", "source"), _REUSE, ids=[f"{f}={s}" for f, s in _REUSE])
def test_admit_with_reused_key(fresh_net, field, source):
    net = fresh_net()
    fr = _fr_keys(net)
    keys: dict[str, Any] = {
        "member identity": fr["identity"],
        "member transport": fr["transport"],
        "member ka": fr["ka"],
        "hub": net.hub.verify_key,
        "admin 0": net.admins[0].verify_key,
        "admin 2": net.admins[2].verify_key,
    }
    cert = _cert(net, GB, **{field: keys[source]})
    admit = _action(net, Action.ADMIT, GB, certificate=cert)
    _refuse(net.directory, _entry(net.directory, admit.signed), LogError)


def test_admit_with_reused_serial(fresh_net):
    net = fresh_net()
    cert = _cert(net, GB, serial=_fr_keys(net)["serial"])
    admit = _action(net, Action.ADMIT, GB, certificate=cert)
    _refuse(net.directory, _entry(net.directory, admit.signed), LogError)


def test_update_keys_rotation(fresh_net):
    net = fresh_net()
    fr = net.members["FR-PNF"]
    state = net.directory
    old = state.members[FR].certificate
    new_identity = SigningKey.generate(net.rng)
    cert = _cert(
        net,
        FR,
        identity_key=new_identity.verify_key,
        transport_key=old.transport_key,  # keeping a current key is allowed
        ka_key_raw=old.ka_key_raw,
    )
    update = _action(net, Action.UPDATE_KEYS, FR, prev=_last(net, FR), certificate=cert)
    net.append(update, LATER)
    assert state.members[FR].status is MemberStatus.ACTIVE
    assert state.members[FR].certificate == cert
    assert set(state.members[FR].identity_keys) == {fr.identity.key_id, new_identity.key_id}
    assert state.identity_key(FR, new_identity.key_id, LATER) == new_identity.verify_key
    with pytest.raises(NotCertified):
        state.identity_key(FR, fr.identity.key_id, LATER)
    # The old prekey was signed by the old identity key: it no longer verifies.
    with pytest.raises(BadSignature):
        SignedPrekey.decode(
            fr.signed_prekey.signed.encode(),
            net.genesis,
            new_identity.verify_key,
            authority=FR,
        )
    # A rotated-out key cannot come back, neither for FR-PNF nor for anyone else.
    back = _cert(net, FR, identity_key=fr.identity.verify_key)
    again = _action(net, Action.UPDATE_KEYS, FR, prev=_last(net, FR), certificate=back)
    _refuse(state, _entry(state, again.signed), LogError)
    other = _cert(net, GB, identity_key=fr.identity.verify_key)
    _refuse(
        state, _entry(state, _action(net, Action.ADMIT, GB, certificate=other).signed), LogError
    )
    # The serial of the replaced certificate is spent too.
    reused = _cert(net, FR, serial=old.serial)
    update2 = _action(net, Action.UPDATE_KEYS, FR, prev=_last(net, FR), certificate=reused)
    _refuse(state, _entry(state, update2.signed), LogError)


@pytest.mark.parametrize(
    "swap",
    [
        {"identity_key": "transport", "transport_key": "identity"},
        {"identity_key": "transport"},
        {"transport_key": "identity"},
    ],
)
def test_update_keys_cannot_move_a_key_to_another_role(fresh_net, swap):
    net = fresh_net()
    old = net.directory.members[FR].certificate
    keys = {"identity": old.identity_key, "transport": old.transport_key}
    cert = _cert(net, FR, **{field: keys[role] for field, role in swap.items()})
    update = _action(net, Action.UPDATE_KEYS, FR, prev=_last(net, FR), certificate=cert)
    _refuse(net.directory, _entry(net.directory, update.signed), LogError)


def test_update_keys_keeps_status_and_reason(fresh_net):
    net = fresh_net()
    net.set_status("FR-PNF", Action.SUSPEND, "inquiry opened", LATER)
    update = _action(net, Action.UPDATE_KEYS, FR, prev=_last(net, FR))
    net.append(update, LATER + 1)
    member = net.directory.members[FR]
    assert member.status is MemberStatus.SUSPENDED
    assert member.reason == "inquiry opened"
    assert member.certificate == update.certificate
    assert member.updated_seq == net.directory.seq


def test_update_keys_with_another_members_key(fresh_net):
    net = fresh_net()
    de = net.members["DE-BKA"]
    cert = _cert(net, FR, transport_key=de.transport.verify_key)
    update = _action(net, Action.UPDATE_KEYS, FR, prev=_last(net, FR), certificate=cert)
    _refuse(net.directory, _entry(net.directory, update.signed), LogError)


def test_make_action_certificate_for_other_authority(net):
    with pytest.raises(UsageError):
        _action(net, Action.ADMIT, GB, certificate=net.members["FR-PNF"].certificate)


# --- member status and certificate validity ------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "status"),
    [
        ([Action.SUSPEND], MemberStatus.SUSPENDED),
        ([Action.REVOKE], MemberStatus.REVOKED),
        ([Action.SUSPEND, Action.REVOKE], MemberStatus.REVOKED),
        ([Action.SUSPEND, Action.REINSTATE], MemberStatus.ACTIVE),
    ],
)
def test_inactive_members(fresh_net, actions, status):
    net = fresh_net()
    for i, action in enumerate(actions):
        net.set_status("FR-PNF", action, f"step {i}", LATER + i)
    state = net.directory
    member = state.member(FR)
    assert member.status is status
    assert member.reason == f"step {len(actions) - 1}"
    kid = net.members["FR-PNF"].identity.key_id
    if status is MemberStatus.ACTIVE:
        assert state.active_member(FR, LATER).authority == FR
        assert state.identity_key(FR, kid, LATER) == net.members["FR-PNF"].identity.verify_key
    else:
        with pytest.raises(MemberNotActive):
            state.active_member(FR, LATER)
        with pytest.raises(MemberNotActive):
            state.identity_key(FR, kid, LATER)
    assert state.active_member(DE, LATER).status is MemberStatus.ACTIVE


def test_unknown_member(net):
    with pytest.raises(UnknownMember):
        net.directory.member(GB)
    with pytest.raises(UnknownMember):
        net.directory.active_member(GB, LATER)
    with pytest.raises(UnknownMember):
        net.directory.identity_key(GB, net.members["FR-PNF"].identity.key_id, LATER)


def test_identity_key_of_another_member(net):
    with pytest.raises(NotCertified):
        net.directory.identity_key(FR, net.members["DE-BKA"].identity.key_id, LATER)
    with pytest.raises(NotCertified):
        net.directory.identity_key(FR, net.members["FR-PNF"].transport.key_id, LATER)


_VALIDITY: list[tuple[str, Any, type[Exception] | None]] = [
    ("before not_before", lambda c: c.not_before - 1, NotYetValid),
    ("at not_before", lambda c: c.not_before, None),
    ("just before not_after", lambda c: c.not_after - 1, None),
    ("at not_after", lambda c: c.not_after, ExpiredError),
    ("a day after not_after", lambda c: c.not_after + 86400, ExpiredError),
]


@pytest.mark.parametrize(
    ("when", "error"), [(v[1], v[2]) for v in _VALIDITY], ids=[v[0] for v in _VALIDITY]
)
def test_certificate_validity(net, when, error):
    cert = net.directory.member(FR).certificate
    now = when(cert)
    if error is None:
        assert net.directory.active_member(FR, now).authority == FR
    else:
        with pytest.raises(error):
            net.directory.active_member(FR, now)
        with pytest.raises(error):
            net.directory.identity_key(FR, net.members["FR-PNF"].identity.key_id, now)
    # member() ignores validity: the record is still there.
    assert net.directory.member(FR).certificate == cert


# --- rollback and fork ---------------------------------------------------------------------------


def test_check_trusted(net):
    state = net.directory
    for seq in range(state.seq + 1):
        state.check_trusted(seq, state.heads[seq])
    with pytest.raises(RollbackDetected):
        state.check_trusted(state.seq + 1, state.head)
    with pytest.raises(ForkDetected):
        state.check_trusted(2, state.heads[3])
    with pytest.raises(ForkDetected):
        state.check_trusted(0, state.heads[1])


def test_verify_log_with_trusted_head(net):
    full = net.directory
    verify_log(net.genesis, net.entries, trusted=(2, full.heads[2]))
    with pytest.raises(RollbackDetected):
        verify_log(net.genesis, net.entries[:2], trusted=(4, full.head))
    with pytest.raises(ForkDetected):
        verify_log(net.genesis, net.entries, trusted=(4, full.heads[3]))


@pytest.mark.parametrize(
    ("seq", "head", "relation"),
    [
        (4, 4, HeadRelation.SAME),
        (0, 0, HeadRelation.PEER_BEHIND),
        (3, 3, HeadRelation.PEER_BEHIND),
        (5, None, HeadRelation.PEER_AHEAD),
        (100, 4, HeadRelation.PEER_AHEAD),
        (4, 3, HeadRelation.FORK),
        (2, 1, HeadRelation.FORK),
        (0, None, HeadRelation.FORK),
    ],
)
def test_relation(net, seq, head, relation):
    state = net.directory
    raw = state.heads[head] if head is not None else crypto.sha256(b"other")
    assert state.relation(seq, raw) is relation


@pytest.mark.parametrize("seq", [-1, -5])
def test_negative_seq_refused(net, seq):
    # heads[-1] is the current head: a negative position must not wrap around.
    with pytest.raises(UsageError):
        net.directory.check_trusted(seq, net.directory.head)
    with pytest.raises(UsageError):
        net.directory.relation(seq, net.directory.head)


def test_check_checkpoint(net):
    state = net.directory

    def cp(seq: int, head: bytes) -> Any:
        return make_checkpoint(genesis=net.genesis, hub=net.hub, seq=seq, head=head, time=LATER)

    assert state.check_checkpoint(cp(4, state.head)) is HeadRelation.SAME
    assert state.check_checkpoint(cp(2, state.heads[2])) is HeadRelation.PEER_BEHIND
    assert state.check_checkpoint(cp(9, bytes(32))) is HeadRelation.PEER_AHEAD
    with pytest.raises(ForkDetected):
        state.check_checkpoint(cp(4, state.heads[3]))
    with pytest.raises(ForkDetected):
        state.check_checkpoint(cp(1, bytes(32)))


def test_equivocating_hub_is_detected(fresh_net):
    """Two nodes receive different entries at the same position from the same hub."""
    view_a = fresh_net(b"same")
    view_b = fresh_net(b"same")
    assert view_a.entries == view_b.entries
    view_a.set_status("FR-PNF", Action.SUSPEND, "inquiry", LATER)
    view_b.set_status("DE-BKA", Action.SUSPEND, "inquiry", LATER)
    a, b = view_a.directory, view_b.directory
    assert a.seq == b.seq == 5
    assert a.relation(b.seq, b.head) is HeadRelation.FORK
    with pytest.raises(ForkDetected):
        a.check_trusted(b.seq, b.head)
    checkpoint_b = make_checkpoint(
        genesis=view_b.genesis, hub=view_b.hub, seq=b.seq, head=b.head, time=LATER
    )
    with pytest.raises(ForkDetected):
        a.check_checkpoint(checkpoint_b)
    # A node that trusted B's head is refused A's log (fork), and a shorter one (rollback).
    with pytest.raises(ForkDetected):
        verify_log(view_a.genesis, view_a.entries, trusted=(b.seq, b.head))
    with pytest.raises(RollbackDetected):
        verify_log(view_a.genesis, view_a.entries[:4], trusted=(b.seq, b.head))


# --- search --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def directory() -> DirectoryState:
    net = build_devnet(b"search")
    net.admit("FR-PNF", "Parquet national financier", languages=["fr"])
    net.admit(
        "FR-AGRASC",
        "Agence de recouvrement des avoirs",
        kinds=["asset-recovery"],
        languages=["fr", "en"],
    )
    net.admit(
        "DE-BKA", "Bundeskriminalamt", kinds=["fiu", "anti-corruption"], languages=["de", "en"]
    )
    net.admit(
        "ES-FCC",
        "Fiscal\u00eda contra la Corrupci\u00f3n",
        kinds=["mla-central", "anti-corruption"],
        languages=["es"],
    )
    net.admit("IT-ANAC", "Autorita Nazionale Anticorruzione", languages=["it"])
    net.admit("GB-SFO", "Serious Fraud Office", languages=["en"])
    net.set_status("IT-ANAC", Action.SUSPEND, "inquiry", LATER)
    net.set_status("GB-SFO", Action.REVOKE, "withdrawn", LATER)
    return net.directory


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["DE-BKA", "ES-FCC", "FR-AGRASC", "FR-PNF"]),
        (
            {"include_inactive": True},
            ["DE-BKA", "ES-FCC", "FR-AGRASC", "FR-PNF", "GB-SFO", "IT-ANAC"],
        ),
        ({"country": "FR"}, ["FR-AGRASC", "FR-PNF"]),
        ({"country": "fr"}, []),
        ({"country": "GB"}, []),
        ({"country": "GB", "include_inactive": True}, ["GB-SFO"]),
        ({"kind": "anti-corruption"}, ["DE-BKA", "ES-FCC", "FR-PNF"]),
        (
            {"kind": "anti-corruption", "include_inactive": True},
            ["DE-BKA", "ES-FCC", "FR-PNF", "GB-SFO", "IT-ANAC"],
        ),
        ({"kind": "asset-recovery"}, ["FR-AGRASC"]),
        ({"kind": "extradition"}, []),
        ({"language": "en"}, ["DE-BKA", "FR-AGRASC"]),
        ({"language": "en", "include_inactive": True}, ["DE-BKA", "FR-AGRASC", "GB-SFO"]),
        ({"language": "fr", "kind": "asset-recovery"}, ["FR-AGRASC"]),
        ({"text": "bundeskriminalamt"}, ["DE-BKA"]),
        ({"text": "BUNDESKRIMINAL"}, ["DE-BKA"]),
        ({"text": "FISCAL\u00cdA"}, ["ES-FCC"]),
        ({"text": "fiscalia"}, []),  # no accent folding
        ({"text": "  parquet \t NATIONAL  "}, ["FR-PNF"]),
        ({"text": "fr-pnf"}, ["FR-PNF"]),
        ({"text": "fr-"}, ["FR-AGRASC", "FR-PNF"]),
        ({"text": "fraud"}, []),
        ({"text": "fraud", "include_inactive": True}, ["GB-SFO"]),
        ({"text": "anticorruzione", "include_inactive": True}, ["IT-ANAC"]),
        ({"country": "DE", "language": "es"}, []),
    ],
)
def test_search(directory, query, expected):
    assert [str(m.authority) for m in directory.search(**query)] == expected
