"""Every refusal of a membership log (§6.3-6.5): chain, quorum, transitions, per-action
rules, action and certificate fields, key reuse, entry fields and their order."""

from __future__ import annotations

from typing import Any

from protocol import labels
from protocol.devnet import DevNetwork
from protocol.directory import verify_log
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Certificate,
    LogEntry,
    make_action,
    make_entry,
)
from protocol.signed import SignedObject
from tests.vectors.log_fields import LogCtx, action_fields, certificates, entry_fields
from tests.vectors.logs import (
    T_ADMIT_PT,
    T_CASE,
    T_ROTATE_FR,
    Continuation,
    extended_log,
    next_entry,
    rotated,
)
from tests.vectors.vectorlib import (
    Accepts,
    Cases,
    h,
    member,
    rng_for,
    strip,
)

# --- refusals of the log -------------------------------------------------------------------


def log_cases(cases: Cases, accepts: Accepts, net: DevNetwork, cont: Continuation) -> None:
    g = net.genesis
    log = extended_log(net, cont)
    states = [verify_log(g, log[:n]) for n in range(len(log) + 1)]
    decoded = [LogEntry.decode(e, g) for e in log]
    hashes = [d.hash for d in decoded]
    admins = net.admins[: g.threshold]
    fr = member(net, "FR-PNF")

    def add(
        name: str,
        error: str,
        base: int,
        extra: list[bytes],
        *,
        rule: str,
        trusted: tuple[int, bytes] | None = None,
    ) -> None:
        cases.add(
            name,
            "log",
            error,
            lambda: verify_log(g, [*log[:base], *extra], trusted=trusted),
            rule=rule,
            base_entries=base,
            entries=[h(e) for e in extra],
            trusted=None if trusted is None else {"seq": trusted[0], "head": h(trusted[1])},
        )

    def ok(name: str, base: int, extra: list[bytes], *, rule: str) -> None:
        accepts.add(
            name,
            "log",
            lambda: verify_log(g, [*log[:base], *extra]),
            rule=rule,
            base_entries=base,
            entries=[h(e) for e in extra],
        )

    def entry(seq: int, prev: bytes, time: int, action: SignedObject) -> bytes:
        return make_entry(genesis=g, seq=seq, prev=prev, time=time, action=action)

    on6 = states[6]

    def after6(action: SignedObject, time: int = T_CASE) -> list[bytes]:
        return [next_entry(on6, action, time)]

    chain = "§6.4: chain rules (seq, prev, time)"
    add("log missing entry 2", "ChainBroken", 1, [log[2]], rule=chain)
    add("log entries 1 and 2 swapped", "ChainBroken", 0, [log[1], log[0]], rule=chain)
    add(
        "log entry whose prev is not the previous entry's hash",
        "ChainBroken",
        1,
        [entry(2, bytes(32), decoded[1].time, decoded[1].action.signed)],
        rule=chain,
    )
    add(
        "log entry whose time goes backwards",
        "ChainBroken",
        1,
        [entry(2, hashes[0], decoded[0].time - 1, decoded[1].action.signed)],
        rule=chain,
    )
    add(
        "first log entry dated before the genesis",
        "ChainBroken",
        0,
        [entry(1, g.digest, g.created - 1, decoded[0].action.signed)],
        rule=chain,
    )
    add(
        "first log entry whose prev is not the network digest",
        "ChainBroken",
        0,
        [entry(1, bytes(32), decoded[0].time, decoded[0].action.signed)],
        rule=chain,
    )
    ok(
        "log entry dated exactly as the previous one",
        1,
        [entry(2, hashes[0], decoded[0].time, decoded[1].action.signed)],
        rule=chain,
    )
    quorum = "§5.5, §6.5: the action's admin quorum"
    add(
        "admit action with 1 of 2 admin signatures",
        "QuorumNotMet",
        0,
        [entry(1, g.digest, decoded[0].time, strip(decoded[0].action.signed, 1))],
        rule=quorum,
    )
    admin_and_member = (
        strip(decoded[0].action.signed, 0)
        .with_signature(labels.MEMBERSHIP_ACTION, net.admins[0])
        .with_signature(labels.MEMBERSHIP_ACTION, fr.identity)
    )
    add(
        "admit action with 1 admin signature and 1 member signature",
        "QuorumNotMet",
        0,
        [entry(1, g.digest, decoded[0].time, admin_and_member)],
        rule=quorum,
    )
    relabelled = SignedObject(decoded[0].action.signed.payload, ())
    for key in admins:
        relabelled = relabelled.with_signature(labels.GENESIS, key)
    add(
        "admit action signed by two admins under the genesis label",
        "QuorumNotMet",
        0,
        [entry(1, g.digest, decoded[0].time, relabelled)],
        rule=quorum,
    )
    x = LogCtx(add, ok, net, states, decoded, after6)
    _membership_rules(x)
    action_fields(x)
    certificates(x)
    _reuse(x)
    entry_fields(x)
    trust = "§6.5: check_trusted (rollback and fork of a trusted head)"
    add(
        "log shorter than a trusted head (rollback)",
        "RollbackDetected",
        5,
        [],
        trusted=(6, hashes[5]),
        rule=trust,
    )
    add(
        "log that differs from a trusted head (fork)",
        "ForkDetected",
        6,
        [],
        trusted=(3, hashes[2][::-1]),
        rule=trust,
    )
    add(
        "log of 11 entries against a trusted head at 12 (rollback)",
        "RollbackDetected",
        11,
        [],
        trusted=(12, hashes[10]),
        rule=trust,
    )
    # Two defects: the first check in §6.5's order decides.
    order = "§1.6, §6.5: apply() checks seq, prev, time, quorum, transition, prev, certificate"
    add(
        "entry with a wrong seq and 1 of 2 admin signatures",
        "ChainBroken",
        0,
        [entry(2, g.digest, decoded[0].time, strip(decoded[0].action.signed, 1))],
        rule=order,
    )
    reinstate_active_1 = make_action(
        genesis=g,
        action=Action.REINSTATE,
        authority=fr.authority,
        prev=decoded[0].action.digest,
        issued=T_CASE,
        reason="Reinstated",
        signers=admins[:1],
    )
    add(
        "reinstate of an active member with 1 of 2 admin signatures",
        "QuorumNotMet",
        6,
        after6(reinstate_active_1.signed),
        rule=order,
    )


