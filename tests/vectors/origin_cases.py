"""Proofs of origin (§8.5): refusals and acceptances of verify_signed_content."""

from __future__ import annotations

from typing import Any

import orjson

from protocol import crypto, labels
from protocol.devnet import DevNetwork
from protocol.directory import verify_log
from protocol.envelope import (
    parse_envelope,
)
from protocol.keys import SigningKey
from protocol.membership import Action, make_action
from protocol.messages import MessageContent, SignedContent
from protocol.origin import verify_signed_content
from tests.vectors.logs import Continuation, extended_log, next_entry, rotated
from tests.vectors.vectorlib import (
    ENVELOPE_CREATED,
    NOW,
    Accepts,
    Cases,
    Json,
    b64,
    h,
    member,
    message_content,
    rng_for,
)

# --- proofs of origin (verify_signed_content, §8.5) ----------------------------------------


def signed_content_cases(
    cases: Cases, accepts: Accepts, net: DevNetwork, cont: Continuation, env1: bytes
) -> None:
    g = net.genesis
    log = extended_log(net, cont)
    env = parse_envelope(env1)
    fr = member(net, "FR-PNF")
    content = message_content()
    data = content.encode()
    header = env.header.raw
    base: Json = orjson.loads(header)

    def proof(hdr: bytes, body: bytes, signer: SigningKey = fr.identity) -> SignedContent:
        return SignedContent(hdr, body, signer.sign(labels.CONTENT, crypto.sha256(hdr) + body))

    def record(p: SignedContent, log_entries: int, extra: list[bytes]) -> Json:
        out: Json = {
            "header": h(p.header),
            "content": h(p.content),
            "signature": h(p.signature),
            "log_entries": log_entries,
        }
        if extra:
            out["extra_entries"] = [h(e) for e in extra]
        return out

    def add(
        name: str,
        error: str,
        p: SignedContent,
        rule: str,
        *,
        log_entries: int = 6,
        extra: list[bytes] | None = None,
    ) -> None:
        state = verify_log(g, [*log[:log_entries], *(extra or [])])
        cases.add(
            name,
            "signed_content",
            error,
            lambda: verify_signed_content(p, state),
            rule=rule,
            **record(p, log_entries, extra or []),
        )

    def ok(
        name: str,
        p: SignedContent,
        rule: str,
        *,
        log_entries: int = 6,
        extra: list[bytes] | None = None,
    ) -> None:
        state = verify_log(g, [*log[:log_entries], *(extra or [])])
        accepts.add(
            name,
            "signed_content",
            lambda: verify_signed_content(p, state),
            rule=rule,
            **record(p, log_entries, extra or []),
        )

    def enc(obj: Json) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

    good = proof(header, data)
    blobs = "§8.4, §8.5 step 4: the attachments' blob ids are the header's blobs"
    ok("envelope_1's proof of origin", good, "§8.5: verifying a proof")
    no_att = MessageContent(**{**_fields(content), "attachments": ()}).encode()
    add(
        "proof whose content has an attachment and whose header has no blobs",
        "MalformedError",
        proof(enc({k: v for k, v in base.items() if k != "blobs"}), data),
        blobs,
    )
    add(
        "proof whose header has blobs and whose content has no attachment",
        "MalformedError",
        proof(header, no_att),
        blobs,
    )
    add(
        "proof whose header names another blob id",
        "MalformedError",
        proof(enc({**base, "blobs": ["0" * 32]}), data),
        blobs,
    )
    twice = MessageContent(**{**_fields(content), "attachments": content.attachments * 2}).encode()
    add(
        "proof whose two attachments name the same blob, listed once in the header",
        "MalformedError",
        proof(header, twice),
        blobs,
    )
    sig = "§8.5 verifying a proof, step 3: the signature"
    add(
        "proof whose content was altered",
        "BadSignature",
        SignedContent(header, data.replace(b"Bank", b"Bonk"), good.signature),
        sig,
    )
    add(
        "proof whose header was altered",
        "BadSignature",
        SignedContent(header.replace(b'"seq":1', b'"seq":2'), data, good.signature),
        sig,
    )
    add(
        "proof signed by another member's identity key",
        "BadSignature",
        proof(header, data, member(net, "DE-BKA").identity),
        sig,
    )
    add(
        "proof for another network",
        "MalformedError",
        proof(enc({**base, "network": b64(bytes(32))}), data),
        "§8.5 verifying a proof, step 1: the header names this network",
    )
    add(
        "proof checked against a directory without its sender",
        "UnknownMember",
        good,
        "§8.5 verifying a proof, step 2: the sender is a member",
        log_entries=0,
    )
    add(
        "proof whose sender key was never certified",
        "BadSignature",
        proof(enc({**base, "sender_key": str(fr.transport.key_id)}), data, fr.transport),
        "§8.5 verifying a proof, step 2: an identity key ever certified for the sender",
    )
    retired = "§8.5 verifying a proof, step 2, §9.1: retired_at"
    add(
        "proof dated after its signing key was replaced",
        "BadSignature",
        good,
        retired,
        log_entries=7,
    )
    on6 = verify_log(g, log[:6])
    fr_state = on6.members[fr.authority]
    later = ENVELOPE_CREATED + 1
    cert = rotated(
        fr_state.certificate,
        serial=rng_for("proof/rotate")(16).hex(),
        at=later,
        identity=SigningKey(rng_for("proof/identity")(32)).verify_key,
    )
    rotate = make_action(
        genesis=g,
        action=Action.UPDATE_KEYS,
        authority=fr.authority,
        prev=fr_state.last_action,
        issued=later,
        certificate=cert,
        signers=net.admins[:2],
    )
    ok(
        "proof dated one second before its signing key was replaced",
        good,
        retired,
        extra=[next_entry(on6, rotate.signed, later)],
    )
    ok(
        "proof of a sender revoked since (status does not matter)",
        good,
        "§8.5: the sender's current status does not matter",
        extra=[
            next_entry(
                on6,
                make_action(
                    genesis=g,
                    action=Action.REVOKE,
                    authority=fr.authority,
                    prev=fr_state.last_action,
                    issued=NOW,
                    reason="Revoked",
                    signers=net.admins[:2],
                ).signed,
                NOW,
            )
        ],
    )
    add(
        "proof whose header is not canonical",
        "NonCanonical",
        proof(header.replace(b'"v":1', b'"v": 1'), data),
        "§8.5 verifying a proof, step 1: the header decodes (§7.2)",
    )
    add(
        "proof whose content is version 2",
        "UnsupportedVersion",
        proof(header, data.replace(b'"v":1', b'"v":2')),
        "§8.5 verifying a proof, step 4: the content decodes (§8)",
    )
    add(
        "proof with an altered content and no blobs in its header",
        "BadSignature",
        SignedContent(enc({k: v for k, v in base.items() if k != "blobs"}), data, good.signature),
        "§1.6, §8.5: the signature (step 3) before the blobs (step 4)",
    )


def _fields(content: MessageContent) -> dict[str, Any]:
    return {f: getattr(content, f) for f in content.__dataclass_fields__}
