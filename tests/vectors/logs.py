"""The membership log beyond log.json: directory.json (update-keys, revoke, an admit with a
reason; identity_keys and retired_at) and every refusal of a log entry (§6.3-6.5)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import orjson

from protocol import canonical, labels
from protocol.devnet import CERT_LIFETIME, GENESIS_TIME, DevNetwork
from protocol.directory import DirectoryState, verify_log
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    Action,
    Application,
    Certificate,
    Checkpoint,
    LogEntry,
    make_action,
    make_application,
    make_checkpoint,
    make_entry,
)
from protocol.receipts import DeliveryReceipt, make_receipt
from protocol.signed import SignedObject, sign_object
from tests.vectors.records import member_rows
from tests.vectors.vectorlib import (
    NOW,
    REINSTATE_AT,
    Cases,
    Json,
    b64,
    build_network,
    h,
    member,
    rng_for,
)

#: Times of the entries of directory.json (between log.json's last entry and NOW).
T_ROTATE_FR: Final = GENESIS_TIME + 6000
T_SUSPEND_DE: Final = GENESIS_TIME + 6100
T_ROTATE_DE: Final = GENESIS_TIME + 6200
T_REVOKE_DE: Final = GENESIS_TIME + 6300
T_ADMIT_PT: Final = GENESIS_TIME + 6400
DE_SUSPEND_REASON: Final = "Audit of the unit in progress"
DE_REVOKE_REASON: Final = "Designation withdrawn by the national coordinator"
PT_ADMIT_REASON: Final = "Designated by the Portuguese authorities, decision 2026/17"
#: Where a case-specific action is sequenced (after every entry it builds on).
T_CASE: Final = REINSTATE_AT + 10


@dataclass(frozen=True, slots=True)
class Continuation:
    """directory.json's entries (seq 7-11) and the keys they certify."""

    entries: list[bytes]
    fr_identity: SigningKey  # FR-PNF's identity key after entry 7
    fr_ka: KemPrivateKey  # FR-PNF's key-agreement key after entry 7
    de_transport: SigningKey  # DE-BKA's transport key after entry 9
    pt_application: Application
    net: DevNetwork  # the devnet with every entry applied (a copy; not the shared one)


def rotated(cert: Certificate, *, serial: str, at: int, **keys: Any) -> Certificate:
    """``cert`` with new keys, serial and validity, issued without an application."""
    return Certificate(
        cert.authority,
        serial,
        cert.name,
        cert.kinds,
        cert.languages,
        cert.endpoint,
        keys.get("identity", cert.identity_key),
        keys.get("transport", cert.transport_key),
        keys.get("ka", cert.ka_key_raw),
        at,
        at + CERT_LIFETIME,
        None,
    )


def build_continuation() -> Continuation:
    """Entries 7-11 on a fresh copy of the vector devnet (same bytes as the shared one)."""
    net = build_network()
    g, admins = net.genesis, net.admins[: net.genesis.threshold]
    state = net.directory
    fr, de = AuthorityId.parse("FR-PNF"), AuthorityId.parse("DE-BKA")
    fr_identity = SigningKey(rng_for("directory/fr-identity")(32))
    fr_ka = KemPrivateKey(rng_for("directory/fr-ka")(96))
    cert = rotated(
        state.members[fr].certificate,
        serial=rng_for("directory/fr-serial")(16).hex(),
        at=T_ROTATE_FR,
        identity=fr_identity.verify_key,
        ka=bytes(fr_ka.public_key),
    )
    net.append(
        make_action(
            genesis=g,
            action=Action.UPDATE_KEYS,
            authority=fr,
            prev=state.members[fr].last_action,
            issued=T_ROTATE_FR,
            certificate=cert,
            signers=admins,
        ),
        T_ROTATE_FR,
    )
    net.append(
        make_action(
            genesis=g,
            action=Action.SUSPEND,
            authority=de,
            prev=state.members[de].last_action,
            issued=T_SUSPEND_DE,
            reason=DE_SUSPEND_REASON,
            signers=admins,
        ),
        T_SUSPEND_DE,
    )
    de_transport = SigningKey(rng_for("directory/de-transport")(32))
    cert = rotated(
        state.members[de].certificate,
        serial=rng_for("directory/de-serial")(16).hex(),
        at=T_ROTATE_DE,
        transport=de_transport.verify_key,
    )
    net.append(
        make_action(
            genesis=g,
            action=Action.UPDATE_KEYS,
            authority=de,
            prev=state.members[de].last_action,
            issued=T_ROTATE_DE,
            certificate=cert,
            signers=admins,
        ),
        T_ROTATE_DE,
    )
    net.append(
        make_action(
            genesis=g,
            action=Action.REVOKE,
            authority=de,
            prev=state.members[de].last_action,
            issued=T_REVOKE_DE,
            reason=DE_REVOKE_REASON,
            signers=admins,
        ),
        T_REVOKE_DE,
    )
    pt = AuthorityId.parse("PT-PJ")
    app = make_application(
        genesis=g,
        authority=pt,
        name="Policia Judiciaria",
        kinds=["anti-corruption", "mla-central"],
        languages=["en", "pt"],
        contact="duty officer, Policia Judiciaria\nLisboa",
        legal_basis="UNCAC art. 36",
        endpoint="https://pj.example.pt",
        identity=SigningKey(rng_for("directory/pt-identity")(32)),
        transport=SigningKey(rng_for("directory/pt-transport")(32)),
        ka_key=KemPrivateKey(rng_for("directory/pt-ka")(96)).public_key,
        created=T_ADMIT_PT,
    )
    cert = Certificate.from_application(
        app,
        serial=rng_for("directory/pt-serial")(16).hex(),
        not_before=T_ADMIT_PT,
        not_after=T_ADMIT_PT + CERT_LIFETIME,
    )
    # Signed by admins 2 and 3: any k distinct admins make the quorum.
    net.append(
        make_action(
            genesis=g,
            action=Action.ADMIT,
            authority=pt,
            prev=None,
            issued=T_ADMIT_PT,
            reason=PT_ADMIT_REASON,
            certificate=cert,
            signers=net.admins[1:3],
        ),
        T_ADMIT_PT,
    )
    return Continuation(net.entries[6:], fr_identity, fr_ka, de_transport, app, net)


