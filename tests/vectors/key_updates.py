"""Key updates (PROTOCOL.md §6.8): key_update.json, every refusal of a key-update request,
and what a replaced identity key still verifies (§6.5 retired_at, §7.6 step 18, §9.1).

The entries of key_update.json continue log.json (entries 1-6), not directory.json: a
planned rotation of IT-ANAC (entry 7) and the compromise procedure for FR-PNF (entries
8-10: suspension, new keys while suspended, reinstatement).  Every key, serial and
secret comes from ``deterministic_rng(b"globe vectors v1/key-update/<what>")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from protocol import canonical, crypto, labels
from protocol.devnet import GENESIS_TIME, DevNetwork
from protocol.directory import DirectoryState, verify_log
from protocol.envelope import check_recipients_active, parse_envelope, verify_envelope
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keyupdate import KeyUpdateRequest, certificate_for, make_key_update
from protocol.membership import Action, MembershipAction, kem_pop_answer, make_action
from protocol.receipts import DeliveryReceipt, make_receipt
from protocol.signed import SignedObject
from tests.vectors.envelope_open import Opener
from tests.vectors.logs import next_entry
from tests.vectors.records import member_rows
from tests.vectors.refusals import ORDER_8, container_cases
from tests.vectors.vectorlib import (
    ENVELOPE_CREATED,
    NOW,
    Accepts,
    Cases,
    HpkePool,
    Json,
    b64,
    build_network,
    h,
    member,
    padded,
    payload_of,
    resign,
    rng_for,
)

#: Times of key_update.json's entries (after log.json's last, before NOW).
T_IT_REQUEST: Final = GENESIS_TIME + 5100
T_IT_UPDATE: Final = GENESIS_TIME + 5200
T_FR_SUSPEND: Final = GENESIS_TIME + 5300
T_FR_REQUEST: Final = GENESIS_TIME + 5350
T_FR_UPDATE: Final = GENESIS_TIME + 5400
T_FR_REINSTATE: Final = GENESIS_TIME + 5500
FR_SUSPEND_REASON: Final = "Identity key reported stolen with the duty laptop"
FR_REINSTATE_REASON: Final = "Keys replaced; fingerprint confirmed by telephone"

_RULE_SIGS: Final = "§6.8 step 8: the current identity key and the new signing keys sign"


@dataclass(frozen=True, slots=True)
class NewKeys:
    """A member's new keys, drawn from ``key-update/<who>-*`` (all three, for the vectors)."""

    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey

    @classmethod
    def draw(cls, who: str) -> NewKeys:
        return cls(
            SigningKey(rng_for(f"key-update/{who}-identity")(32)),
            SigningKey(rng_for(f"key-update/{who}-transport")(32)),
            KemPrivateKey(rng_for(f"key-update/{who}-ka")(96)),
        )


def request(
    net: DevNetwork, authority: str, keys: NewKeys, created: int, *, keep: tuple[str, ...] = ()
) -> SignedObject:
    """``authority``'s request for ``keys``, keeping its current keys of the roles in
    ``keep`` (``identity``, ``transport``, ``ka``)."""
    m = member(net, authority)
    return make_key_update(
        genesis=net.genesis,
        authority=m.authority,
        current=m.identity,
        identity=m.identity if "identity" in keep else keys.identity,
        transport=m.transport if "transport" in keep else keys.transport,
        ka_key=m.ka.public_key if "ka" in keep else keys.ka.public_key,
        created=created,
    )


