"""``make demo``: a walk-through of protocol v1 with real keys and real cryptography.

Everything happens in this process through the public protocol API (the hub
and the node daemons come in later issues): three admins found a network with
a 2-of-3 quorum, three authorities apply and are admitted, one sends an
urgent assistance request to the other two, both open it and sign receipts,
the hub's evidence is checked, and a replay, a tampered envelope, a forged
admission and a revoked sender are refused.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from protocol import errors
from protocol.directory import DirectoryState, verify_log
from protocol.envelope import (
    SealTo,
    check_recipients_active,
    open_envelope,
    parse_envelope,
    seal_envelope,
    verify_envelope,
)
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey, fingerprint
from protocol.membership import (
    Action,
    Application,
    Certificate,
    Checkpoint,
    kem_pop_answer,
    kem_pop_challenge,
    make_action,
    make_application,
    make_checkpoint,
    make_entry,
)
from protocol.messages import Handling, Kind, MessageContent, Restriction, Tlp, Urgency
from protocol.prekeys import SignedPrekey, make_prekey
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind, make_evidence, make_receipt
from protocol.replay import SeenSet

AUTHORITIES = [
    ("FR-PNF", "Parquet national financier", ["fr", "en"]),
    ("BR-CGU", "Controladoria-Geral da Uniao", ["pt", "es", "en"]),
    ("KE-EACC", "Ethics and Anti-Corruption Commission", ["en"]),
]


def say(step: str, text: str = "") -> None:
    """Print one narrated step."""
    sys.stdout.write(f"\n== {step}\n" if not text else f"   {step}: {text}\n")


class DemoFailure(Exception):
    """A check in the walk-through did not come out as expected."""


def must_refuse(
    what: str, expected: type[errors.GlobeError], attempt: Callable[[], object]
) -> None:
    """Run ``attempt``; it must be refused with ``expected``.  Print the refusal."""
    try:
        attempt()
    except expected as exc:
        sys.stdout.write(
            f"   REFUSED {what}: {type(exc).__name__} [{exc.type_uri()}] {exc.detail}\n"
        )
        return
    raise DemoFailure(f"{what} was not refused with {expected.__name__}")


class Node:
    """One member authority's keys and its own verified view of the directory."""

    def __init__(self, authority: str, name: str, languages: list[str]) -> None:
        self.authority = AuthorityId.parse(authority)
        self.name = name
        self.languages = languages
        self.identity = SigningKey.generate()
        self.transport = SigningKey.generate()
        self.ka = KemPrivateKey.generate()
        self.prekey = KemPrivateKey.generate()
        self.directory: DirectoryState | None = None
        self.seen = SeenSet()
        self.seq: dict[AuthorityId, int] = {}

    def private_key(self, key_id: object) -> KemPrivateKey | None:
        """Look up one of this node's KEM private keys by key id."""
        for key in (self.prekey, self.ka):
            if key.key_id == key_id:
                return key
        return None


