"""Refusals and acceptances of delivery receipts and hub evidence (§9) and of signed
requests (§10)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from protocol import labels
from protocol.devnet import DevNetwork
from protocol.directory import verify_log
from protocol.keys import SigningKey, VerifyKey
from protocol.receipts import DeliveryReceipt, Evidence, make_receipt
from protocol.requestauth import parse_request_auth, sign_request, verify_request
from tests.vectors.records import REQUESTS, evidence_list, receipt_params
from tests.vectors.refusals import container_cases
from tests.vectors.vectorlib import (
    NOW,
    Accepts,
    Cases,
    Json,
    h,
    member,
    padded,
    payload_of,
    resign,
    rng_for,
)


def receipt_cases(cases: Cases, accepts: Accepts, net: DevNetwork) -> None:
    g = net.genesis
    p = receipt_params()
    de, fr = member(net, "DE-BKA"), member(net, "FR-PNF")
    good_signed = make_receipt(genesis=g, identity=de.identity, **p)
    good = good_signed.encode()
    base = payload_of(good_signed)
    full = net.directory
    container_cases(
        cases,
        "receipt",
        lambda d: DeliveryReceipt.decode(d, full),
        valid=good_signed,
        cap=4096,
        label=labels.RECEIPT,
        signers=[de.identity],
        field="receipt",
        log_entries=6,
    )

    def add(name: str, error: str, data: bytes, log_entries: int, rule: str) -> None:
        state = verify_log(g, net.entries[:log_entries])
        cases.add(
            name,
            "receipt",
            error,
            lambda: DeliveryReceipt.decode(data, state),
            rule=rule,
            **padded("receipt", data),
            log_entries=log_entries,
        )

    key = "§9.1: signed by an identity key ever certified for the recipient"
    add(
        "receipt naming DE-BKA signed by FR-PNF's identity key",
        "BadSignature",
        resign({**base, "key": str(fr.identity.key_id)}, labels.RECEIPT, [fr.identity]),
        6,
        key,
    )
    add(
        "receipt checked against a directory where the recipient is not yet admitted",
        "UnknownMember",
        good,
        1,
        "§9.1: the recipient is a member (any status)",
    )
    add(
        "receipt signed by DE-BKA's transport key",
        "BadSignature",
        resign({**base, "key": str(de.transport.key_id)}, labels.RECEIPT, [de.transport]),
        6,
        key,
    )
    add(
        "receipt with two signatures",
        "BadSignature",
        resign(base, labels.RECEIPT, [de.identity, fr.identity]),
        6,
        key,
    )
    add(
        "receipt signed under the evidence label",
        "BadSignature",
        resign(base, labels.RECEIPT.replace(b"receipt", b"evidence"), [de.identity]),
        6,
        key,
    )
    add(
        "receipt whose key field is not a key id",
        "InvalidIdentifier",
        resign({**base, "key": "DE-BKA"}, labels.RECEIPT, [de.identity]),
        6,
        "§9.1: receipt fields, in read order",
    )
    add(
        "receipt whose sender is not an authority id",
        "InvalidIdentifier",
        resign({**base, "sender": "fr-pnf"}, labels.RECEIPT, [de.identity]),
        6,
        "§9.1: receipt fields, in read order",
    )
    add(
        "receipt for an unknown recipient and with a bad signature",
        "UnknownMember",
        resign({**base, "recipient": "PT-PJ"}, labels.RECEIPT, [fr.identity]),
        6,
        "§1.6, §9.1: the member lookup before the key and the signature",
    )
    state5 = verify_log(g, net.entries[:5])
    es = member(net, "ES-FCC")
    data = make_receipt(
        genesis=g, identity=es.identity, **{**p, "recipient": es.authority}
    ).encode()
    accepts.add(
        "receipt by a suspended recipient",
        "receipt",
        lambda: DeliveryReceipt.decode(data, state5),
        rule="§9.1: the recipient is a member (any status)",
        **padded("receipt", data),
        log_entries=5,
    )


#: Evidence ``reason`` values (§9.2): the shape of a slug, not the list of known slugs.
EVIDENCE_REASONS_BAD: Final = [
    ("upper-case letters", "Bad-Signature"),
    ("a leading hyphen", "-expired"),
    ("65 characters", "a" * 65),
    ("an underscore", "bad_signature"),
    ("an empty string", ""),
]


def evidence_cases(cases: Cases, accepts: Accepts, net: DevNetwork) -> None:
    g = net.genesis
    evs = evidence_list(net)
    accepted = payload_of(evs[0].signed)
    rejected = payload_of(evs[1].signed)
    container_cases(
        cases,
        "evidence",
        lambda d: Evidence.decode(d, g),
        valid=evs[1].signed,
        cap=64 * 1024,
        label=labels.EVIDENCE,
        signers=[net.hub],
        field="evidence",
    )

    def add(name: str, error: str, data: bytes, rule: str) -> None:
        cases.add(
            name,
            "evidence",
            error,
            lambda: Evidence.decode(data, g),
            rule=rule,
            **padded("evidence", data),
        )

    def hub(payload: Json, signers: list[SigningKey] | None = None) -> bytes:
        return resign(payload, labels.EVIDENCE, signers or [net.hub])

    add(
        "evidence signed by an admin instead of the hub",
        "BadSignature",
        hub(accepted, [net.admins[0]]),
        "§9.2: exactly the hub's signature",
    )
    add(
        "evidence with the hub's and an admin's signature",
        "BadSignature",
        hub(accepted, [net.hub, net.admins[0]]),
        "§9.2: exactly the hub's signature",
    )
    reason = "§9.2: reason present iff rejected or non-delivery"
    no_reason = {k: v for k, v in rejected.items() if k != "reason"}
    add("rejected evidence without a reason", "MalformedError", hub(no_reason), reason)
    add(
        "accepted evidence with a reason",
        "MalformedError",
        hub({**accepted, "reason": "x"}),
        reason,
    )
    add(
        "delivered evidence with a reason",
        "MalformedError",
        hub({**accepted, "kind": "delivered", "reason": "expired"}),
        reason,
    )
    fields = "§9.2: evidence fields, in read order"
    add(
        "evidence with recipients not sorted",
        "MalformedError",
        hub({**accepted, "recipients": ["ES-FCC", "DE-BKA"]}),
        fields,
    )
    add("evidence of an unknown kind", "MalformedError", hub({**accepted, "kind": "read"}), fields)
    add(
        "evidence without recipients", "MalformedError", hub({**accepted, "recipients": []}), fields
    )
    add(
        "evidence naming a recipient twice",
        "MalformedError",
        hub({**accepted, "recipients": ["DE-BKA", "DE-BKA"]}),
        fields,
    )
    add(
        "evidence recipient of 20 characters",
        "MalformedError",
        hub({**accepted, "recipients": ["DE-" + "B" * 17]}),
        fields,
    )
    add(
        "evidence with 257 recipients",
        "MalformedError",
        hub({**accepted, "recipients": [f"BE-R{i:03d}" for i in range(257)]}),
        fields,
    )
    add(
        "evidence for a message id in upper-case hex",
        "InvalidIdentifier",
        hub({**accepted, "id": accepted["id"].upper()}),
        fields,
    )
    for what, value in EVIDENCE_REASONS_BAD:
        add(
            f"evidence reason with {what}",
            "MalformedError",
            hub({**rejected, "reason": value}),
            "§9.2: reason has the shape of a slug",
        )
    deferred = "§9.2: recipient ids are parsed after the signature check"
    add(
        "evidence recipient that is not an authority id",
        "InvalidIdentifier",
        hub({**accepted, "recipients": ["de-bka"]}),
        deferred,
    )
    add(
        "evidence recipient that is not an authority id, with a bad signature",
        "BadSignature",
        hub({**accepted, "recipients": ["de-bka"]}, [net.admins[0]]),
        "§1.6, " + deferred,
    )
    add(
        "evidence recipients not sorted, with a bad signature",
        "MalformedError",
        hub({**accepted, "recipients": ["ES-FCC", "DE-BKA"]}, [net.admins[0]]),
        "§1.6, §9.2: the recipients' shape is checked in read order, before the signature",
    )
    data = hub({**rejected, "reason": "no-such-slug-yet"})
    accepts.add(
        "rejected evidence whose reason is not a known slug",
        "evidence",
        lambda: Evidence.decode(data, g),
        rule="§9.2: reason is not checked against the known slugs (Open question 5)",
        **padded("evidence", data),
    )
    data = hub({**accepted, "recipients": [f"BE-R{i:03d}" for i in range(256)]})
    accepts.add(
        "evidence with 256 recipients",
        "evidence",
        lambda: Evidence.decode(data, g),
        rule=fields,
        **padded("evidence", data),
    )


def request_cases(cases: Cases, accepts: Accepts, net: DevNetwork) -> None:
    name, who, audience, method, target, body = REQUESTS[0]
    key = member(net, who).transport
    network = net.genesis.digest
    header = sign_request(
        key=key,
        network=network,
        audience=audience,
        method=method,
        target=target,
        body=body,
        created=NOW,
        rng=rng_for(f"request-auth/{name}"),
    )

    def inputs(kw: Json) -> tuple[Callable[[], None], Json]:
        p: Json = {
            "header": header,
            "public_key": bytes(key.verify_key),
            "network": network,
            "audience": audience,
            "method": method,
            "target": target,
            "body": body,
            "now": NOW,
            **kw,
        }

        def check() -> None:
            verify_request(
                parse_request_auth(p["header"]),
                key=VerifyKey(p["public_key"]),
                network=p["network"],
                audience=p["audience"],
                method=p["method"],
                target=p["target"],
                body=p["body"],
                now=p["now"],
            )

        return check, {k: h(v) if isinstance(v, bytes) else v for k, v in p.items()}

    def add(name: str, error: str, rule: str, **kw: Any) -> None:
        check, record = inputs(kw)
        cases.add(name, "request_auth", error, check, rule=rule, **record)

    def ok(name: str, rule: str, **kw: Any) -> None:
        check, record = inputs(kw)
        accepts.add(name, "request_auth", check, rule=rule, **record)

    base = "§10.2: the signature base (the verifier rebuilds it from the request it got)"
    add("request with a different body", "AuthError", base, body=body + b"\x00")
    add("request presented to a member instead of the hub", "AuthError", base, audience="DE-BKA")
    add("request with a different target", "AuthError", base, target=target + "?x=1")
    add("request with a different method", "AuthError", base, method="PUT")
    add("request for another network", "AuthError", base, network=bytes(32))
    shape = "§10.2, §10.3: method, target and audience patterns"
    add("request with a lower-case method", "AuthError", shape, method="post")
    add("request with a method of 8 letters", "AuthError", shape, method="POSTPOST")
    add("request target with a space", "AuthError", shape, target="/v1/a b")
    add("request target not starting with a slash", "AuthError", shape, target="v1/messages")
    add(
        "request for an audience that is not hub or an authority id",
        "AuthError",
        shape,
        audience="HUB",
    )
    add(
        "request verified with another member's transport key",
        "AuthError",
        "§10.3: key_id(key) = kid",
        public_key=bytes(member(net, "DE-BKA").transport.verify_key),
    )
    window = "§10.3: |now - created| ≤ 60"
    add("request 61 s after its timestamp", "StaleError", window, now=NOW + 61)
    add("request 61 s before its timestamp", "StaleError", window, now=NOW - 61)
    syntax = "§10.1: the Globe-Auth header, exactly"
    add(
        "request header without the version", "AuthError", syntax, header=header.removeprefix("v1;")
    )
    add(
        "request header with a nonce with stray bits",
        "AuthError",
        syntax,
        header=re.sub(";nonce=[^;]*;", ";nonce=" + "A" * 21 + "B;", header),
    )
    add(
        "request header with a leading zero in created",
        "AuthError",
        syntax,
        header=header.replace(f"created={NOW}", f"created=0{NOW}"),
    )
    add(
        "request header with a space after a semicolon",
        "AuthError",
        syntax,
        header=header.replace(";kid=", "; kid="),
    )
    add(
        "request header with fields in another order",
        "AuthError",
        syntax,
        header=re.sub(r"^v1;(kid=[^;]*);(created=[^;]*);", r"v1;\2;\1;", header),
    )
    add(
        "request header with an upper-case key id",
        "AuthError",
        syntax,
        header=header.replace("kid=ed25519:", "kid=ED25519:"),
    )
    add(
        "request header whose kid is a hybrid KEM key id",
        "AuthError",
        syntax,
        header=header.replace("kid=ed25519:", "kid=mlkem768x25519:"),
    )
    add(
        "request header with created of 17 digits",
        "AuthError",
        syntax,
        header=header.replace(f"created={NOW}", "created=10000000000000000"),
    )
    order = "§1.6, §10.3, D2: the time window before the key and the signature"
    add(
        "stale request verified with another member's key",
        "StaleError",
        order,
        now=NOW + 61,
        public_key=bytes(member(net, "DE-BKA").transport.verify_key),
    )
    add("stale request with a lower-case method", "StaleError", order, now=NOW - 61, method="post")
    add(
        "request with created of 16 digits (beyond 2^53)",
        "StaleError",
        window,
        header=header.replace(f"created={NOW}", "created=9999999999999999"),
    )
    ok("request exactly 60 s after its timestamp", window, now=NOW + 60)
    ok("request exactly 60 s before its timestamp", window, now=NOW - 60)
