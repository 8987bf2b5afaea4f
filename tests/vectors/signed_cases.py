"""Refusals and acceptances of applications, checkpoints and prekeys (§6.2, §6.4, §6.6)."""

from __future__ import annotations

from functools import partial
from typing import Any

from protocol import canonical, labels
from protocol.devnet import DevNetwork
from protocol.ids import AuthorityId
from protocol.keys import VerifyKey
from protocol.membership import Application, Checkpoint, make_checkpoint
from protocol.prekeys import SignedPrekey
from protocol.signed import SignedObject
from tests.vectors.refusals import ORDER_8, container_cases
from tests.vectors.vectorlib import (
    NOW,
    Accepts,
    Cases,
    Json,
    b64,
    h,
    member,
    padded,
    payload_of,
    resign,
)


def application_cases(cases: Cases, net: DevNetwork) -> None:
    m = member(net, "FR-PNF")
    signed = m.application.signed
    base = payload_of(signed)
    both = [m.identity, m.transport]
    container_cases(
        cases,
        "application",
        lambda d: Application.decode(d, net.genesis),
        valid=signed,
        cap=16 * 1024,
        label=labels.APPLICATION,
        signers=both,
        field="application",
    )

    def add(name: str, error: str, data: bytes, rule: str) -> None:
        cases.add(
            name,
            "application",
            error,
            lambda: Application.decode(data, net.genesis),
            rule=rule,
            **padded("application", data),
        )

    def edit(**changes: Any) -> bytes:
        return resign({**base, **changes}, labels.APPLICATION, both)

    sigs = "§6.2: exactly the identity and transport signatures"
    only_identity = SignedObject(
        signed.payload, tuple(s for s in signed.signatures if s.key_id == m.identity.key_id)
    )
    add(
        "application without the transport key's signature",
        "BadSignature",
        only_identity.encode(),
        sigs,
    )
    altered = canonical.encode({**base, "name": "Parquet national financier (PNF)"})
    add(
        "application payload altered after signing",
        "BadSignature",
        SignedObject(altered, signed.signatures).encode(),
        sigs,
    )
    add(
        "application with a third signature",
        "BadSignature",
        resign(base, labels.APPLICATION, [*both, member(net, "DE-BKA").identity]),
        sigs,
    )
    add(
        "application signed under the receipt label",
        "BadSignature",
        resign(base, labels.RECEIPT, both),
        sigs,
    )
    fields = "§6.2: application fields, in read order"
    keys = "§2.5, §3.3: a key of the wrong length is malformed, a bad key invalid-key"
    app_cases: list[tuple[str, str, Json, str]] = [
        (
            "application whose country does not match the authority",
            "MalformedError",
            {"country": "DE"},
            fields,
        ),
        ("application for another network", "MalformedError", {"network": b64(bytes(32))}, fields),
        (
            "application whose name contains a newline",
            "MalformedError",
            {"name": "Parquet\nnational"},
            fields,
        ),
        (
            "application with an invalid authority id",
            "InvalidIdentifier",
            {"authority": "FR-pnf"},
            fields,
        ),
        (
            "application kinds not sorted",
            "MalformedError",
            {"kinds": ["mla-central", "anti-corruption"]},
            fields,
        ),
        ("application of an unknown kind", "MalformedError", {"kinds": ["police"]}, fields),
        (
            "application with 17 languages",
            "MalformedError",
            {"languages": [f"a{c}" for c in "abcdefghijklmnopq"]},
            fields,
        ),
        ("application language of 3 letters", "MalformedError", {"languages": ["eng"]}, fields),
        (
            "application contact with a right-to-left override",
            "MalformedError",
            {"contact": "duty officer \u202e"},
            fields,
        ),
        (
            "application endpoint with a fragment",
            "MalformedError",
            {"endpoint": "https://pnf.example#x"},
            "§6.1: the URL rule",
        ),
        (
            "application identity key of small order",
            "InvalidKey",
            {"identity_key": b64(ORDER_8)},
            keys,
        ),
        (
            "application transport key of 33 bytes",
            "MalformedError",
            {"transport_key": b64(bytes(33))},
            keys,
        ),
        (
            "application key-agreement key with a low-order X25519 part",
            "InvalidKey",
            {"ka_key": b64(canonical.b64d(base["ka_key"], what="v")[:1184] + bytes(32))},
            keys,
        ),
        (
            "application key-agreement key of 1,215 bytes",
            "MalformedError",
            {"ka_key": b64(bytes(1215))},
            keys,
        ),
        (
            "application whose identity and transport keys are equal",
            "MalformedError",
            {"transport_key": base["identity_key"]},
            "§6.2: the checks after all fields",
        ),
        ("application created as a string", "MalformedError", {"created": "now"}, fields),
        (
            "application with a small-order identity key and an unknown field",
            "InvalidKey",
            {"identity_key": b64(ORDER_8), "zz": 1},
            "§1.6, §6.2: fields before unknown fields",
        ),
    ]
    for name, error, changes, rule in app_cases:
        add(name, error, edit(**changes), rule)