def extended_log(net: DevNetwork, cont: Continuation) -> list[bytes]:
    """log.json's entries followed by directory.json's: ``log_entries: n`` is a prefix of it."""
    return [*net.entries, *cont.entries]


def next_entry(state: DirectoryState, action: SignedObject, time: int = T_CASE) -> bytes:
    """The entry that sequences ``action`` right after ``state``."""
    return make_entry(
        genesis=state.genesis, seq=state.seq + 1, prev=state.head, time=time, action=action
    )


def action_payload(g: Genesis, action: str, authority: str, **fields: Any) -> Json:
    """An action payload as a plain dict (for actions the builder would refuse)."""
    return {
        "type": "membership-action",
        "v": 1,
        "network": b64(g.digest),
        "action": action,
        "authority": authority,
        "issued": T_CASE,
        **fields,
    }


def signed(
    payload: Json, signers: list[SigningKey], label: bytes = labels.MEMBERSHIP_ACTION
) -> SignedObject:
    """``payload`` encoded as the reference encodes (values outside the subset included)."""
    obj = SignedObject(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), ())
    for key in signers:
        obj = obj.with_signature(label, key)
    return obj


def raw_entry(state: DirectoryState, action: Json | str, **changes: Any) -> bytes:
    """Entry bytes from a plain dict (for entries the builder would refuse)."""
    entry = {
        "type": "log-entry",
        "v": 1,
        "network": b64(state.genesis.digest),
        "seq": state.seq + 1,
        "prev": b64(state.head),
        "time": T_CASE,
        "action": action,
        **changes,
    }
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


# --- directory.json ------------------------------------------------------------------------