def main() -> int:  # noqa: PLR0915 - a linear narrative
    """Run the walk-through; exit 0 if every check came out as expected."""
    now = int(time.time())

    say("1. Three membership administrators found the network (quorum 2 of 3)")
    admins = [SigningKey.generate() for _ in range(3)]
    hub = SigningKey.generate()
    genesis = make_genesis(
        network_id="globe-demo",
        name="GlobE Link demonstration network",
        admins=[(f"Secretariat admin {i + 1}", k.verify_key) for i, k in enumerate(admins)],
        threshold=2,
        hub_key=hub.verify_key,
        hub_url="https://hub.globe-demo.invalid",
        created=now,
        signers=admins[:2],
    )
    genesis_file = genesis.encode()
    say("genesis", f"{len(genesis_file)} bytes, signed by 2 of 3 admins")
    say("fingerprint to compare out of band", genesis.fingerprint())

    nodes = [Node(*a) for a in AUTHORITIES]
    log: list[bytes] = []
    hub_view = DirectoryState(genesis)

    say("2. Three authorities apply; the admins approve each with 2 signatures")
    for node in nodes:
        pinned = Genesis.decode(genesis_file)  # each node pins the genesis file
        app = make_application(
            genesis=pinned,
            authority=node.authority,
            name=node.name,
            kinds=["anti-corruption"],
            languages=node.languages,
            contact=f"duty desk, {node.name}",
            legal_basis="UNCAC art. 36 designation",
            endpoint=None,
            identity=node.identity,
            transport=node.transport,
            ka_key=node.ka.public_key,
            created=now,
        )
        Application.decode(app.signed.encode(), genesis)  # PoP of both signing keys
        challenge, expected = kem_pop_challenge(node.ka.public_key, app.digest)
        if kem_pop_answer(node.ka, app.digest, challenge) != expected:
            raise DemoFailure("KEM proof of possession failed")
        say(str(node.authority), f"application {app.digest.hex()[:16]}…, keys proven")
        say("   fingerprint", fingerprint(node.identity.verify_key, node.transport.verify_key))
        cert = Certificate.from_application(
            app, serial=os.urandom(16).hex(), not_before=now, not_after=now + 365 * 86400
        )
        action = make_action(
            genesis=genesis,
            action=Action.ADMIT,
            authority=node.authority,
            prev=None,
            issued=now,
            certificate=cert,
            signers=[admins[0]],
        )
        lone = make_entry(
            genesis=genesis, seq=hub_view.seq + 1, prev=hub_view.head, time=now,
            action=action.signed,
        )  # fmt: skip
        must_refuse(
            "admission signed by 1 admin of 2 required",
            errors.QuorumNotMet,
            lambda lone=lone: verify_log(genesis, [*log, lone]),  # type: ignore[misc]
        )
        signed = action.signed.with_signature(b"globe/v1/membership-action", admins[2])
        entry = make_entry(
            genesis=genesis, seq=hub_view.seq + 1, prev=hub_view.head, time=now, action=signed
        )
        hub_view.apply(entry)
        log.append(entry)
        say("admitted", f"log entry {hub_view.seq}, head {hub_view.head.hex()[:16]}…")

    checkpoint = make_checkpoint(
        genesis=genesis, hub=hub, seq=hub_view.seq, head=hub_view.head, time=now
    )
    say("3. Each node verifies the whole log from its pinned genesis")
    for node in nodes:
        node.directory = verify_log(genesis, log)
        cp = Checkpoint.decode(checkpoint.signed.encode(), genesis)
        relation = node.directory.check_checkpoint(cp)
        say(
            str(node.authority),
            f"{len(node.directory.members)} members, hub checkpoint {relation.value}",
        )

    say("4. Members publish signed hybrid post-quantum prekeys (ML-KEM-768 + X25519)")
    prekeys: dict[AuthorityId, SignedPrekey] = {}
    for node in nodes:
        sp = make_prekey(
            genesis=genesis,
            authority=node.authority,
            identity=node.identity,
            key=node.prekey.public_key,
            not_before=now - 60,
            not_after=now + 7 * 86400,
        )
        prekeys[node.authority] = SignedPrekey.decode(
            sp.signed.encode(), genesis, node.identity.verify_key, authority=node.authority
        )
        say(str(node.authority), f"prekey {node.prekey.key_id}")

    sender, recipients = nodes[0], nodes[1:]
    sender_dir = sender.directory
    assert sender_dir is not None  # noqa: S101 - set in step 3
    say(f"5. {sender.authority} sends an urgent assistance request to two authorities")
    content = MessageContent(
        kind=Kind.REQUEST,
        subject="Beneficial owner of a shell company",
        body="We ask for the registered beneficial owners of Example Holdings Ltd.",
        language="en",
        urgency=Urgency.URGENT,
        handling=Handling(Tlp.AMBER, frozenset({Restriction.INTELLIGENCE_ONLY})),
        case="FR-PNF-2026-0042",
        deadline=now + 8 * 3600,
    )
    assert sender.directory is not None  # noqa: S101
    targets = []
    for r in recipients:
        sender.seq[r.authority] = sender.seq.get(r.authority, 0) + 1
        targets.append(SealTo(r.authority, sender.seq[r.authority], prekeys[r.authority].key))
    wire = seal_envelope(
        genesis=genesis,
        sender=sender.authority,
        identity=sender.identity,
        recipients=targets,
        content=content.encode(),
        created=now,
        expires=now + 7 * 86400,
        dir_seq=sender.directory.seq,
        dir_head=sender.directory.head,
    )
    envelope = parse_envelope(wire)
    say(
        "envelope",
        f"{len(wire)} bytes, id {envelope.header.message_id}, one ciphertext, 2 wrapped keys",
    )

    say("6. The hub checks the outer signature without reading, and signs acceptance evidence")
    verify_envelope(envelope, hub_view, now)
    check_recipients_active(envelope, hub_view, now)
    accepted = make_evidence(
        genesis=genesis,
        hub=hub,
        kind=EvidenceKind.ACCEPTED,
        message_id=envelope.header.message_id,
        envelope_hash=envelope.hash,
        sender=sender.authority,
        recipients=[r.authority for r in recipients],
        time=now,
    )
    evidence = Evidence.decode(accepted.signed.encode(), genesis)
    say(
        "acceptance evidence",
        f"{evidence.kind.value}, verified by {sender.authority} against the pinned hub key",
    )

    say("7. Each recipient opens the envelope and signs a receipt")
    receipts = []
    for r in recipients:
        assert r.directory is not None  # noqa: S101
        opened = open_envelope(
            parse_envelope(wire),
            directory=r.directory,
            me=r.authority,
            private_key=r.private_key,
            now=now,
        )
        r.seen.check_and_add(opened.header.sender, opened.header.message_id, envelope.hash)
        msg = MessageContent.decode(opened.content)
        say(
            str(r.authority),
            f"{msg.kind.value}, {msg.urgency.value}, '{msg.subject}', "
            f"TLP:{msg.handling.tlp.value}, directory head {opened.head_relation.value}",
        )
        receipts.append(
            make_receipt(
                genesis=genesis,
                identity=r.identity,
                message_id=opened.header.message_id,
                envelope_hash=envelope.hash,
                sender=opened.header.sender,
                recipient=r.authority,
                time=now,
            )
        )
    for signed_receipt in receipts:
        receipt = DeliveryReceipt.decode(signed_receipt.encode(), sender.directory)
        ok = receipt.matches(envelope.header.message_id, envelope.hash)
        say("receipt", f"from {receipt.recipient}: signed over this message's exact bytes: {ok}")

    say("8. What the network refuses")
    r0 = recipients[0]
    assert r0.directory is not None  # noqa: S101
    r0_dir = r0.directory
    must_refuse(
        "the same envelope delivered twice",
        errors.ReplayError,
        lambda: r0.seen.check_and_add(sender.authority, envelope.header.message_id, envelope.hash),
    )
    tampered = bytearray(wire)
    tampered[len(wire) // 2] ^= 0x01
    must_refuse(
        "one flipped bit in the ciphertext",
        errors.BadSignature,
        lambda: open_envelope(
            parse_envelope(bytes(tampered)), directory=r0_dir, me=r0.authority,
            private_key=r0.private_key, now=now,
        ),
    )  # fmt: skip
    must_refuse(
        "the envelope reflected back to its sender",
        errors.ReflectedMessage,
        lambda: open_envelope(
            parse_envelope(wire), directory=sender_dir, me=sender.authority,
            private_key=sender.private_key, now=now,
        ),
    )  # fmt: skip
    forged = bytearray(wire)
    forged[-64:] = recipients[1].identity.sign(b"globe/v1/envelope", wire[:-64])
    must_refuse(
        f"an envelope signed by {recipients[1].authority} in the name of {sender.authority}",
        errors.BadSignature,
        lambda: open_envelope(
            parse_envelope(bytes(forged)), directory=r0_dir, me=r0.authority,
            private_key=r0.private_key, now=now,
        ),
    )  # fmt: skip

    say(f"9. The admins revoke {sender.authority}; its next message is refused")
    revoke = make_action(
        genesis=genesis,
        action=Action.REVOKE,
        authority=sender.authority,
        prev=hub_view.members[sender.authority].last_action,
        issued=now,
        reason="designation withdrawn by the State party",
        signers=admins[1:],
    )
    entry = make_entry(
        genesis=genesis, seq=hub_view.seq + 1, prev=hub_view.head, time=now, action=revoke.signed
    )
    hub_view.apply(entry)
    log.append(entry)
    r0.directory.apply(entry)
    say("log", f"entry {hub_view.seq}: revoke {sender.authority}, quorum 2 of 3")
    must_refuse(
        f"a message from {sender.authority}",
        errors.MemberNotActive,
        lambda: open_envelope(
            parse_envelope(wire), directory=r0_dir, me=r0.authority,
            private_key=r0.private_key, now=now,
        ),
    )  # fmt: skip

    say("Done: every step used real Ed25519, HPKE (ML-KEM-768 + X25519) and ChaCha20-Poly1305")
    return 0


def run() -> int:
    """Entry point: a one-line message and exit status 1 if a check fails."""
    try:
        return main()
    except (DemoFailure, errors.GlobeError) as exc:
        sys.stderr.write(f"demo: FAILED: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(run())