def checkpoint_cases(cases: Cases, net: DevNetwork) -> None:
    g = net.genesis
    state = net.directory
    cp = make_checkpoint(genesis=g, hub=net.hub, seq=state.seq, head=state.head, time=NOW)
    base = payload_of(cp.signed)
    container_cases(
        cases,
        "checkpoint",
        lambda d: Checkpoint.decode(d, g),
        valid=cp.signed,
        cap=4096,
        label=labels.CHECKPOINT,
        signers=[net.hub],
        field="checkpoint",
    )

    def add(name: str, error: str, data: bytes, rule: str) -> None:
        cases.add(
            name,
            "checkpoint",
            error,
            lambda: Checkpoint.decode(data, g),
            rule=rule,
            **padded("checkpoint", data),
        )

    sigs = "§6.4: exactly the hub's signature"
    add(
        "checkpoint signed by an admin instead of the hub",
        "BadSignature",
        resign(base, labels.CHECKPOINT, [net.admins[0]]),
        sigs,
    )
    add(
        "checkpoint with the hub's and an admin's signature",
        "BadSignature",
        resign(base, labels.CHECKPOINT, [net.hub, net.admins[0]]),
        sigs,
    )
    add(
        "checkpoint signed under the evidence label",
        "BadSignature",
        resign(base, labels.EVIDENCE, [net.hub]),
        sigs,
    )
    add(
        "checkpoint without any signature",
        "BadSignature",
        SignedObject(cp.signed.payload, ()).encode(),
        sigs,
    )
    add(
        "checkpoint version 2",
        "UnsupportedVersion",
        resign({**base, "v": 2}, labels.CHECKPOINT, [net.hub]),
        "§6.4: checkpoint fields",
    )
    add(
        "checkpoint head of 31 bytes",
        "MalformedError",
        resign({**base, "head": b64(bytes(31))}, labels.CHECKPOINT, [net.hub]),
        "§6.4: checkpoint fields",
    )


