"""A deterministic development network: genesis, admins, hub and members.

Used by the test suite, the test vectors, the benchmarks and ``make demo`` to
build a complete, valid network from one seed, through the same public
functions real admins and members use.  Every key is derived from the seed:
never use a devnet outside tests and demonstrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol import crypto
from protocol.directory import DirectoryState
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    Action,
    Application,
    Certificate,
    MembershipAction,
    make_action,
    make_application,
    make_entry,
)
from protocol.prekeys import SignedPrekey, make_prekey

__all__ = ["DevMember", "DevNetwork", "build_devnet"]

#: Fixed times so that everything built from a seed is byte-for-byte reproducible.
GENESIS_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z
CERT_LIFETIME = 3 * 365 * 86400
PREKEY_LIFETIME = 30 * 86400


@dataclass(slots=True)
class DevMember:
    """A member's private keys and public records."""

    authority: AuthorityId
    name: str
    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey
    prekey: KemPrivateKey
    signed_prekey: SignedPrekey
    application: Application
    certificate: Certificate
    last_action: MembershipAction


@dataclass(slots=True)
class DevNetwork:
    """A whole network, built deterministically."""

    genesis: Genesis
    admins: list[SigningKey]
    hub: SigningKey
    entries: list[bytes] = field(default_factory=list)
    members: dict[str, DevMember] = field(default_factory=dict)
    state: DirectoryState | None = None
    rng: crypto.Rng = crypto.system_rng

    @property
    def directory(self) -> DirectoryState:
        """The verified directory after all entries so far."""
        assert self.state is not None  # noqa: S101 - set by build_devnet
        return self.state

    def append(self, action: MembershipAction, time: int) -> bytes:
        """Append an action as the hub would, verifying it as a node would."""
        entry = make_entry(
            genesis=self.genesis,
            seq=self.directory.seq + 1,
            prev=self.directory.head,
            time=time,
            action=action.signed,
        )
        self.directory.apply(entry)
        self.entries.append(entry)
        return entry

    def admit(
        self,
        authority: str,
        name: str,
        *,
        kinds: list[str] | None = None,
        languages: list[str] | None = None,
        endpoint: str | None = None,
        time: int = GENESIS_TIME + 3600,
    ) -> DevMember:
        """Apply, approve with the first ``k`` admins and publish a prekey."""
        aid = AuthorityId.parse(authority)
        identity = SigningKey.generate(self.rng)
        transport = SigningKey.generate(self.rng)
        ka = KemPrivateKey.generate(self.rng)
        app = make_application(
            genesis=self.genesis,
            authority=aid,
            name=name,
            kinds=kinds or ["anti-corruption"],
            languages=languages or ["en"],
            contact=f"duty officer, {name}",
            legal_basis="UNCAC art. 36; national designation",
            endpoint=endpoint,
            identity=identity,
            transport=transport,
            ka_key=ka.public_key,
            created=time,
        )
        cert = Certificate.from_application(
            app, serial=self.rng(16).hex(), not_before=time, not_after=time + CERT_LIFETIME
        )
        action = make_action(
            genesis=self.genesis,
            action=Action.ADMIT,
            authority=aid,
            prev=None,
            issued=time,
            certificate=cert,
            signers=self.admins[: self.genesis.threshold],
        )
        self.append(action, time)
        prekey = KemPrivateKey.generate(self.rng)
        signed_prekey = make_prekey(
            genesis=self.genesis,
            authority=aid,
            identity=identity,
            key=prekey.public_key,
            not_before=time,
            not_after=time + PREKEY_LIFETIME,
        )
        member = DevMember(
            aid, name, identity, transport, ka, prekey, signed_prekey, app, cert, action
        )
        self.members[authority] = member
        return member

    def set_status(self, authority: str, action: Action, reason: str, time: int) -> None:
        """Suspend, reinstate or revoke with the first ``k`` admins."""
        member = self.members[authority]
        signed = make_action(
            genesis=self.genesis,
            action=action,
            authority=member.authority,
            prev=self.directory.members[member.authority].last_action,
            issued=time,
            reason=reason,
            signers=self.admins[: self.genesis.threshold],
        )
        self.append(signed, time)
        member.last_action = signed


def build_devnet(
    seed: bytes = b"globe devnet",
    *,
    admins: int = 3,
    threshold: int = 2,
    members: list[tuple[str, str]] | None = None,
    hub_url: str = "http://127.0.0.1:8440",
) -> DevNetwork:
    """Build a network from ``seed`` and admit ``members`` (authority id, name)."""
    rng = crypto.deterministic_rng(seed)
    admin_keys = [SigningKey.generate(rng) for _ in range(admins)]
    hub = SigningKey.generate(rng)
    genesis = make_genesis(
        network_id="globe-dev",
        name="GlobE Link development network",
        admins=[(f"Admin {i + 1}", k.verify_key) for i, k in enumerate(admin_keys)],
        threshold=threshold,
        hub_key=hub.verify_key,
        hub_url=hub_url,
        created=GENESIS_TIME,
        signers=admin_keys[:threshold],
    )
    net = DevNetwork(genesis, admin_keys, hub, rng=rng, state=DirectoryState(genesis))
    for authority, name in members or []:
        net.admit(authority, name)
    return net