def _update(
    net: DevNetwork, state: DirectoryState, signed: SignedObject, serial: str, at: int
) -> MembershipAction:
    req = KeyUpdateRequest.from_signed(signed, state)
    m = state.member(req.authority)
    cert = certificate_for(req, m.certificate, serial=rng_for(serial)(16).hex(), not_before=at)
    return make_action(
        genesis=net.genesis, action=Action.UPDATE_KEYS, authority=req.authority,
        prev=m.last_action, issued=at, certificate=cert, signers=net.admins[:2],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeyUpdateLog:
    """key_update.json's branch of the log: the network after entry 10, and what made it."""

    net: DevNetwork
    entries: list[bytes]  # entries 7-10
    it_keys: NewKeys
    it_request: SignedObject
    it_update: MembershipAction
    fr_keys: NewKeys
    fr_request: SignedObject
    fr_update: MembershipAction


def build_branch() -> KeyUpdateLog:
    """Entries 7-10 on a fresh copy of the vector devnet."""
    net = build_network()
    state = net.directory
    it_keys, fr_keys = NewKeys.draw("it"), NewKeys.draw("fr")
    it_request = request(net, "IT-ANAC", it_keys, T_IT_REQUEST)
    it_update = _update(net, state, it_request, "key-update/it-serial", T_IT_UPDATE)
    net.append(it_update, T_IT_UPDATE)
    net.set_status("FR-PNF", Action.SUSPEND, FR_SUSPEND_REASON, T_FR_SUSPEND)
    fr_request = request(net, "FR-PNF", fr_keys, T_FR_REQUEST)
    fr_update = _update(net, state, fr_request, "key-update/fr-serial", T_FR_UPDATE)
    net.append(fr_update, T_FR_UPDATE)
    net.set_status("FR-PNF", Action.REINSTATE, FR_REINSTATE_REASON, T_FR_REINSTATE)
    return KeyUpdateLog(
        net, net.entries[6:], it_keys, it_request, it_update, fr_keys, fr_request, fr_update
    )


# --- key_update.json ---------------------------------------------------------------------------


def _receipt(net: DevNetwork, key: SigningKey, time: int) -> bytes:
    rng = rng_for("key-update/receipt")
    return make_receipt(
        genesis=net.genesis, identity=key, message_id=MessageId(rng(16)), envelope_hash=rng(32),
        sender=AuthorityId.parse("DE-BKA"), recipient=AuthorityId.parse("FR-PNF"), time=time,
    ).encode()  # fmt: skip


def build_key_update(pool: HpkePool) -> Json:
    """key_update.json: the two requests, the KEM challenge, the actions, entries 7-10, the
    member table after them and the receipts that must verify against them."""
    b = build_branch()
    net = b.net
    base = build_network()
    secret = rng_for("key-update/kem-pop")(32)
    digest = b.it_request.digest()
    info = crypto.labelled(labels.KEM_POP, digest)
    challenge = pool.seal(b.it_keys.ka, info, secret)
    assert kem_pop_answer(b.it_keys.ka, digest, challenge) == secret

    def req_record(signed: SignedObject, keys: NewKeys, log_entries: int) -> Json:
        state = verify_log(net.genesis, [*base.entries, *b.entries][:log_entries])
        req = KeyUpdateRequest.from_signed(signed, state)
        return {
            "authority": str(req.authority),
            "request": h(signed.encode()),
            "payload": h(signed.payload),
            "digest": h(req.digest),
            "fingerprint": req.fingerprint(),
            "replaced": list(req.replaced),
            "signers": [str(s.key_id) for s in signed.signatures],
            "log_entries": log_entries,
            "identity_seed": h(keys.identity.seed),
            "transport_seed": h(keys.transport.seed),
            "ka_private_key": h(keys.ka.raw),
        }

    def action_record(action: MembershipAction) -> Json:
        cert = action.certificate
        assert cert is not None
        return {
            "action": h(action.signed.encode()),
            "payload": h(action.signed.payload),
            "serial": cert.serial,
            "application": h(cert.application or b""),
            "not_before": cert.not_before,
            "not_after": cert.not_after,
        }

    state = net.directory
    old_fr = member(base, "FR-PNF").identity
    receipts: list[Json] = [
        {
            "name": "receipt by FR-PNF's stolen key, dated the second before its suspension",
            "receipt": h(_receipt(net, old_fr, T_FR_SUSPEND - 1)),
            "log_entries": 10,
        },
        {
            "name": "receipt by FR-PNF's new key, dated after its reinstatement",
            "receipt": h(_receipt(net, b.fr_keys.identity, T_FR_REINSTATE)),
            "log_entries": 10,
        },
    ]
    for rec in receipts:
        DeliveryReceipt.decode(bytes.fromhex(rec["receipt"]), state)
    return {
        "description": (
            "Key updates (PROTOCOL.md §6.8) continuing log.json's six entries (not "
            "directory.json's): IT-ANAC's request for three new keys while active (signed by its "
            "current identity key and its new identity and transport keys), the KEM challenge "
            "proving its new key-agreement key (secret: first output of deterministic_rng("
            "'globe vectors v1/key-update/kem-pop'); 'info' = 'globe/v1/kem-pop' || 0x00 || the "
            "request digest; HPKE randomness fixed as data), and the update-keys the admins sign "
            "for it (entry 7: the certificate names the request digest in 'application'). Then "
            "the compromise procedure for FR-PNF: suspension (entry 8), its request for three new "
            "keys while suspended (signed by the stolen key too) and the update-keys (entry 9), "
            "reinstatement (entry 10). In the member table FR-PNF's old identity key is retired "
            "at the time of the suspension, IT-ANAC's at the time of its update-keys (§6.5). New "
            "keys and serials: deterministic_rng('globe vectors v1/key-update/<it|fr>-"
            "<identity|transport|ka|serial>'). 'receipts' must verify against entries 1-10. The "
            "refusals of a key-update request are in invalid.json (structure 'key_update'); "
            "requests that must be accepted in valid.json."
        ),
        "now": NOW,
        "requests": {
            "IT-ANAC": req_record(b.it_request, b.it_keys, 6),
            "FR-PNF": req_record(b.fr_request, b.fr_keys, 8),
        },
        "kem_pop": {
            "authority": "IT-ANAC",
            "request_digest": h(digest),
            "secret": h(secret),
            "info": h(info),
            "challenge": h(challenge),
            "ka_private_key": h(b.it_keys.ka.raw),
        },
        "actions": {"IT-ANAC": action_record(b.it_update), "FR-PNF": action_record(b.fr_update)},
        "entries": [
            {"seq": 7 + i, "entry": h(e), "hash": h(state.heads[7 + i]), "time": t}
            for i, (e, t) in enumerate(
                zip(
                    b.entries, (T_IT_UPDATE, T_FR_SUSPEND, T_FR_UPDATE, T_FR_REINSTATE), strict=True
                )
            )
        ],
        "seq": state.seq,
        "head": h(state.head),
        "members": member_rows(state),
        "receipts": receipts,
    }


# --- refusals and acceptances of a key-update request (§6.8) ---------------------------------


def pub(key: SigningKey) -> str:
    """A public key as a payload carries it."""
    return b64(bytes(key.verify_key))


def request_cases(cases: Cases, accepts: Accepts) -> None:
    """Every refusal of a key-update request, checked against log.json's directory (or a
    longer one), and the requests that must be accepted."""
    net = build_network()
    g = net.genesis
    on6 = net.directory
    it, de, fr = member(net, "IT-ANAC"), member(net, "DE-BKA"), member(net, "FR-PNF")
    new = NewKeys.draw("it")
    valid = request(net, "IT-ANAC", new, T_IT_REQUEST)
    base = payload_of(valid)
    signers = [it.identity, new.identity, new.transport]

    def decode_on(extra: list[bytes]) -> Any:
        state = verify_log(g, [*net.entries, *extra])
        return lambda d: KeyUpdateRequest.decode(d, state)

    def inputs(extra: list[bytes]) -> Json:
        return {"log_entries": 6, **({"extra_entries": [h(e) for e in extra]} if extra else {})}

    def add(
        name: str, error: str, data: bytes, rule: str, extra: list[bytes] | None = None
    ) -> None:
        cases.add(
            name, "key_update", error, partial(decode_on(extra or []), data), rule=rule,
            **padded("request", data), **inputs(extra or []),
        )  # fmt: skip

    def ok(name: str, data: bytes, rule: str, extra: list[bytes] | None = None) -> None:
        accepts.add(
            name, "key_update", partial(decode_on(extra or []), data), rule=rule,
            request=h(data), **inputs(extra or []),
        )  # fmt: skip

    def edit(keys: list[SigningKey] | None = None, **changes: Any) -> bytes:
        return resign({**base, **changes}, labels.KEY_UPDATE, keys or signers)

    def status(authority: str, action: Action, time: int = T_IT_REQUEST) -> bytes:
        act = make_action(
            genesis=g, action=action, authority=AuthorityId.parse(authority),
            prev=on6.members[AuthorityId.parse(authority)].last_action, issued=time,
            reason="Under investigation", signers=net.admins[:2],
        )  # fmt: skip
        return next_entry(on6, act.signed, time)

    container_cases(
        cases, "key_update", decode_on([]), valid=valid, cap=16 * 1024,
        label=labels.KEY_UPDATE, signers=signers, field="request", log_entries=6,
    )  # fmt: skip
    fields = "§6.8 step 2: request fields, in read order"
    keys = "§2.5, §3.3: a key of the wrong length is malformed, a bad key invalid-key"
    ka_raw = canonical.b64d(base["ka_key"], what="v")
    for name, error, changes, rule in [
        ("key update with an invalid authority id", "InvalidIdentifier",
         {"authority": "IT-anac"}, fields),
        ("key update with an identity key of small order", "InvalidKey",
         {"identity_key": b64(ORDER_8)}, keys),
        ("key update with a transport key of 33 bytes", "MalformedError",
         {"transport_key": b64(bytes(33))}, keys),
        ("key update with a key-agreement key with a low-order X25519 part", "InvalidKey",
         {"ka_key": b64(ka_raw[:1184] + bytes(32))}, keys),
        ("key update created as a string", "MalformedError", {"created": "now"}, fields),
        ("key update whose identity and transport keys are equal", "MalformedError",
         {"transport_key": base["identity_key"]}, "§6.8 step 3: identity ≠ transport (R3)"),
        ("key update for an authority that is not a member", "UnknownMember",
         {"authority": "GB-SFO"}, "§6.8 step 4: the authority is a member"),
        ("key update with a small-order identity key and an unknown field", "InvalidKey",
         {"identity_key": b64(ORDER_8), "zz": 1}, "§1.6, §6.8: fields before unknown fields"),
        ("key update for a non-member whose identity equals its transport key", "MalformedError",
         {"authority": "GB-SFO", "transport_key": base["identity_key"]},
         "§1.6, §6.8: step 3 before step 4"),
    ]:  # fmt: skip
        add(name, error, edit(**changes), rule)
    add(
        "key update for a revoked member",
        "MemberNotActive",
        valid.encode(),
        "§6.8 step 5: a revoked member's keys are never updated",
        [status("IT-ANAC", Action.REVOKE)],
    )
    keep_all = request(net, "IT-ANAC", new, T_IT_REQUEST, keep=("identity", "transport", "ka"))
    add(
        "key update that replaces no key",
        "MalformedError",
        keep_all.encode(),
        "§6.8 step 6: at least one key is replaced",
    )
    suspend_it = status("IT-ANAC", Action.SUSPEND)
    add(
        "key update of a suspended member that keeps its transport key",
        "MalformedError",
        request(net, "IT-ANAC", new, T_IT_REQUEST, keep=("transport",)).encode(),
        "§6.8 step 6: a suspended member replaces every key",
        [suspend_it],
    )
    reuse = "§6.8 step 7, §6.5: a key is certified once, for one authority and one role (R4)"
    add(
        "key update whose new identity key is another member's identity key",
        "LogError",
        edit([it.identity, de.identity, new.transport], identity_key=pub(de.identity)),
        reuse,
    )
    add(
        "key update whose new transport key is its own current identity key",
        "LogError",
        edit([it.identity, new.identity], transport_key=pub(it.identity)),
        reuse,
    )
    add(
        "key update whose new key-agreement key is another member's",
        "LogError",
        edit(ka_key=b64(bytes(de.ka.public_key))),
        reuse,
    )
    # FR-PNF's identity key replaced in an update-keys, then offered again by IT-ANAC.
    fr_new = NewKeys.draw("fr")
    fr_rotate = make_action(
        genesis=g, action=Action.UPDATE_KEYS, authority=fr.authority,
        prev=on6.members[fr.authority].last_action, issued=T_IT_REQUEST,
        certificate=certificate_for(
            KeyUpdateRequest.from_signed(request(net, "FR-PNF", fr_new, T_IT_REQUEST), on6),
            on6.members[fr.authority].certificate,
            serial=rng_for("key-update/fr-serial")(16).hex(), not_before=T_IT_REQUEST,
        ),
        signers=net.admins[:2],
    )  # fmt: skip
    add(
        "key update whose new identity key is a member's replaced identity key",
        "LogError",
        edit([it.identity, fr.identity, new.transport], identity_key=pub(fr.identity)),
        reuse,
        [next_entry(on6, fr_rotate.signed, T_IT_REQUEST)],
    )
    reserved = "§6.8 step 7, §6.5: no member key is the hub's or an admin's (R4)"
    add(
        "key update whose new identity key is an admin key",
        "LogError",
        edit([it.identity, net.admins[2], new.transport], identity_key=pub(net.admins[2])),
        reserved,
    )
    add(
        "key update whose new transport key is the hub key",
        "LogError",
        edit([it.identity, new.identity, net.hub], transport_key=pub(net.hub)),
        reserved,
    )
    add(
        "key update signed by the new keys only",
        "BadSignature",
        edit([new.identity, new.transport]),
        _RULE_SIGS,
    )
    add(
        "key update authorised by another member's identity key",
        "BadSignature",
        edit([de.identity, new.identity, new.transport]),
        _RULE_SIGS,
    )
    add(
        "key update authorised by the member's transport key",
        "BadSignature",
        edit([it.transport, new.identity, new.transport]),
        _RULE_SIGS,
    )
    add(
        "key update without the new transport key's signature",
        "BadSignature",
        edit([it.identity, new.identity]),
        _RULE_SIGS,
    )
    add(
        "key update without the new identity key's signature, with another",
        "BadSignature",
        edit([it.identity, de.identity, new.transport]),
        _RULE_SIGS,
    )
    add(
        "key update with a fourth signature",
        "BadSignature",
        edit([*signers, de.identity]),
        _RULE_SIGS,
    )
    add(
        "key update signed under the application label",
        "BadSignature",
        resign(base, labels.APPLICATION, signers),
        _RULE_SIGS,
    )
    altered = canonical.encode({**base, "created": T_IT_REQUEST + 1})
    add(
        "key update payload altered after signing",
        "BadSignature",
        SignedObject(altered, valid.signatures).encode(),
        _RULE_SIGS,
    )
    order = "§1.6, §6.8: the steps in order"
    add(
        "key update for a non-member with no signature",
        "UnknownMember",
        SignedObject(canonical.encode({**base, "authority": "GB-SFO"}), ()).encode(),
        order,
    )
    add(
        "key update reusing another member's key, without the current key's signature",
        "LogError",
        edit([new.identity, new.transport], ka_key=b64(bytes(de.ka.public_key))),
        order,
    )
    add(
        "key update of a revoked member that replaces no key",
        "MemberNotActive",
        keep_all.encode(),
        order,
        [status("IT-ANAC", Action.REVOKE)],
    )
    # Acceptances.
    ok("key update of three keys by an active member", valid.encode(), _RULE_SIGS)
    ok(
        "key update of the key-agreement key alone (two signatures)",
        request(net, "DE-BKA", NewKeys.draw("de"), T_IT_REQUEST,
                keep=("identity", "transport")).encode(),
        "§6.8 step 8: a kept key signs once",
    )  # fmt: skip
    ok(
        "key update of the identity key alone",
        request(net, "ES-FCC", NewKeys.draw("es"), T_IT_REQUEST, keep=("transport", "ka")).encode(),
        "§6.8 step 8: the current and the new identity key, and the kept transport key",
    )  # fmt: skip
    ok(
        "key update of a suspended member, signed by its current identity key",
        request(net, "IT-ANAC", new, T_IT_REQUEST).encode(),
        "§6.8 steps 5-6: a suspended member may ask, replacing every key",
        [suspend_it],
    )


# --- what a replaced identity key still verifies -------------------------------------------------


def retired_key_cases(cases: Cases, accepts: Accepts, pool: HpkePool, env1: bytes) -> None:
    """Envelopes (§7.6 step 18) and receipts (§9.1) signed by a replaced identity key, on
    logs where FR-PNF's key is replaced around the envelope's creation time, while active
    or after a suspension (§6.5 retired_at)."""
    net = build_network()
    g = net.genesis
    on6 = net.directory
    fr = member(net, "FR-PNF")
    op = Opener(cases, accepts, net, list(net.entries))
    none: Json = {"op": "none"}
    derived: dict[str, Any] = {"derived_from": {"file": "envelope_1.json", "mutation": none}}
    fr_new = NewKeys.draw("fr")
    fr_req = KeyUpdateRequest.from_signed(request(net, "FR-PNF", fr_new, T_IT_REQUEST), on6)

    def rotation(state: DirectoryState, at: int) -> bytes:
        cert = certificate_for(
            fr_req, state.members[fr.authority].certificate,
            serial=rng_for("key-update/fr-serial")(16).hex(), not_before=at,
        )  # fmt: skip
        act = make_action(
            genesis=g, action=Action.UPDATE_KEYS, authority=fr.authority,
            prev=state.members[fr.authority].last_action, issued=at, certificate=cert,
            signers=net.admins[:2],
        )  # fmt: skip
        return next_entry(state, act.signed, at)

    def status(state: DirectoryState, action: Action, at: int) -> bytes:
        act = make_action(
            genesis=g, action=action, authority=fr.authority,
            prev=state.members[fr.authority].last_action, issued=at,
            reason=FR_SUSPEND_REASON if action is Action.SUSPEND else FR_REINSTATE_REASON,
            signers=net.admins[:2],
        )  # fmt: skip
        return next_entry(state, act.signed, at)

    def chain(*steps: tuple[str, int]) -> list[bytes]:
        state = verify_log(g, net.entries)
        out = []
        for what, at in steps:
            entry = (
                rotation(state, at)
                if what == "rotate"
                else status(state, Action.SUSPEND if what == "suspend" else Action.REINSTATE, at)
            )
            state.apply(entry)
            out.append(entry)
        return out

    step18 = "§6.5, §7.6 step 18: a replaced identity key signs what is dated before retired_at"
    op.ok(
        "envelope signed by an identity key replaced one second after its creation",
        env1,
        extra=chain(("rotate", ENVELOPE_CREATED + 1)),
        rule=step18,
        **derived,
    )
    op.add(
        "envelope signed by an identity key replaced at its creation time",
        "NotCertified",
        env1,
        extra=chain(("rotate", ENVELOPE_CREATED)),
        rule=step18,
        **derived,
    )
    compromise = chain(
        ("suspend", ENVELOPE_CREATED - 1),
        ("rotate", ENVELOPE_CREATED + 1),
        ("reinstate", ENVELOPE_CREATED + 2),
    )
    op.add(
        "envelope dated during a suspension, signed by the key replaced while suspended",
        "NotCertified",
        env1,
        extra=compromise,
        rule="§6.5: a key replaced while its member is suspended retires at the suspension",
        **derived,
    )
    op.ok(
        "envelope dated before a suspension, signed by the key replaced while suspended",
        env1,
        extra=chain(
            ("suspend", ENVELOPE_CREATED + 1),
            ("rotate", ENVELOPE_CREATED + 2),
            ("reinstate", ENVELOPE_CREATED + 3),
        ),
        rule="§6.5: a key replaced while its member is suspended retires at the suspension",
        **derived,
    )
    hub = "§7.6 step 18 (hub check): a replaced key signs what is dated before retired_at"
    for name, entries, error in [
        ("envelope signed by a key replaced one second after its creation (hub check)",
         chain(("rotate", ENVELOPE_CREATED + 1)), None),
        ("envelope signed by a key replaced at its creation time (hub check)",
         chain(("rotate", ENVELOPE_CREATED)), "NotCertified"),
    ]:  # fmt: skip
        state = verify_log(g, [*net.entries, *entries])

        def check(state: DirectoryState = state) -> None:
            env = parse_envelope(env1)
            verify_envelope(env, state, NOW)
            check_recipients_active(env, state, NOW)

        record = {"envelope": h(env1), "now": NOW, "log_entries": 6,
                  "extra_entries": [h(e) for e in entries], **derived}  # fmt: skip
        if error is None:
            accepts.add(name, "envelope_hub_check", check, rule=hub, **record)
        else:
            cases.add(name, "envelope_hub_check", error, check, rule=hub, **record)
    # Receipts of FR-PNF by its stolen key, against key_update.json's entries 1-10.
    b = build_branch()
    state = b.net.directory
    old = member(build_network(), "FR-PNF").identity
    extra = [h(e) for e in b.entries]
    for name, time in [
        ("receipt by a key replaced while suspended, dated at the suspension", T_FR_SUSPEND),
        ("receipt by a key replaced while suspended, dated between suspension and replacement",
         T_FR_REQUEST),
    ]:  # fmt: skip
        data = _receipt(b.net, old, time)
        cases.add(
            name, "receipt", "BadSignature", partial(DeliveryReceipt.decode, data, state),
            rule="§6.5, §9.1: a key replaced while suspended retires at the suspension",
            receipt=h(data), log_entries=6, extra_entries=extra,
        )  # fmt: skip
