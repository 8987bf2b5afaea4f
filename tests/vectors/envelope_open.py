"""Refusals and acceptances of opening an envelope (§7.6), of the hub's checks and of
proofs of origin (§8.5): crafted envelopes with a valid outer signature and one defect."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol import crypto, labels
from protocol.devnet import DevNetwork
from protocol.directory import verify_log
from protocol.envelope import (
    check_recipients_active,
    open_envelope,
    parse_envelope,
    verify_envelope,
)
from protocol.ids import AuthorityId
from protocol.membership import Action, make_action
from tests.vectors.envelopes import Crafted, W, pad
from tests.vectors.logs import Continuation, extended_log, next_entry
from tests.vectors.vectorlib import (
    ENVELOPE_CREATED,
    ENVELOPE_EXPIRES,
    NOW,
    Accepts,
    Cases,
    HpkePool,
    Json,
    by_key_id,
    h,
    member,
    mutate,
)

# --- opening (open_envelope, §7.6) ---------------------------------------------------------


@dataclass
class Opener:
    """Adds envelope_open cases: ``me`` holds its signed prekey and its KA key."""

    cases: Cases
    accepts: Accepts
    net: DevNetwork
    log: list[bytes]

    def inputs(
        self,
        data: bytes,
        *,
        me: str,
        holder: str | None,
        now: int,
        log_entries: int,
        extra: list[bytes],
    ) -> tuple[Callable[[], object], Json]:
        m = member(self.net, holder or me)
        keys = [m.prekey, m.ka]
        state = verify_log(self.net.genesis, [*self.log[:log_entries], *extra])

        def check() -> object:
            return open_envelope(
                parse_envelope(data),
                directory=state,
                me=AuthorityId.parse(me),
                private_key=by_key_id(*keys),
                now=now,
            )

        record = {
            "envelope": h(data),
            "me": me,
            "private_keys": [h(k.raw) for k in keys],
            "now": now,
            "log_entries": log_entries,
        }
        if extra:
            record["extra_entries"] = [h(e) for e in extra]
        return check, record

    def add(
        self,
        name: str,
        error: str,
        data: bytes,
        *,
        rule: str,
        me: str = "DE-BKA",
        holder: str | None = None,
        now: int = NOW,
        log_entries: int = 6,
        extra: list[bytes] | None = None,
        **more: Any,
    ) -> None:
        check, record = self.inputs(
            data, me=me, holder=holder, now=now, log_entries=log_entries, extra=extra or []
        )
        self.cases.add(name, "envelope_open", error, check, rule=rule, **record, **more)

    def ok(
        self,
        name: str,
        data: bytes,
        *,
        rule: str,
        me: str = "DE-BKA",
        now: int = NOW,
        log_entries: int = 6,
        extra: list[bytes] | None = None,
        **more: Any,
    ) -> None:
        check, record = self.inputs(
            data, me=me, holder=None, now=now, log_entries=log_entries, extra=extra or []
        )
        self.accepts.add(name, "envelope_open", check, rule=rule, **record, **more)


def open_cases(
    cases: Cases,
    accepts: Accepts,
    net: DevNetwork,
    pool: HpkePool,
    *,
    cont: Continuation,
    env1: bytes,
    env3: bytes,
) -> None:
    log = extended_log(net, cont)
    op = Opener(cases, accepts, net, log)
    env = parse_envelope(env1)
    header = env.header.raw
    hl = len(header)
    body_offset = 10 + hl + 2 + len(env.wrapped) * W + 4
    seq_at = 10 + header.index(b'"seq":1}')
    net_at = 10 + header.index(b'"network":"') + len('"network":"')
    kid_end = 10 + header.index(b'","sender_key":') - 0
    sk_at = 10 + header.index(b'"sender_key":"') + len('"sender_key":"') + 8 + 31
    assert kid_end > 0

    def derived(mutation: Json) -> tuple[bytes, Json]:
        return mutate(env1, mutation), {
            "derived_from": {"file": "envelope_1.json", "mutation": mutation}
        }

    def mut(name: str, error: str, mutation: Json, *, rule: str, **kw: Any) -> None:
        data, more = derived(mutation)
        op.add(name, error, data, rule=rule, **kw, **more)

    none: Json = {"op": "none"}
    other_char = "A" if env1[net_at : net_at + 1] != b"A" else "B"
    wrong_net: Json = {"op": "set", "offset": net_at, "bytes": other_char.encode().hex()}
    digit = env1[sk_at : sk_at + 1]
    wrong_kid: Json = {
        "op": "set",
        "offset": sk_at,
        "bytes": (b"0" if digit != b"0" else b"1").hex(),
    }
    flip_sig: Json = {"op": "xor", "offset": len(env1) - 1, "mask": 1}
    sig = "§7.6 step 19: the outer signature"
    mut(
        "envelope with one bit flipped in the body ciphertext",
        "BadSignature",
        {"op": "xor", "offset": body_offset + 100, "mask": 1},
        rule=sig,
    )
    mut(
        "envelope with one bit flipped in the wrapped key",
        "BadSignature",
        {"op": "xor", "offset": 10 + hl + 2 + 500, "mask": 128},
        rule=sig,
    )
    mut("envelope with one bit flipped in the outer signature", "BadSignature", flip_sig, rule=sig)
    mut(
        "envelope whose header recipient seq was changed",
        "BadSignature",
        {"op": "set", "offset": seq_at, "bytes": h(b'"seq":2}')},
        rule=sig,
    )
    mut(
        "envelope opened by a party that is not a recipient",
        "NotARecipient",
        none,
        me="ES-FCC",
        rule="§7.6 step 20: the opener is a recipient",
    )
    mut(
        "envelope opened by its own sender",
        "ReflectedMessage",
        none,
        me="FR-PNF",
        rule="§7.6 step 0: the opener is not the sender",
    )
    mut(
        "envelope opened with another member's prekey",
        "DecryptionFailed",
        none,
        holder="ES-FCC",
        rule="§7.6 step 21: the private key the header's prekey id names",
    )
    mut(
        "envelope opened at its expiry time",
        "ExpiredError",
        none,
        now=ENVELOPE_EXPIRES,
        rule="§7.6 step 17: expires > now",
    )
    mut(
        "envelope opened more than 300 s before its creation time",
        "NotYetValid",
        none,
        now=ENVELOPE_CREATED - 301,
        rule="§7.6 step 16: created ≤ now + 300",
    )
    mut(
        "envelope opened against a directory without its sender",
        "UnknownMember",
        none,
        log_entries=0,
        rule="§7.6 step 18: the sender is a member",
    )
    mut(
        "envelope for another network",
        "MalformedError",
        wrong_net,
        rule="§7.6 step 15: the header's network is the genesis digest",
    )
    mut(
        "envelope whose sender key id is not the certified identity key",
        "NotCertified",
        wrong_kid,
        rule="§7.6 step 18: sender_key names the current identity key",
    )
    mut(
        "envelope whose sender has since rotated its identity key",
        "NotCertified",
        none,
        log_entries=7,
        rule="§6.5, §7.6 step 18: a replaced identity key signs what is dated before retired_at",
    )
    g = net.genesis
    on6 = verify_log(g, log[:6])
    fr = member(net, "FR-PNF")
    for verb, action in [("suspended", Action.SUSPEND), ("revoked", Action.REVOKE)]:
        act = make_action(
            genesis=g,
            action=action,
            authority=fr.authority,
            prev=on6.members[fr.authority].last_action,
            issued=NOW - 10,
            reason="Under investigation",
            signers=net.admins[:2],
        )
        mut(
            f"envelope whose sender was {verb} before it was opened",
            "MemberNotActive",
            none,
            extra=[next_entry(on6, act.signed, NOW - 10)],
            rule="§7.6 step 18, D3: the sender is active when the envelope is opened",
        )
    order = "§1.6, §7.6: the steps in order"
    mut(
        "envelope for another network opened by its own sender",
        "ReflectedMessage",
        wrong_net,
        me="FR-PNF",
        rule=order,
    )
    mut(
        "envelope for another network opened at its expiry time",
        "MalformedError",
        wrong_net,
        now=ENVELOPE_EXPIRES,
        rule=order,
    )
    mut(
        "expired envelope from a sender not in the directory",
        "ExpiredError",
        none,
        now=ENVELOPE_EXPIRES,
        log_entries=0,
        rule=order,
    )
    mut(
        "envelope with a wrong sender key id and a flipped outer signature",
        "NotCertified",
        {"op": "steps", "steps": [wrong_kid, flip_sig]},
        rule=order,
    )
    mut(
        "envelope with a flipped outer signature opened by a non-recipient",
        "BadSignature",
        flip_sig,
        me="ES-FCC",
        rule=order,
    )
    op.ok(
        "envelope opened exactly 300 s before its creation time",
        env1,
        now=ENVELOPE_CREATED - 300,
        rule="§7.6 step 16: created ≤ now + 300",
        derived_from={"file": "envelope_1.json", "mutation": none},
    )
    op.ok(
        "envelope opened 1 s before its expiry",
        env1,
        now=ENVELOPE_EXPIRES - 1,
        rule="§7.6 step 17: expires > now",
        derived_from={"file": "envelope_1.json", "mutation": none},
    )
    it = member(net, "IT-ANAC")
    suspend_it = make_action(
        genesis=g,
        action=Action.SUSPEND,
        authority=it.authority,
        prev=on6.members[it.authority].last_action,
        issued=NOW - 10,
        reason="Under investigation",
        signers=net.admins[:2],
    )
    op.ok(
        "envelope opened against a longer log in which another recipient was suspended",
        env3,
        me="ES-FCC",
        extra=[next_entry(on6, suspend_it.signed, NOW - 10)],
        rule="§7.6: other recipients are not checked; step 28 reports the head relation",
        derived_from={"file": "envelope_3.json", "mutation": none},
    )
    _crafted(op, net, pool)


def _crafted(op: Opener, net: DevNetwork, pool: HpkePool) -> None:
    de = member(net, "DE-BKA")

    def add(name: str, error: str, rule: str, *, log_entries: int = 6, **kw: Any) -> None:
        raw, wraps = Crafted(net, pool, name, **kw).build()
        op.add(name, error, raw, rule=rule, log_entries=log_entries, wraps=wraps)

    def ok(name: str, rule: str, **kw: Any) -> None:
        raw, wraps = Crafted(net, pool, name, **kw).build()
        op.ok(name, raw, rule=rule, wraps=wraps)

    ok(
        "crafted envelope that opens (the reference for the cases below)",
        "§7: an envelope built from the text alone",
    )
    ok(
        "crafted envelope wrapped to the recipient's key-agreement key (fallback)",
        "§6.6: the fallback to the certified KA key",
        wrap_to="ka",
    )
    add(
        "crafted envelope whose commitment is to another content key",
        "DecryptionFailed",
        "§7.6 step 23: the key commitment",
        commit_key=bytes(32),
    )
    add(
        "crafted envelope whose wrapped key is not the committed content key",
        "DecryptionFailed",
        "§7.6 step 23: the key commitment",
        wrapped_plaintext=bytes(32),
    )
    add(
        "crafted envelope whose body was encrypted without the label in its AAD",
        "DecryptionFailed",
        "§7.6 step 24: the body AEAD (aad = label ‖ 0x00 ‖ header)",
        body_aad=b"",
    )  # the label is missing from the associated data
    add(
        "crafted envelope whose body was encrypted under another key",
        "DecryptionFailed",
        "§7.6 step 24: the body AEAD",
        body_key=bytes(range(32)),
    )
    add(
        "crafted envelope with a non-zero padding byte",
        "MalformedError",
        "§7.3, §7.6 step 26: canonical padding",
        plaintext=lambda c, i: pad(c, i)[:-1] + b"\x01",
    )
    add(
        "crafted envelope padded to 2 KiB when 1 KiB fits",
        "MalformedError",
        "§7.3, §7.6 step 26: the smallest bucket",
        plaintext=lambda c, i: pad(c, i) + bytes(1024),
    )
    add(
        "crafted envelope whose content length runs past the body",
        "MalformedError",
        "§7.6 step 25: the content length",
        plaintext=lambda c, i: struct.pack(">I", 2000) + pad(c, i)[4:],
    )
    add(
        "crafted envelope whose inner signature omits the header digest",
        "BadSignature",
        "§7.5, §7.6 step 27: the inner signature covers SHA-256(header) ‖ content",
        inner=lambda _hdr, c: member(net, "FR-PNF").identity.sign(labels.CONTENT, c),
    )
    add(
        "crafted envelope whose inner signature is by the transport key",
        "BadSignature",
        "§7.6 step 27: the inner signature is by the sender's identity key",
        inner=lambda hdr, c: member(net, "FR-PNF").transport.sign(
            labels.CONTENT, crypto.sha256(hdr) + c
        ),
    )
    add(
        "crafted envelope wrapped to the key-agreement key but naming the prekey",
        "DecryptionFailed",
        "§7.6 step 22: the key the header names opens the wrapped key",
        wrap_to="ka",
        prekey_id=str(de.prekey.key_id),
    )
    add(
        "crafted envelope whose prekey id names a key the recipient does not hold",
        "DecryptionFailed",
        "§7.6 step 21: the private key the header's prekey id names",
        prekey_id="ed25519:" + de.identity.key_id.digest.hex(),
    )
    add(
        "crafted envelope whose wrapped key has an all-zero X25519 ciphertext",
        "DecryptionFailed",
        "§7.4: a low-order ct_X (all-zero X25519 output) fails",
        wrapped_edit={"op": "set", "offset": 1088, "bytes": bytes(32).hex()},
    )
    add(
        "crafted envelope whose wrap info names another recipient",
        "DecryptionFailed",
        "§7.4, §7.6 step 22: the wrap info binds the recipient",
        info_recipient="ES-FCC",
    )
    add(
        "crafted envelope whose sender key names its key-agreement key",
        "NotCertified",
        "§7.2, §7.6 step 18: sender_key is an Ed25519 identity key id",
        header={"sender_key": str(member(net, "FR-PNF").ka.key_id)},
    )
    add(
        "crafted envelope signed (outer) by the sender's transport key",
        "BadSignature",
        "§7.6 step 19: the outer signature is by the identity key",
        outer=member(net, "FR-PNF").transport,
    )
    add(
        "crafted envelope from a sender suspended when it is opened",
        "MemberNotActive",
        "§7.6 step 18, D3: the sender is active when the envelope is opened",
        sender="ES-FCC",
        log_entries=5,
        state=verify_log(net.genesis, net.entries[:5]),
    )
    add(
        "crafted envelope with a bad padding byte and a bad inner signature",
        "MalformedError",
        "§1.6, §7.6: padding (step 26) before the inner signature (step 27)",
        plaintext=lambda c, i: pad(c, bytes(64))[:-1] + b"\x01",
    )
    add(
        "crafted envelope with a commitment mismatch and a bad body",
        "DecryptionFailed",
        "§1.6, §7.6: the commitment (step 23) before the body (step 24)",
        commit_key=bytes(32),
        body_key=bytes(range(32)),
    )


# --- the hub's checks ----------------------------------------------------------------------


def hub_cases(cases: Cases, net: DevNetwork, env1: bytes, env3: bytes) -> None:
    g = net.genesis

    def add(
        name: str,
        error: str,
        data: bytes,
        *,
        mutation: Json,
        source: str,
        log_entries: int,
        rule: str,
    ) -> None:
        state = verify_log(g, net.entries[:log_entries])

        def check() -> None:
            env = parse_envelope(data)
            verify_envelope(env, state, NOW)
            check_recipients_active(env, state, NOW)

        cases.add(
            name,
            "envelope_hub_check",
            error,
            check,
            rule=rule,
            envelope=h(data),
            derived_from={"file": source, "mutation": mutation},
            now=NOW,
            log_entries=log_entries,
        )

    none: Json = {"op": "none"}
    active = "§7.6 check_recipients_active: every recipient active"
    e3: Json = {"mutation": none, "source": "envelope_3.json"}
    add(
        "envelope to a suspended recipient (hub check)",
        "MemberNotActive",
        env3,
        **e3,
        log_entries=5,
        rule=active,
    )
    add(
        "envelope to a recipient not yet admitted (hub check)",
        "UnknownMember",
        env3,
        **e3,
        log_entries=3,
        rule=active,
    )
    flip: Json = {"op": "xor", "offset": len(env1) - 1, "mask": 1}
    add(
        "envelope with a flipped outer signature (hub check)",
        "BadSignature",
        mutate(env1, flip),
        mutation=flip,
        source="envelope_1.json",
        log_entries=6,
        rule="§7.6 step 19: the outer signature",
    )