def prekey_cases(cases: Cases, accepts: Accepts, net: DevNetwork) -> None:
    g = net.genesis
    fr, de = member(net, "FR-PNF"), member(net, "DE-BKA")
    base = payload_of(fr.signed_prekey.signed)

    def decode(
        data: bytes,
        identity: VerifyKey = fr.identity.verify_key,
        authority: str = "FR-PNF",
        now: int | None = None,
    ) -> SignedPrekey:
        pk = SignedPrekey.decode(data, g, identity, authority=AuthorityId.parse(authority))
        if now is not None:
            pk.check_valid_at(now)
        return pk

    container_cases(
        cases,
        "prekey",
        decode,
        valid=fr.signed_prekey.signed,
        cap=4096,
        label=labels.PREKEY,
        signers=[fr.identity],
        field="prekey",
        identity_key=h(bytes(fr.identity.verify_key)),
        authority="FR-PNF",
    )

    def add(
        name: str,
        error: str,
        data: bytes,
        rule: str,
        *,
        identity: VerifyKey | None = None,
        authority: str = "FR-PNF",
        now: int | None = None,
    ) -> None:
        ident = identity or fr.identity.verify_key
        more: Json = {} if now is None else {"now": now}
        cases.add(
            name,
            "prekey",
            error,
            lambda: decode(data, ident, authority, now),
            rule=rule,
            **padded("prekey", data),
            identity_key=h(bytes(ident)),
            authority=authority,
            **more,
        )

    def edit(**changes: Any) -> bytes:
        return resign({**base, **changes}, labels.PREKEY, [fr.identity])

    sigs = "§6.6: exactly one signature, by the identity key the verifier supplies"
    add(
        "prekey verified with another member's identity key",
        "BadSignature",
        fr.signed_prekey.signed.encode(),
        sigs,
        identity=de.identity.verify_key,
    )
    add(
        "prekey signed by the transport key",
        "BadSignature",
        resign(base, labels.PREKEY, [fr.transport]),
        sigs,
    )
    add(
        "prekey without any signature",
        "BadSignature",
        SignedObject(fr.signed_prekey.signed.payload, ()).encode(),
        sigs,
    )
    add(
        "prekey with two signatures",
        "BadSignature",
        resign(base, labels.PREKEY, [fr.identity, fr.transport]),
        sigs,
    )
    window = "§6.6: 0 < not_after - not_before ≤ 90 days"
    add(
        "prekey valid for more than 90 days",
        "MalformedError",
        edit(not_after=base["not_before"] + 90 * 86400 + 1),
        window,
    )
    add(
        "prekey whose not_after equals its not_before",
        "MalformedError",
        edit(not_after=base["not_before"]),
        window,
    )
    add("prekey with an unknown field", "UnknownField", edit(note="x"), "§6.6: no other field")
    authority = "§6.6: authority read in order; it must be the one the verifier asks for"
    add(
        "prekey of another authority than the one asked for",
        "MalformedError",
        fr.signed_prekey.signed.encode(),
        authority,
        identity=fr.identity.verify_key,
        authority="DE-BKA",
    )
    add(
        "prekey whose authority is not an authority id",
        "InvalidIdentifier",
        edit(authority="fr-pnf"),
        authority,
    )
    add(
        "prekey key with a low-order X25519 part",
        "InvalidKey",
        edit(key=b64(canonical.b64d(base["key"], what="v")[:1184] + bytes(32))),
        "§3.3: hybrid KEM key validation",
    )
    add(
        "prekey key of 1,215 bytes",
        "MalformedError",
        edit(key=b64(bytes(1215))),
        "§2.5: a key of the wrong length is malformed",
    )
    valid_at = "§6.6: [caller] check_valid_at(now): not_before ≤ now < not_after"
    add(
        "prekey used before its validity",
        "NotYetValid",
        fr.signed_prekey.signed.encode(),
        valid_at,
        now=base["not_before"] - 1,
    )
    add(
        "prekey used at its not_after",
        "ExpiredError",
        fr.signed_prekey.signed.encode(),
        valid_at,
        now=base["not_after"],
    )
    order = "§1.6, §6.6: authority (read 4th) before key, validity window and signature"
    add(
        "prekey of another authority with a low-order key",
        "MalformedError",
        edit(authority="DE-BKA", key=b64(canonical.b64d(base["key"], what="v")[:1184] + bytes(32))),
        order,
    )
    add(
        "prekey of another authority signed by that authority",
        "MalformedError",
        resign({**base, "authority": "DE-BKA"}, labels.PREKEY, [de.identity]),
        order,
    )
    add(
        "prekey valid for more than 90 days and badly signed",
        "MalformedError",
        resign(
            {**base, "not_after": base["not_before"] + 90 * 86400 + 1},
            labels.PREKEY,
            [fr.transport],
        ),
        "§1.6, §6.6: the window before the signature",
    )
    ninety = edit(not_after=base["not_before"] + 90 * 86400)
    accepts.add(
        "prekey valid for exactly 90 days",
        "prekey",
        lambda: decode(ninety),
        rule=window,
        prekey=h(ninety),
        identity_key=h(bytes(fr.identity.verify_key)),
        authority="FR-PNF",
    )
    for name, now in [
        ("prekey used at its not_before", base["not_before"]),
        ("prekey used 1 s before its not_after", base["not_after"] - 1),
    ]:
        data = fr.signed_prekey.signed.encode()
        accepts.add(
            name,
            "prekey",
            partial(decode, data, now=now),
            rule=valid_at,
            **padded("prekey", data),
            identity_key=h(bytes(fr.identity.verify_key)),
            authority="FR-PNF",
            now=now,
        )
