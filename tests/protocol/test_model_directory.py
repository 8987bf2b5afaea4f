"""A stateful model of the membership log and the directory (protocol/directory.py).

Hypothesis drives :class:`~protocol.directory.DirectoryState` with any sequence of
log entries, valid and invalid — admissions, key updates, suspensions,
reinstatements and revocations; actions citing a stale ``prev``, below the admin
quorum, reusing a certified key, a serial or a reserved key; entries that skip,
repeat or rewind the chain — and offers it hub checkpoints, trusted heads, rolled
back logs and forked logs.  Each step's outcome is predicted by a reference model
written from docs/PROTOCOL.md §6 alone: a dict of authority -> status, the accepted
entries (whose hashes it computes itself), the certified keys and serials.  An
entry the model refuses must be refused with exactly the predicted error and leave
the directory as it was; one it accepts must move the directory as the model moves.

Bounded for CI: ``MAX_EXAMPLES`` runs of up to ``STEPS`` steps, under the suite's
Hypothesis profile (``ci`` is derandomised).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocol import crypto
from protocol.devnet import GENESIS_TIME, build_devnet
from protocol.directory import DirectoryState, HeadRelation, MemberStatus, verify_log
from protocol.errors import (
    ChainBroken,
    ForkDetected,
    GlobeError,
    LogError,
    MalformedError,
    QuorumNotMet,
    RollbackDetected,
)
from protocol.fastlog import decode_entry
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Certificate,
    LogEntry,
    MembershipAction,
    make_action,
    make_checkpoint,
    make_entry,
)

MAX_EXAMPLES = 50
STEPS = 50

NET = build_devnet(b"model directory", members=[])
GENESIS = NET.genesis
OUTSIDER = SigningKey(bytes(range(32)))  # signs, but is no admin
AUTHORITIES = ["FR-PNF", "DE-BKA", "ES-FCC", "IT-ANAC"]
ROLES = ("identity", "transport", "key-agreement")
#: The transitions of PROTOCOL.md §6.5, written out again for the model.
ALLOWED = {
    (None, Action.ADMIT): MemberStatus.ACTIVE,
    (MemberStatus.ACTIVE, Action.UPDATE_KEYS): MemberStatus.ACTIVE,
    (MemberStatus.SUSPENDED, Action.UPDATE_KEYS): MemberStatus.SUSPENDED,
    (MemberStatus.ACTIVE, Action.SUSPEND): MemberStatus.SUSPENDED,
    (MemberStatus.SUSPENDED, Action.REINSTATE): MemberStatus.ACTIVE,
    (MemberStatus.ACTIVE, Action.REVOKE): MemberStatus.REVOKED,
    (MemberStatus.SUSPENDED, Action.REVOKE): MemberStatus.REVOKED,
}
STATUS_ACTIONS = [Action.SUSPEND, Action.REINSTATE, Action.REVOKE]
RESERVED = [bytes(GENESIS.hub_key), *(bytes(a.key) for a in GENESIS.admins)]


def entry_hash(entry: bytes) -> bytes:
    """The chain link, computed here from §6.4: SHA-256("globe/v1/log-entry" 0x00 entry)."""
    return hashlib.sha256(b"globe/v1/log-entry\x00" + entry).digest()


@dataclass
class Keys:
    """The three keys a certificate names, as raw bytes by role."""

    identity: bytes
    transport: bytes
    ka: bytes

    def by_role(self) -> dict[str, bytes]:
        return {"identity": self.identity, "transport": self.transport, "key-agreement": self.ka}


@dataclass
class Model:
    """The reference: statuses, accepted entries, certified keys and serials."""

    status: dict[str, MemberStatus] = field(default_factory=dict)
    actions: dict[str, list[bytes]] = field(default_factory=dict)  # digests, oldest first
    keys: dict[str, Keys] = field(default_factory=dict)  # current certificate's keys
    owner: dict[bytes, str] = field(default_factory=dict)  # every key ever certified
    identities: dict[str, set[bytes]] = field(default_factory=dict)  # ever certified
    serials: set[str] = field(default_factory=set)
    entries: list[bytes] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=lambda: [GENESIS.digest])
    time: int = GENESIS_TIME  # the hub's clock: the time of the next entry
    entry_time: int = GENESIS_TIME  # the time of the last accepted entry (or the genesis)

    def verdict(self, authority: str, action: Action, keys: Keys | None, serial: str | None,
                prev: bytes | None) -> type[GlobeError] | None:  # fmt: skip
        """What the directory must do with a well-chained, quorum-signed entry."""
        before = self.status.get(authority)
        if (before, action) not in ALLOWED:
            return LogError
        if before is not None and prev != self.actions[authority][-1]:
            return LogError
        if keys is not None:
            current = self.keys[authority].by_role() if authority in self.keys else {}
            if serial in self.serials:
                return LogError
            for role, raw in keys.by_role().items():
                if raw in RESERVED or (raw in self.owner and current.get(role) != raw):
                    return LogError
        return None

    def accept(self, entry: bytes, authority: str, action: MembershipAction, keys: Keys | None,
               serial: str | None) -> None:  # fmt: skip
        self.status[authority] = ALLOWED[(self.status.get(authority), action.action)]
        self.actions.setdefault(authority, []).append(action.digest)
        if keys is not None and serial is not None:
            self.keys[authority] = keys
            self.identities.setdefault(authority, set()).add(keys.identity)
            self.serials.add(serial)
            for raw in keys.by_role().values():
                self.owner[raw] = authority
        self.entries.append(entry)
        self.heads.append(entry_hash(entry))
        self.entry_time = self.time


class DirectoryMachine(RuleBasedStateMachine):
    """The directory against :class:`Model`."""

    def __init__(self) -> None:
        super().__init__()
        self.state = DirectoryState(GENESIS)
        self.model = Model()
        self.rng = crypto.deterministic_rng(b"model directory keys")
        self.serial = 0

    # -- building entries ------------------------------------------------------------------

    def fresh_keys(self) -> Keys:
        identity = SigningKey.generate(self.rng).verify_key
        transport = SigningKey.generate(self.rng).verify_key
        ka = KemPrivateKey.generate(self.rng).public_key
        return Keys(bytes(identity), bytes(transport), bytes(ka))

    def fresh_serial(self) -> str:
        self.serial += 1
        return f"{self.serial:032x}"

    def action(self, authority: str, kind: Action, *, prev: bytes | None = None,
               keys: Keys | None = None, serial: str | None = None,
               signers: list[SigningKey] | None = None) -> MembershipAction:  # fmt: skip
        cert = None
        if keys is not None:
            cert = Certificate(
                AuthorityId.parse(authority), serial or self.fresh_serial(), "Authority",
                ("anti-corruption",), ("en",), None, VerifyKey.from_certified(keys.identity),
                VerifyKey.from_certified(keys.transport), keys.ka, GENESIS_TIME,
                GENESIS_TIME + 3 * 365 * 86400, self.rng(32) if kind is Action.ADMIT else None,
            )  # fmt: skip
        return make_action(
            genesis=GENESIS, action=kind, authority=AuthorityId.parse(authority),
            prev=prev, issued=self.model.time,
            reason=None if cert else f"{kind.value} by decision of the admins",
            certificate=cert, signers=NET.admins[:2] if signers is None else signers,
        )  # fmt: skip

    def entry(self, action: MembershipAction, *, seq: int | None = None,
              prev: bytes | None = None, time: int | None = None) -> bytes:  # fmt: skip
        return make_entry(
            genesis=GENESIS,
            seq=self.state.seq + 1 if seq is None else seq,
            prev=self.model.heads[-1] if prev is None else prev,
            time=self.model.time if time is None else time,
            action=action.signed,
        )

    def prev_of(self, authority: str) -> bytes:
        """The authority's latest action, or an unrelated digest when it has none."""
        history = self.model.actions.get(authority)
        return history[-1] if history else hashlib.sha256(authority.encode()).digest()

    def offer(self, entry: bytes, expected: type[GlobeError] | None) -> bool:
        """Apply ``entry``: refused with exactly ``expected``, or accepted when it is None."""
        if expected is None:
            self.state.apply(entry)
            return True
        with pytest.raises(GlobeError) as info:
            self.state.apply(entry)
        assert info.type is expected, f"expected {expected.__name__}, got {info.value!r}"
        return False

    def submit(self, authority: str, kind: Action, *, prev: bytes | None, keys: Keys | None,
               serial: str | None = None) -> None:  # fmt: skip
        """A well-chained, quorum-signed entry: the model decides."""
        serial = serial or (self.fresh_serial() if keys is not None else None)
        action = self.action(authority, kind, prev=prev, keys=keys, serial=serial)
        entry = self.entry(action)
        expected = self.model.verdict(authority, kind, keys, serial, prev)
        if self.offer(entry, expected):
            self.model.accept(entry, authority, action, keys, serial)

    # -- membership actions -------------------------------------------------------------------

    @rule(authority=st.sampled_from(AUTHORITIES))
    def admit(self, authority: str) -> None:
        self.submit(authority, Action.ADMIT, prev=None, keys=self.fresh_keys())

    @rule(authority=st.sampled_from(AUTHORITIES), action=st.sampled_from(STATUS_ACTIONS))
    def change_status(self, authority: str, action: Action) -> None:
        self.submit(authority, action, prev=self.prev_of(authority), keys=None)

    @rule(authority=st.sampled_from(AUTHORITIES), keep_identity=st.booleans())
    def update_keys(self, authority: str, keep_identity: bool) -> None:
        keys = self.fresh_keys()
        if keep_identity and authority in self.model.keys:
            keys.identity = self.model.keys[authority].identity  # stays in its role: allowed
        self.submit(authority, Action.UPDATE_KEYS, prev=self.prev_of(authority), keys=keys)

    @precondition(lambda self: bool(self.model.keys))
    @rule(data=st.data(), role=st.sampled_from(ROLES), as_update=st.booleans())
    def certify_a_taken_key(self, data: st.DataObject, role: str, as_update: bool) -> None:
        """A key certified before (to anyone, in any role) may not be certified again (R4)."""
        authority = data.draw(st.sampled_from(AUTHORITIES), label="authority")
        size = crypto.KEM_PUBLIC_LEN if role == "key-agreement" else crypto.ED25519_PUBLIC_LEN
        taken = data.draw(
            st.sampled_from(sorted(k for k in self.model.owner if len(k) == size)), label="taken"
        )
        keys = self.fresh_keys()
        mine = self.model.keys.get(authority)
        if mine is not None and taken == mine.by_role()[role]:
            return  # the same key in the same role is allowed; certify_a_taken_key is not that
        setattr(keys, "ka" if role == "key-agreement" else role, taken)
        if keys.identity == keys.transport:
            return  # not even a certificate (identity and transport keys differ): not this rule
        kind = Action.UPDATE_KEYS if as_update else Action.ADMIT
        prev = self.prev_of(authority) if as_update else None
        self.submit(authority, kind, prev=prev, keys=keys)

    @precondition(lambda self: bool(self.model.serials))
    @rule(authority=st.sampled_from(AUTHORITIES), data=st.data())
    def reuse_a_serial(self, authority: str, data: st.DataObject) -> None:
        serial = data.draw(st.sampled_from(sorted(self.model.serials)), label="serial")
        self.submit(authority, Action.ADMIT, prev=None, keys=self.fresh_keys(), serial=serial)

    @rule(authority=st.sampled_from(AUTHORITIES), reserved=st.sampled_from(RESERVED))
    def certify_a_reserved_key(self, authority: str, reserved: bytes) -> None:
        keys = self.fresh_keys()
        keys.transport = reserved
        self.submit(authority, Action.ADMIT, prev=None, keys=keys)

    @rule(authority=st.sampled_from(AUTHORITIES))
    def swap_key_roles(self, authority: str) -> None:
        """The identity key moved to the transport role: refused (R3, R4)."""
        mine = self.model.keys.get(authority)
        keys = self.fresh_keys()
        if mine is not None:
            keys.transport = mine.identity
        self.submit(authority, Action.UPDATE_KEYS, prev=self.prev_of(authority), keys=keys)

    @precondition(lambda self: any(len(h) >= 2 for h in self.model.actions.values()))
    @rule(data=st.data(), action=st.sampled_from([*STATUS_ACTIONS, Action.UPDATE_KEYS]))
    def cite_a_stale_prev(self, data: st.DataObject, action: Action) -> None:
        """An action citing an older action of the authority: a replay, refused."""
        candidates = sorted(a for a, h in self.model.actions.items() if len(h) >= 2)
        authority = data.draw(st.sampled_from(candidates), label="authority")
        history = self.model.actions[authority]
        stale = data.draw(st.sampled_from(history[:-1]), label="stale prev")
        keys = self.fresh_keys() if action is Action.UPDATE_KEYS else None
        self.submit(authority, action, prev=stale, keys=keys)
        assert self.model.actions[authority] == history

    @rule(
        authority=st.sampled_from(AUTHORITIES),
        action=st.sampled_from(list(Action)),
        signers=st.sampled_from(["one admin", "one admin and an outsider", "the hub", "nobody"]),
    )
    def sign_below_quorum(self, authority: str, action: Action, signers: str) -> None:
        keys = self.fresh_keys() if action in (Action.ADMIT, Action.UPDATE_KEYS) else None
        prev = None if action is Action.ADMIT else self.prev_of(authority)
        who = {
            "one admin": [NET.admins[2]],
            "one admin and an outsider": [NET.admins[0], OUTSIDER],
            "the hub": [NET.hub],
            "nobody": [],
        }[signers]
        signed = self.action(authority, action, prev=prev, keys=keys, signers=who)
        self.offer(self.entry(signed), QuorumNotMet)

    # -- the chain ----------------------------------------------------------------------------

    @rule(
        authority=st.sampled_from(AUTHORITIES),
        defect=st.sampled_from(
            ["skips a position", "repeats a position", "wrong prev", "rewinds time"]
        ),
    )
    def break_the_chain(self, authority: str, defect: str) -> None:
        action = self.action(authority, Action.ADMIT, keys=self.fresh_keys())
        seq, prev, time = self.state.seq + 1, self.model.heads[-1], self.model.time
        expected: type[GlobeError] = ChainBroken
        if defect == "skips a position":
            seq += 1
        elif defect == "repeats a position":
            seq -= 1
            if seq == 0:
                expected = MalformedError  # positions start at 1: not even an entry
        elif defect == "wrong prev":
            prev = hashlib.sha256(prev).digest()
        else:
            time = self.model.entry_time - 1  # before the last entry (or the genesis)
        self.offer(self.entry(action, seq=seq, prev=prev, time=time), expected)

    @precondition(lambda self: bool(self.model.entries))
    @rule(data=st.data())
    def replay_an_accepted_entry(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(self.model.entries), label="entry")
        self.offer(entry, ChainBroken)

    @rule(seconds=st.sampled_from([1, 60, 86_400]))
    def time_passes(self, seconds: int) -> None:
        self.model.time += seconds

    # -- heads: checkpoints, trusted heads, rollbacks and forks ----------------------------------

    @rule(data=st.data(), forged=st.booleans())
    def hub_checkpoint(self, data: st.DataObject, forged: bool) -> None:
        n = len(self.model.entries)
        seq = data.draw(st.integers(0, n + 2), label="checkpoint seq")
        head = self.model.heads[seq] if seq <= n and not forged else crypto.sha256(b"forged")
        checkpoint = make_checkpoint(
            genesis=GENESIS, hub=NET.hub, seq=seq, head=head, time=self.model.time
        )
        if seq > n:
            assert self.state.check_checkpoint(checkpoint) is HeadRelation.PEER_AHEAD
        elif forged:
            try:
                self.state.check_checkpoint(checkpoint)
            except ForkDetected:
                pass
            else:
                raise AssertionError("a checkpoint contradicting the log was not a fork")
        else:
            expected = HeadRelation.SAME if seq == n else HeadRelation.PEER_BEHIND
            assert self.state.check_checkpoint(checkpoint) is expected

    @rule(data=st.data(), forged=st.booleans())
    def trusted_head(self, data: st.DataObject, forged: bool) -> None:
        n = len(self.model.entries)
        seq = data.draw(st.integers(0, n + 2), label="trusted seq")
        head = self.model.heads[seq] if seq <= n and not forged else crypto.sha256(b"forged")
        if seq <= n and not forged:
            self.state.check_trusted(seq, head)
            return
        with pytest.raises(GlobeError) as info:
            self.state.check_trusted(seq, head)
        assert info.type is (RollbackDetected if seq > n else ForkDetected)

    @precondition(lambda self: bool(self.model.entries))
    @rule(data=st.data())
    def offer_a_rolled_back_log(self, data: st.DataObject) -> None:
        n = len(self.model.entries)
        shorter = data.draw(st.integers(0, n - 1), label="entries kept")
        trusted = data.draw(st.integers(shorter + 1, n), label="trusted seq")
        try:
            verify_log(
                GENESIS, self.model.entries[:shorter], trusted=(trusted, self.model.heads[trusted])
            )
        except RollbackDetected:
            return
        raise AssertionError("a log shorter than a trusted head was accepted")

    @precondition(lambda self: bool(self.model.entries))
    @rule(data=st.data())
    def offer_a_forked_log(self, data: st.DataObject) -> None:
        """The same action at position j, in an entry the hub dated otherwise: a fork."""
        n = len(self.model.entries)
        j = data.draw(st.integers(1, n), label="forked position")
        entry = decode_entry(self.model.entries[j - 1], GENESIS)
        assert isinstance(entry, LogEntry)  # the model appends actions only
        alternative = make_entry(
            genesis=GENESIS, seq=j, prev=self.model.heads[j - 1], time=entry.time + 1,
            action=entry.action.signed,
        )  # fmt: skip
        forked = [*self.model.entries[: j - 1], alternative]
        verify_log(GENESIS, forked)  # a valid log in itself
        with pytest.raises(ForkDetected):
            verify_log(GENESIS, forked, trusted=(j, self.model.heads[j]))

    @rule()
    def restart(self) -> None:
        """A node restarts: the directory verified again from the log equals the live one."""
        rebuilt = verify_log(GENESIS, self.model.entries)
        assert rebuilt.seq == self.state.seq
        assert rebuilt.heads == self.state.heads
        assert {a: m.status for a, m in rebuilt.members.items()} == {
            a: m.status for a, m in self.state.members.items()
        }
        assert rebuilt.key_owner == self.state.key_owner
        self.state = rebuilt

    # -- the directory agrees with the model after every step ----------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        state, model = self.state, self.model
        assert state.seq == len(model.entries)
        assert state.heads == model.heads
        assert {str(a): m.status for a, m in state.members.items()} == model.status
        assert {raw: str(a) for raw, a in state.key_owner.items()} == model.owner
        assert state.serials == model.serials
        for authority, member in state.members.items():
            keys = model.keys[str(authority)]
            cert = member.certificate
            assert (bytes(cert.identity_key), bytes(cert.transport_key), cert.ka_key_raw) == (
                keys.identity, keys.transport, keys.ka,
            )  # fmt: skip
            assert member.last_action == model.actions[str(authority)][-1]
            assert {bytes(k) for k in member.identity_keys.values()} == (
                model.identities[str(authority)]
            )


DirectoryMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDirectoryModel = DirectoryMachine.TestCase