def build_directory(net: DevNetwork, cont: Continuation) -> Json:
    g = net.genesis
    log = extended_log(net, cont)
    state = verify_log(g, log)
    entries = []
    for i, raw in enumerate(cont.entries, start=7):
        e = LogEntry.decode(raw, g)
        entries.append(
            {
                "seq": i,
                "entry": h(raw),
                "hash": h(e.hash),
                "time": e.time,
                "action": e.action.action.value,
                "authority": str(e.action.authority),
            }
        )
    fr_old = member(net, "FR-PNF").identity
    receipts = []
    for name, who, key, time, prefix in [
        (
            "FR-PNF's receipt by its replaced identity key, dated before the replacement",
            "FR-PNF",
            fr_old,
            T_ROTATE_FR - 1,
            11,
        ),
        ("FR-PNF's receipt by its new identity key", "FR-PNF", cont.fr_identity, NOW, 11),
        (
            "DE-BKA's receipt after DE-BKA was revoked (a receipt stays evidence)",
            "DE-BKA",
            member(net, "DE-BKA").identity,
            NOW,
            11,
        ),
    ]:
        data = _receipt(g, key, time, recipient=who)
        DeliveryReceipt.decode(data, verify_log(g, log[:prefix]))
        receipts.append({"name": name, "receipt": h(data), "log_entries": prefix})
    relations = []
    heads = state.heads
    for name, seq, head, relation in [
        ("the head itself", 11, heads[11], "same"),
        ("a prefix of the log (log.json's head)", 6, heads[6], "peer-behind"),
        ("the empty log (the network digest)", 0, g.digest, "peer-behind"),
        ("a longer log", 12, bytes(32), "peer-ahead"),
        ("another hash at position 6", 6, heads[6][::-1], "fork"),
    ]:
        assert state.relation(seq, head).value == relation
        relations.append({"name": name, "seq": seq, "head": h(head), "relation": relation})
    cp = make_checkpoint(genesis=g, hub=net.hub, seq=6, head=heads[6], time=NOW)
    assert state.check_checkpoint(cp).value == "peer-behind"
    return {
        "description": (
            "log.json continued (PROTOCOL.md §6.3-6.5): 7 update-keys FR-PNF (new identity "
            "and key-agreement keys, the transport key kept, no reason), 8 suspend DE-BKA, "
            "9 update-keys DE-BKA (new transport key only, no reason: it stays suspended and "
            "keeps its suspension reason), 10 revoke DE-BKA, 11 admit PT-PJ with a reason, "
            "signed by admins 2 and 3. verify_log(genesis, log.json entries + these) must give "
            "'head' at 'seq' and the member table. 'receipts' must verify against the first "
            "'log_entries' entries of that log; 'relations' are relation(seq, head) against "
            "the whole log; 'checkpoint' (of log.json's head) relates as 'peer-behind'. Each new "
            "key or serial is the first output of deterministic_rng(b'globe vectors v1/directory/"
            "<what>') for <what> in fr-identity (32), fr-ka (96), fr-serial (16), de-transport "
            "(32), de-serial, pt-identity, pt-transport, pt-ka, pt-serial; the receipts' message "
            "id and envelope hash are the first two outputs (16, 32) of 'directory/receipt'."
        ),
        "now": NOW,
        "entries": entries,
        "seq": state.seq,
        "head": h(state.head),
        "time": state.time,
        "members": member_rows(state),
        "receipts": receipts,
        "relations": relations,
        "checkpoint": {"checkpoint": h(cp.signed.encode()), "relation": "peer-behind"},
        "keys": {
            "fr_pnf_identity_seed": h(cont.fr_identity.seed),
            "fr_pnf_ka_private_key": h(cont.fr_ka.raw),
            "de_bka_transport_seed": h(cont.de_transport.seed),
        },
    }


def _receipt(g: Genesis, key: SigningKey, time: int, *, recipient: str) -> bytes:
    rng = rng_for("directory/receipt")
    return make_receipt(
        genesis=g,
        identity=key,
        message_id=MessageId(rng(16)),
        envelope_hash=rng(32),
        sender=AuthorityId.parse("IT-ANAC"),
        recipient=AuthorityId.parse(recipient),
        time=time,
    ).encode()


# --- checkpoints against a log -------------------------------------------------------------


def checkpoint_check_cases(cases: Cases, net: DevNetwork, cont: Continuation) -> None:
    g = net.genesis
    log = extended_log(net, cont)
    state = verify_log(g, log)
    cp = make_checkpoint(genesis=g, hub=net.hub, seq=3, head=state.heads[3][::-1], time=NOW)

    def check() -> None:
        verify_log(g, log).check_checkpoint(Checkpoint.decode(cp.signed.encode(), g))

    cases.add(
        "hub checkpoint that contradicts the log at entry 3",
        "checkpoint_check",
        "ForkDetected",
        check,
        rule="§6.5: check_checkpoint (a fork is refused)",
        checkpoint=h(cp.signed.encode()),
        log_entries=len(log),
    )


def receipt_log_cases(cases: Cases, net: DevNetwork, cont: Continuation) -> None:
    """Receipts signed by a replaced identity key (§9.1 retired_at)."""
    g = net.genesis
    log = extended_log(net, cont)
    old = member(net, "FR-PNF").identity
    rule = "§9.1: a replaced key signs no receipt dated at or after its retirement"
    for name, key, time in [
        ("receipt by a replaced identity key, dated at its retirement", old, T_ROTATE_FR),
        ("receipt by a replaced identity key, dated after its retirement", old, NOW),
    ]:
        data = _receipt(g, key, time, recipient="FR-PNF")
        state = verify_log(g, log[:7])
        cases.add(
            name,
            "receipt",
            "BadSignature",
            partial(DeliveryReceipt.decode, data, state),
            rule=rule,
            receipt=h(data),
            log_entries=7,
        )
    payload = orjson.loads(
        canonical.b64d(
            orjson.loads(_receipt(g, cont.fr_identity, NOW, recipient="FR-PNF"))["payload"],
            what="v",
        )
    )
    payload["key"] = str(old.key_id)
    forged = sign_object(payload, labels.RECEIPT, [cont.fr_identity]).encode()
    state = verify_log(g, log[:7])
    cases.add(
        "receipt naming the replaced key but signed by the new one",
        "receipt",
        "BadSignature",
        lambda: DeliveryReceipt.decode(forged, state),
        rule="§9.1: verify_by(the key the receipt names)",
        receipt=h(forged),
        log_entries=7,
    )