def _membership_rules(x: LogCtx) -> None:
    add, ok, net, states, decoded = x.add, x.ok, x.net, x.states, x.decoded
    g = net.genesis
    admins = net.admins[: g.threshold]
    fr, es = member(net, "FR-PNF"), member(net, "ES-FCC")
    on6 = states[6]
    rule = "§6.5: the transition table"
    add(
        "admit of an authority that is already a member",
        "LogError",
        6,
        [next_entry(on6, decoded[0].action.signed)],
        rule=rule,
    )
    stale = make_action(
        genesis=g,
        action=Action.REVOKE,
        authority=es.authority,
        prev=decoded[4].action.digest,  # the suspend, not the latest (reinstate)
        issued=T_CASE,
        reason="Revoked",
        signers=admins,
    )
    add(
        "action whose prev is not the authority's latest action",
        "LogError",
        6,
        [next_entry(on6, stale.signed)],
        rule="§6.3: prev names the authority's latest action",
    )
    borrowed = make_action(
        genesis=g,
        action=Action.SUSPEND,
        authority=es.authority,
        prev=decoded[0].action.digest,
        issued=T_CASE,
        reason="Suspended",
        signers=admins,
    )
    add(
        "action whose prev is another authority's latest action",
        "LogError",
        6,
        [next_entry(on6, borrowed.signed)],
        rule="§6.3: prev names the authority's latest action",
    )
    reinstate_active = make_action(
        genesis=g,
        action=Action.REINSTATE,
        authority=fr.authority,
        prev=decoded[0].action.digest,
        issued=T_CASE,
        reason="Reinstated",
        signers=admins,
    )
    add(
        "reinstate of an active member",
        "LogError",
        6,
        [next_entry(on6, reinstate_active.signed)],
        rule=rule,
    )
    de = AuthorityId.parse("DE-BKA")
    for prefix, action, reason, cert, name in [
        (8, Action.SUSPEND, "Again", None, "suspend of a suspended member"),
        (10, Action.REVOKE, "Again", None, "revoke of a revoked member"),
        (10, Action.REINSTATE, "Back", None, "reinstate of a revoked member"),
        (10, Action.UPDATE_KEYS, None, "keep", "update-keys of a revoked member"),
    ]:
        state = states[prefix]
        m = state.members[de]
        certificate = None
        if cert:
            certificate = rotated(
                m.certificate, serial=rng_for(f"log/{name}")(16).hex(), at=T_CASE + 2000
            )
        act = make_action(
            genesis=g,
            action=action,
            authority=de,
            prev=m.last_action,
            issued=T_CASE + 2000,
            reason=reason,
            certificate=certificate,
            signers=admins,
        )
        add(name, "LogError", prefix, [next_entry(state, act.signed, T_CASE + 2000)], rule=rule)
    absent = Certificate(
        AuthorityId.parse("PT-MP"),
        rng_for("log/absent-serial")(16).hex(),
        "Ministerio Publico",
        ("anti-corruption",),
        ("pt",),
        None,
        SigningKey(rng_for("log/absent-id")(32)).verify_key,
        SigningKey(rng_for("log/absent-tr")(32)).verify_key,
        bytes(KemPrivateKey(rng_for("log/absent-ka")(96)).public_key),
        T_CASE,
        T_CASE + 86400,
        None,
    )
    upd_absent = make_action(
        genesis=g,
        action=Action.UPDATE_KEYS,
        authority=absent.authority,
        prev=bytes(32),
        issued=T_CASE,
        certificate=absent,
        signers=admins,
    )
    add(
        "update-keys of an authority that was never admitted",
        "LogError",
        6,
        [next_entry(on6, upd_absent.signed)],
        rule=rule,
    )
    # Deliberate leniencies (D1): certificate keys are length-checked only at replay.
    small = Certificate(
        AuthorityId.parse("PT-MP"),
        rng_for("log/small-serial")(16).hex(),
        "Ministerio Publico",
        ("anti-corruption",),
        ("pt",),
        None,
        VerifyKey.from_certified((1).to_bytes(32, "little")),
        SigningKey(rng_for("log/small-tr")(32)).verify_key,
        bytes(32) * 38,
        T_CASE,
        T_CASE + 86400,
        bytes(32),
    )
    admit_small = make_action(
        genesis=g,
        action=Action.ADMIT,
        authority=small.authority,
        prev=None,
        issued=T_CASE,
        certificate=small,
        signers=admins,
    )
    ok(
        "admit certifying a small-order identity key and an all-zero key-agreement key "
        "(length-checked only, decision D1)",
        6,
        [next_entry(on6, admit_small.signed)],
        rule="§3.3, D1: certificate keys are length-checked only at log replay",
    )
    fr_cert = on6.members[AuthorityId.parse("FR-PNF")].certificate
    keep_all = rotated(fr_cert, serial=rng_for("log/keep-all")(16).hex(), at=T_CASE)
    upd_same = make_action(
        genesis=g,
        action=Action.UPDATE_KEYS,
        authority=fr_cert.authority,
        prev=on6.members[fr_cert.authority].last_action,
        issued=T_CASE,
        certificate=keep_all,
        signers=admins,
    )
    ok(
        "update-keys that keeps all three keys (new serial and validity)",
        6,
        [next_entry(on6, upd_same.signed)],
        rule="§6.5: a key may stay in its role",
    )


