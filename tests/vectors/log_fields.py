"""Refusals of a log entry's fields: the action's (§6.3), the certificate's (§6.3) and the
entry's own and their order (§6.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from protocol import canonical
from protocol.devnet import DevNetwork
from protocol.directory import DirectoryState
from protocol.genesis import Genesis
from protocol.keys import SigningKey
from protocol.membership import (
    Action,
    LogEntry,
    make_action,
)
from protocol.signed import SignedObject
from tests.vectors.logs import (
    T_CASE,
    action_payload,
    next_entry,
    raw_entry,
    rotated,
    signed,
)
from tests.vectors.vectorlib import (
    Json,
    b64,
    member,
    rng_for,
)


@dataclass(frozen=True, slots=True)
class LogCtx:
    """What the builders of log refusals share."""

    add: Any  # add(name, error, base, extra, *, rule, trusted=None)
    ok: Any  # ok(name, base, extra, *, rule)
    net: DevNetwork
    states: list[DirectoryState]  # states[n]: the directory of the first n entries
    decoded: list[LogEntry]
    after6: Any  # after6(action, time=T_CASE): the entry that sequences it after entry 6

    @property
    def g(self) -> Genesis:
        return self.net.genesis

    @property
    def admins(self) -> list[SigningKey]:
        return self.net.admins[: self.net.genesis.threshold]


def action_fields(x: LogCtx) -> None:
    add, g, admins, after6 = x.add, x.g, x.admins, x.after6
    on6, fr = x.states[6], member(x.net, "FR-PNF")
    fr_state = on6.members[fr.authority]
    prev = b64(fr_state.last_action)
    cert = fr_state.certificate.to_json()
    rules = "§6.3: the per-action rules"
    for name, raw_payload in [
        ("admit without a certificate", action_payload(g, "admit", "PT-MP")),
        (
            "suspend that carries a certificate",
            action_payload(g, "suspend", "FR-PNF", prev=prev, reason="x", certificate=cert),
        ),
        ("update-keys without prev", action_payload(g, "update-keys", "FR-PNF", certificate=cert)),
        ("admit with prev", action_payload(g, "admit", "FR-PNF", prev=prev, certificate=cert)),
        ("suspend without a reason", action_payload(g, "suspend", "FR-PNF", prev=prev)),
        ("revoke without a reason", action_payload(g, "revoke", "FR-PNF", prev=prev)),
        ("reinstate without a reason", action_payload(g, "reinstate", "FR-PNF", prev=prev)),
        (
            "update-keys without a certificate",
            action_payload(g, "update-keys", "FR-PNF", prev=prev),
        ),
        (
            "admit whose certificate names no application",
            action_payload(
                g, "admit", "PT-MP", certificate={**cert, "country": "PT", "application": None}
            ),
        ),
    ]:
        payload = {k: v for k, v in raw_payload.items() if v is not None}
        if isinstance(payload.get("certificate"), dict):
            payload["certificate"] = {
                k: v for k, v in payload["certificate"].items() if v is not None
            }
        add(name, "MalformedError", 6, after6(signed(payload, admins)), rule=rules)
    fields = "§6.3: action fields, in read order"
    base = action_payload(g, "suspend", "FR-PNF", prev=prev, reason="Audit")
    for name, error, payload in [
        ("action of an unknown kind", "MalformedError", {**base, "action": "expel"}),
        ("action for another network", "MalformedError", {**base, "network": b64(bytes(32))}),
        ("action version 2", "UnsupportedVersion", {**base, "v": 2}),
        ("action of another type", "MalformedError", {**base, "type": "action"}),
        (
            "action naming an invalid authority",
            "InvalidIdentifier",
            {**base, "authority": "FR-pnf"},
        ),
        (
            "action reason with a carriage return",
            "MalformedError",
            {**base, "reason": "Audit\rnow"},
        ),
        ("action with an unknown field", "UnknownField", {**base, "urgent": True}),
        ("action whose prev is 31 bytes", "MalformedError", {**base, "prev": b64(bytes(31))}),
        ("action whose issued time is a string", "MalformedError", {**base, "issued": "now"}),
        (
            "action with an unknown field and a reason with a control character",
            "MalformedError",
            {**base, "urgent": True, "reason": "Audit\x07"},
        ),
    ]:
        add(name, error, 6, after6(signed(payload, admins)), rule=fields)
    # The payload cap comes before any field is read.
    oversized = {**base, "pad": "x" * 16_400}
    add(
        "action payload of more than 16,384 bytes",
        "SizeLimitExceeded",
        6,
        after6(signed(oversized, admins)),
        rule="§6.3: the action payload cap (16,384 bytes)",
    )


def certificates(x: LogCtx) -> None:
    add, ok, g, admins, after6 = x.add, x.ok, x.g, x.admins, x.after6
    on6, fr = x.states[6], member(x.net, "FR-PNF")
    fr_state = on6.members[fr.authority]
    base_cert: Json = rotated(
        fr_state.certificate, serial=rng_for("log/cert")(16).hex(), at=T_CASE
    ).to_json()
    prev = b64(fr_state.last_action)

    def update(cert: Json | str) -> list[bytes]:
        entries: list[bytes] = after6(
            signed(action_payload(g, "update-keys", "FR-PNF", prev=prev, certificate=cert), admins)
        )
        return entries

    rule = "§6.3: certificate fields, in read order"
    ident = base_cert["identity_key"]
    for name, error, changes in [
        (
            "certificate serial in upper-case hex",
            "MalformedError",
            {"serial": base_cert["serial"].upper()},
        ),
        ("certificate name with a line feed", "MalformedError", {"name": "Parquet\nnational"}),
        ("certificate country other than the authority's", "MalformedError", {"country": "DE"}),
        (
            "certificate kinds not sorted",
            "MalformedError",
            {"kinds": ["mla-central", "anti-corruption"]},
        ),
        ("certificate of an unknown kind", "MalformedError", {"kinds": ["police"]}),
        ("certificate language in upper case", "MalformedError", {"languages": ["EN"]}),
        (
            "certificate endpoint with a query",
            "MalformedError",
            {"endpoint": "https://pnf.example.fr/?a=1"},
        ),
        (
            "certificate identity key of 31 bytes",
            "MalformedError",
            {"identity_key": b64(bytes(31))},
        ),
        (
            "certificate key-agreement key of 1,215 bytes",
            "MalformedError",
            {"ka_key": b64(bytes(1215))},
        ),
        (
            "certificate whose not_after equals not_before",
            "MalformedError",
            {"not_after": base_cert["not_before"]},
        ),
        (
            "certificate whose identity and transport keys are equal",
            "MalformedError",
            {"transport_key": ident},
        ),
        ("certificate with an unknown field", "UnknownField", {"level": 1}),
        (
            "certificate application digest of 31 bytes",
            "MalformedError",
            {"application": b64(bytes(31))},
        ),
        ("certificate that is not an object", "MalformedError", None),
    ]:
        cert: Any = "certificate" if changes is None else {**base_cert, **changes}
        add(name, error, 6, update(cert), rule=rule)
    ok(
        "update-keys certificate with an endpoint",
        6,
        update({**base_cert, "endpoint": "https://pnf.example.fr:8443"}),
        rule=rule,
    )


def entry_fields(x: LogCtx) -> None:
    add, g, decoded, admins, after6 = x.add, x.g, x.decoded, x.admins, x.after6
    on6, fr = x.states[6], member(x.net, "FR-PNF")
    fr_state = on6.members[fr.authority]
    action = make_action(
        genesis=g,
        action=Action.SUSPEND,
        authority=fr.authority,
        prev=fr_state.last_action,
        issued=T_CASE,
        reason="Audit",
        signers=admins,
    ).signed
    container = orjson.loads(action.encode())
    rule = "§6.4: log entry fields, in read order"
    for name, error, data in [
        (
            "log entry for another network",
            "MalformedError",
            raw_entry(on6, container, network=b64(bytes(32))),
        ),
        ("log entry version 2", "UnsupportedVersion", raw_entry(on6, container, v=2)),
        ("log entry of another type", "MalformedError", raw_entry(on6, container, type="entry")),
        ("log entry with an unknown field", "UnknownField", raw_entry(on6, container, note="x")),
        ("log entry with seq 0", "MalformedError", raw_entry(on6, container, seq=0)),
        (
            "log entry whose action is a string",
            "MalformedError",
            raw_entry(on6, canonical.b64e(action.encode())),
        ),
        (
            "log entry whose action container has an unknown field",
            "UnknownField",
            raw_entry(on6, {**container, "note": "x"}),
        ),
        (
            "log entry whose action names an admin twice",
            "MalformedError",
            raw_entry(on6, {**container, "sigs": [container["sigs"][0]] * 2}),
        ),
        (
            "log entry whose action kid is not a key id",
            "InvalidIdentifier",
            raw_entry(on6, {**container, "sigs": [{**container["sigs"][0], "kid": "admin-1"}]}),
        ),
    ]:
        add(name, error, 6, [data], rule=rule)
    text = next_entry(on6, action)
    add(
        "log entry that is not canonical (leading space)",
        "NonCanonical",
        0,
        [b" " + decoded[0].raw],
        rule="§2.2: the one canonical form",
    )
    add(
        "log entry with a repeated key",
        "DuplicateKey",
        6,
        [text.replace(b'"seq":', b'"seq":7,"seq":', 1)],
        rule="§2.3: a repeated key",
    )
    add(
        "log entry above 24,576 bytes",
        "SizeLimitExceeded",
        6,
        [text + b" " * (24 * 1024 + 1 - len(text))],
        rule="§2.7: size caps (log entry 24,576)",
    )
    unsigned_payload = canonical.b64d(container["payload"], what="vector")
    add(
        "log entry whose action payload is not canonical",
        "NonCanonical",
        6,
        after6(SignedObject(unsigned_payload.replace(b'"v":1', b'"v": 1'), action.signatures)),
        rule="§5.4: the payload is itself canonical JSON",
    )
    # Two defects: the embedded container is read before the entry's unknown-field check,
    # the entry's unknown-field check comes before the action payload cap (§6.4).
    order = "§6.4: the embedded action's decoding order"
    add(
        "log entry with an unknown field and unsorted action signatures",
        "MalformedError",
        6,
        [raw_entry(on6, {**container, "sigs": container["sigs"][::-1]}, note="x")],
        rule=order,
    )
    big_action = signed(
        action_payload(
            g, "suspend", "FR-PNF", prev=b64(fr_state.last_action), reason="Audit", pad="x" * 16_400
        ),
        admins,
    )
    big_container = orjson.loads(big_action.encode())
    add(
        "log entry with an unknown field and an action payload above 16,384 bytes",
        "UnknownField",
        6,
        [raw_entry(on6, big_container, note="x")],
        rule=order,
    )
    add(
        "log entry with a wrong seq and an action payload above 16,384 bytes",
        "SizeLimitExceeded",
        6,
        [raw_entry(on6, big_container, seq=9)],
        rule=order,
    )