def _reuse(x: LogCtx) -> None:
    add, net, states, admins = x.add, x.net, x.states, x.admins
    de = member(net, "DE-BKA")
    g = net.genesis
    fr = member(net, "FR-PNF")
    on6 = states[6]
    rule = "§6.5: check_certificate (serials and keys certified once, R4)"

    def admit(name: str, **keys: Any) -> SignedObject:
        cert = Certificate(
            AuthorityId.parse("PT-PJ"),
            keys.pop("serial", rng_for(f"log/{name}/serial")(16).hex()),
            "Policia Judiciaria",
            ("anti-corruption",),
            ("pt",),
            None,
            keys.pop("identity", SigningKey(rng_for(f"log/{name}/id")(32)).verify_key),
            keys.pop("transport", SigningKey(rng_for(f"log/{name}/tr")(32)).verify_key),
            keys.pop("ka", bytes(KemPrivateKey(rng_for(f"log/{name}/ka")(96)).public_key)),
            T_CASE,
            T_CASE + 86400,
            bytes(32),
        )
        return make_action(
            genesis=g,
            action=Action.ADMIT,
            authority=cert.authority,
            prev=None,
            issued=T_CASE,
            certificate=cert,
            signers=admins,
        ).signed

    fr_cert = fr.certificate
    reuse_old = Certificate(
        AuthorityId.parse("PT-PJ"),
        rng_for("log/serial")(16).hex(),
        "Policia Judiciaria",
        ("anti-corruption",),
        ("pt",),
        None,
        fr_cert.identity_key,
        SigningKey(rng_for("log/transport")(32)).verify_key,
        bytes(KemPrivateKey(rng_for("log/ka")(96)).public_key),
        T_CASE,
        T_CASE + 86400,
        bytes(32),
    )
    admit_reuse = make_action(
        genesis=g,
        action=Action.ADMIT,
        authority=reuse_old.authority,
        prev=None,
        issued=T_CASE,
        certificate=reuse_old,
        signers=admins,
    )
    add(
        "admit certifying another member's identity key (R4)",
        "LogError",
        6,
        [next_entry(on6, admit_reuse.signed)],
        rule=rule,
    )
    add(
        "admit certifying another member's key-agreement key",
        "LogError",
        6,
        [next_entry(on6, admit("ka-reuse", ka=fr_cert.ka_key_raw))],
        rule=rule,
    )
    add(
        "admit certifying the hub key",
        "LogError",
        6,
        [next_entry(on6, admit("hub-key", transport=g.hub_key))],
        rule=rule,
    )
    add(
        "admit certifying an admin key",
        "LogError",
        6,
        [next_entry(on6, admit("admin-key", identity=net.admins[2].verify_key))],
        rule=rule,
    )
    add(
        "admit reusing a certificate serial",
        "LogError",
        6,
        [next_entry(on6, admit("serial-reuse", serial=fr_cert.serial))],
        rule=rule,
    )
    on10 = states[10]
    de_cert = states[6].members[de.authority].certificate
    add(
        "admit certifying the identity key of a revoked member",
        "LogError",
        10,
        [next_entry(on10, admit("revoked-key", identity=de_cert.identity_key), T_ADMIT_PT)],
        rule=rule,
    )
    on7 = states[7]
    fr7 = on7.members[fr.authority]

    def update(name: str, **keys: Any) -> SignedObject:
        cert = rotated(
            fr7.certificate, serial=rng_for(f"log/{name}")(16).hex(), at=T_ADMIT_PT + 10, **keys
        )
        return make_action(
            genesis=g,
            action=Action.UPDATE_KEYS,
            authority=fr.authority,
            prev=fr7.last_action,
            issued=T_ADMIT_PT + 10,
            certificate=cert,
            signers=admins,
        ).signed

    add(
        "update-keys that brings back a replaced identity key",
        "LogError",
        7,
        [next_entry(on7, update("comes-back", identity=fr_cert.identity_key), T_ROTATE_FR)],
        rule=rule,
    )
    add(
        "update-keys that moves the transport key to the identity role",
        "LogError",
        7,
        [
            next_entry(
                on7,
                update(
                    "moves",
                    identity=fr7.certificate.transport_key,
                    transport=SigningKey(rng_for("log/moves-tr")(32)).verify_key,
                ),
                T_ROTATE_FR,
            )
        ],
        rule=rule,
    )
