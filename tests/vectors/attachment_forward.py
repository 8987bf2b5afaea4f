"""attachment.json (the chunked blob format, §8.4.2) and forward.json (proof of origin and
the consent chain, §8.5)."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Final

from protocol import crypto, labels
from protocol.attachments import AttachmentDecryptor, AttachmentEncryptor, encrypted_size
from protocol.devnet import DevNetwork
from protocol.envelope import (
    SealTo,
    content_signature,
    decode_header,
    parse_envelope,
    seal_envelope,
)
from protocol.ids import AuthorityId, MessageId
from protocol.messages import (
    Attachment,
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    SignedContent,
    Tlp,
    Urgency,
)
from protocol.origin import verify_forward
from tests.vectors.vectorlib import (
    ATTACHMENT_CHUNK,
    ATTACHMENT_SIZE,
    ENVELOPE_CREATED,
    ENVELOPE_EXPIRES,
    AttachmentInputs,
    Json,
    attachment_inputs,
    expect,
    h,
    member,
    rng_for,
)

# --- attachment.json -------------------------------------------------------------------


def encrypt_attachment(key: bytes, blob_id: str, plaintext: bytes, chunk_size: int) -> bytes:
    """The whole blob, through the streaming encryptor."""
    enc = AttachmentEncryptor(key, blob_id, chunk_size)
    return enc.header() + enc.update(plaintext) + enc.finalize()


def decrypt_attachment(key: bytes, blob_id: str, blob: bytes) -> bytes:
    """The whole plaintext, through the streaming decryptor."""
    dec = AttachmentDecryptor(key, blob_id)
    return dec.update(blob) + dec.finalize()


def _attachment_chunk(
    key: bytes, header: bytes, blob_id: str, i: int, pt: bytes, *, final: bool
) -> Json:
    """One chunk built from §8.4.2 alone (not through protocol.attachments)."""
    nonce = bytes(4) + i.to_bytes(8, "big")
    aad = crypto.labelled(
        labels.ATTACHMENT, header, blob_id.encode(), i.to_bytes(8, "big"), bytes([final])
    )
    return {
        "index": i,
        "final": final,
        "nonce": h(nonce),
        "aad": h(aad),
        "plaintext_size": len(pt),
        "ciphertext": h(crypto.aead_encrypt(key, nonce, pt, aad)),
    }


def _attachment_rule(name: str, error: str) -> str:
    if name == "empty-final-after-chunks":
        return "§8.4.2: one encoding per plaintext (no empty final chunk after others)"
    if error in ("MalformedError", "UnsupportedVersion", "UnsupportedSuite"):
        return "§8.4.2 reading, step 1: the header"
    if error == "Truncated":
        return "§8.4.2 reading, steps 1 and 3: a stream that ends early"
    return "§8.4.2 reading, steps 2 and 3: every chunk authenticates, the last as final"


def assemble(blob: bytes, parts: list[Json]) -> bytes:
    """An invalid case's bytes: ``blob[from:to]`` slices and literal ``hex``, concatenated."""
    return b"".join(
        blob[part["from"] : part["to"]] if "from" in part else bytes.fromhex(part["hex"])
        for part in parts
    )


def build_attachment() -> Json:
    rng = rng_for("attachment")
    key = rng(32)
    blob_id = rng(16).hex()
    plaintext = rng(ATTACHMENT_SIZE)
    other_key = rng(32)
    other_blob_id = rng(16).hex()
    assert attachment_inputs() == AttachmentInputs(key, blob_id, plaintext)
    size = ATTACHMENT_CHUNK
    blob = encrypt_attachment(key, blob_id, plaintext, size)
    header = blob[:16]
    pieces = [plaintext[i : i + size] for i in range(0, len(plaintext), size)]
    chunks = [
        _attachment_chunk(key, header, blob_id, i, pt, final=i == len(pieces) - 1)
        for i, pt in enumerate(pieces)
    ]
    assert header + b"".join(bytes.fromhex(c["ciphertext"]) for c in chunks) == blob
    assert len(blob) == encrypted_size(len(plaintext), size)
    assert decrypt_attachment(key, blob_id, blob) == plaintext
    n = len(blob)
    full = size + crypto.AEAD_TAG_LEN
    c0, c1, c2 = (16, 16 + full), (16 + full, 16 + 2 * full), (16 + 2 * full, n)
    # The same plaintext under the same key, for another blob id: its chunks must not fit here.
    foreign = encrypt_attachment(key, other_blob_id, plaintext, size)
    # The canonical form has no empty final chunk after full ones: chunks 0 and 1 as they
    # are (same key, header, blob id, index and flag), then an empty final chunk at index 2.
    empty_final = _attachment_chunk(key, header, blob_id, 2, b"", final=True)["ciphertext"]

    def flip(offset: int) -> list[Json]:
        return [
            {"from": 0, "to": offset},
            {"hex": h(bytes([blob[offset] ^ 0x01]))},
            {"from": offset + 1, "to": n},
        ]

    def header_patch(offset: int, patch: bytes) -> list[Json]:
        return [
            {"from": 0, "to": offset},
            {"hex": h(patch)},
            {"from": offset + len(patch), "to": n},
        ]

    def span(*ranges: tuple[int, int]) -> list[Json]:
        return [{"from": lo, "to": hi} for lo, hi in ranges]

    whole = (0, n)
    hd = (0, 16)
    cases: list[tuple[str, str, str, list[Json], Json]] = [
        ("truncated-in-header", "Truncated", "the first 10 bytes", span((0, 10)), {}),
        ("header-only", "Truncated", "the header without any chunk", span(hd), {}),
        ("truncated-in-chunk", "DecryptionFailed", "cut in the middle of chunk 1",
         span((0, c1[0] + 2000)), {}),
        ("dropped-final", "Truncated", "header, chunks 0 and 1; the final chunk dropped",
         span((0, c2[0])), {}),
        ("truncated-final-tag", "Truncated", "the final chunk cut to 10 bytes",
         span((0, c2[0] + 10)), {}),
        ("truncated-final", "DecryptionFailed", "the final chunk cut by one byte",
         span((0, n - 1)), {}),
        ("swapped-chunks", "DecryptionFailed", "chunks 0 and 1 swapped", span(hd, c1, c0, c2), {}),
        ("duplicated-chunk", "DecryptionFailed", "chunk 0 twice", span(hd, c0, c0, c1, c2), {}),
        ("dropped-middle", "DecryptionFailed", "chunk 1 dropped", span(hd, c0, c2), {}),
        ("flipped-bit-chunk", "DecryptionFailed", "bit 0 of chunk 1's first byte flipped",
         flip(c1[0]), {}),
        ("flipped-bit-final-tag", "DecryptionFailed", "bit 0 of the last byte flipped",
         flip(n - 1), {}),
        ("trailing-byte", "DecryptionFailed", "one zero byte after the final chunk",
         [*span(whole), {"hex": "00"}], {}),
        ("trailing-chunk", "DecryptionFailed", "chunk 1 again after the final chunk",
         span(whole, c1), {}),
        ("wrong-blob-id", "DecryptionFailed", "the valid blob, opened under another blob id",
         span(whole), {"blob_id": other_blob_id}),
        ("wrong-key", "DecryptionFailed", "the valid blob, opened with another key",
         span(whole), {"key": h(other_key)}),
        ("chunk-from-other-blob", "DecryptionFailed",
         "chunk 1 of the same plaintext under the same key encrypted for other_blob_id",
         [*span(hd, c0), {"hex": h(foreign[c1[0] : c1[1]])}, *span(c2)], {}),
        ("bad-magic", "MalformedError", "magic GLBB", header_patch(0, b"GLBB"), {}),
        ("version-2", "UnsupportedVersion", "version byte 2", header_patch(4, b"\x02"), {}),
        ("suite-2", "UnsupportedSuite", "suite byte 2", header_patch(5, b"\x02"), {}),
        ("reserved-nonzero", "MalformedError", "last reserved byte 1",
         header_patch(15, b"\x01"), {}),
        ("chunk-size-too-small", "MalformedError", "chunk_size 4095",
         header_patch(8, (4095).to_bytes(4, "big")), {}),
        ("chunk-size-changed", "DecryptionFailed", "chunk_size 8192 (in range, not the one used)",
         header_patch(8, (8192).to_bytes(4, "big")), {}),
        ("empty-final-after-chunks", "MalformedError",
         "the first 8192 plaintext bytes as chunks 0 and 1 (not final) and an empty final "
         "chunk 2: every tag verifies, but this is not the canonical form",
         [*span(hd, c0, c1), {"hex": empty_final}], {}),
    ]  # fmt: skip
    invalid = []
    for name, error, what, parts, override in cases:
        data = assemble(blob, parts)
        k = bytes.fromhex(override.get("key", h(key)))
        bid = override.get("blob_id", blob_id)
        expect(error, partial(decrypt_attachment, k, bid, data))
        invalid.append(
            {
                "name": name,
                "error": error,
                "rule": _attachment_rule(name, error),
                "mutation": what,
                "parts": parts,
                "blob_sha256": h(crypto.sha256(data)),
                **override,
            }
        )
    return {
        "description": (
            "An attachment blob (globe/v1/attachment, PROTOCOL.md 8.4.2): key, blob id and "
            "plaintext are the first three outputs of deterministic_rng(b'globe vectors "
            "v1/attachment') (32, 16 (hex) and 9192 bytes), then another key and blob id "
            "(32, 16) for the refusals. Encrypting must give 'blob' exactly; decrypting it must "
            "give the plaintext. An invalid case's bytes are its 'parts' concatenated: "
            "blob[from:to] or literal hex (their SHA-256 is 'blob_sha256'); decrypt them with "
            "'key' and 'blob_id' unless the case gives its own: that must raise exactly "
            "'error' (at update or at finalize)."
        ),
        "key": h(key),
        "blob_id": blob_id,
        "chunk_size": size,
        "plaintext": h(plaintext),
        "size": len(plaintext),
        "sha256": h(crypto.sha256(plaintext)),
        "header": h(header),
        "chunks": chunks,
        "blob": h(blob),
        "encrypted_size": len(blob),
        "other_key": h(other_key),
        "other_blob_id": other_blob_id,
        "invalid": invalid,
    }


# --- envelopes -------------------------------------------------------------------------


# --- forward.json ----------------------------------------------------------------------

#: The step of §8.5 each refusal of forward.json pins.
FORWARD_RULES: Final = {
    "recipient-without-consent": "§8.5 step 6: the recipient needs the originator's consent",
    "forwarder-without-consent": "§8.5 step 6: the forwarder needs the originator's consent",
    "no-consent-at-all": "§8.5 step 6: restricted material needs a consent",
    "tlp-lowered": "§8.5 step 3: the handling code is at least the origin's",
    "restriction-dropped": "§8.5 step 3: the handling code is at least the origin's",
    "attachment-dropped": "§8.5 step 4: exactly the origin's attachments",
    "attachment-changed": "§8.5 step 4: exactly the origin's attachments",
    "consent-by-the-forwarder": "§8.5 step 5: each consent is the originator's grant",
    "consent-refused": "§8.5 step 5: each consent is the originator's grant",
    "consent-for-another-message": "§8.5 step 5: each consent is the originator's grant",
    "origin-content-altered": "§8.5 step 1: the origin's proof verifies",
    "origin-signed-by-another-member": "§8.5 step 1: the origin's proof verifies",
    "origin-is-a-forward": "§8.5 step 2: the origin is not itself a forward",
}

FORWARD_RED: Final = Handling(Tlp.RED, frozenset({Restriction.NO_ONWARD}))


def _proof(
    net: DevNetwork, name: str, sender: str, to: str, content: MessageContent
) -> SignedContent:
    """The proof of origin (header, content, inner signature) of a message ``sender`` seals.

    Every part is reproducible: the header comes from seal_envelope with the pinned rng
    (HPKE randomness only touches the wrapped keys, which the proof does not keep) and
    Ed25519 signatures are deterministic."""
    s, r = member(net, sender), member(net, to)
    data = content.encode()
    raw = seal_envelope(
        genesis=net.genesis, sender=s.authority, identity=s.identity,
        recipients=[SealTo(r.authority, 1, r.signed_prekey.key)], content=data,
        created=ENVELOPE_CREATED, expires=ENVELOPE_EXPIRES, dir_seq=net.directory.seq,
        dir_head=net.directory.head, rng=rng_for(name),
        blobs=[a.blob for a in content.attachments],
    )  # fmt: skip
    header = parse_envelope(raw).header.raw
    return SignedContent(header, data, content_signature(s.identity, header, data))


def _attachment(name: str) -> Attachment:
    rng = rng_for(name)
    return Attachment("ledger.xlsx", 1_000_000, "application/vnd.ms-excel", rng(32), rng(32),
                      rng(16).hex())  # fmt: skip


def _message(subject: str, **kw: Any) -> MessageContent:
    base: dict[str, Any] = {
        "kind": Kind.INFORMATION, "subject": subject, "body": "See the attached ledger.",
        "language": "en", "urgency": Urgency.URGENT, "handling": FORWARD_RED,
    }  # fmt: skip
    base.update(kw)
    return MessageContent(**base)


def _decision(
    net: DevNetwork,
    name: str,
    signer: str,
    about: MessageId,
    to: list[str],
    *,
    decision: ConsentDecision = ConsentDecision.GRANTED,
) -> SignedContent:
    content = _message(
        "Re: Accounts", kind=Kind.CONSENT_DECISION, body="Consent given.",
        handling=Handling(Tlp.AMBER), in_reply_to=MessageId(rng_for(name + "/request")(16)),
        consent=Consent(about, tuple(AuthorityId.parse(a) for a in to), None, decision,
                        None if decision is ConsentDecision.GRANTED else "not now"),
    )  # fmt: skip
    return _proof(net, name, signer, "DE-BKA" if signer == "FR-PNF" else "FR-PNF", content)


def build_forward(net: DevNetwork) -> Json:
    """ES-FCC's RED message to FR-PNF, ES-FCC's grant for IT-ANAC, FR-PNF's forward."""
    origin_att = _attachment("forward/origin-attachment")
    origin = _proof(net, "forward/origin", "ES-FCC", "FR-PNF",
                    _message("Accounts", attachments=(origin_att,)))  # fmt: skip
    origin_id = parse_envelope_header_id(origin)
    grant = _decision(net, "forward/grant", "ES-FCC", origin_id, ["IT-ANAC"])
    copy_rng = rng_for("forward/copy")
    copy = Attachment(origin_att.name, origin_att.size, origin_att.media_type, origin_att.sha256,
                      copy_rng(32), copy_rng(16).hex())  # fmt: skip
    forward = _message("Fwd: Accounts", body="For the joint team.", attachments=(copy,),
                       forwarded=Forwarded(origin, (grant,)))  # fmt: skip
    state = net.directory
    verified = verify_forward(
        forward, forwarder=AuthorityId.parse("FR-PNF"), recipient=AuthorityId.parse("IT-ANAC"),
        directory=state,
    )  # fmt: skip
    assert verified.sender == AuthorityId.parse("ES-FCC")

    def case(name: str, content: MessageContent, error: str, *, forwarder: str = "FR-PNF",
             recipient: str = "IT-ANAC") -> Json:  # fmt: skip
        expect(error, lambda: verify_forward(
            content, forwarder=AuthorityId.parse(forwarder),
            recipient=AuthorityId.parse(recipient), directory=state,
        ))  # fmt: skip
        return {"name": name, "forward": h(content.encode()), "forwarder": forwarder,
                "recipient": recipient, "error": error, "rule": FORWARD_RULES[name]}  # fmt: skip

    def with_(**kw: Any) -> MessageContent:
        fields = {"handling": forward.handling, "attachments": forward.attachments,
                  "forwarded": forward.forwarded}  # fmt: skip
        fields.update(kw)
        return _message("Fwd: Accounts", body="For the joint team.", **fields)

    tampered = SignedContent(origin.header, origin.content.replace(b"Accounts", b"Accountz"),
                             origin.signature)  # fmt: skip
    other_key = SignedContent(origin.header, origin.content, member(net, "DE-BKA").identity.sign(
        labels.CONTENT, crypto.sha256(origin.header) + origin.content))  # fmt: skip
    by_forwarder = _decision(net, "forward/grant-by-fr", "FR-PNF", origin_id, ["IT-ANAC"])
    refused = _decision(
        net, "forward/refusal", "ES-FCC", origin_id, ["IT-ANAC"], decision=ConsentDecision.REFUSED
    )
    elsewhere = _decision(net, "forward/grant-other", "ES-FCC",
                          MessageId(rng_for("forward/other-id")(16)), ["IT-ANAC"])  # fmt: skip
    nested = _proof(net, "forward/nested", "FR-PNF", "IT-ANAC", forward)
    cases = [
        case("recipient-without-consent", forward, "ConsentRequired", recipient="DE-BKA"),
        case("forwarder-without-consent", forward, "ConsentRequired", forwarder="DE-BKA"),
        case("no-consent-at-all", with_(forwarded=Forwarded(origin)), "ConsentRequired"),
        case("tlp-lowered", with_(handling=Handling(Tlp.AMBER, FORWARD_RED.restrictions)),
             "HandlingLowered"),
        case("restriction-dropped", with_(handling=Handling(Tlp.RED)), "HandlingLowered"),
        case("attachment-dropped", with_(attachments=()), "MalformedError"),
        case("attachment-changed", with_(attachments=(dataclasses.replace(copy, size=1),)),
             "MalformedError"),
        case("consent-by-the-forwarder", with_(forwarded=Forwarded(origin, (by_forwarder,))),
             "MalformedError"),
        case("consent-refused", with_(forwarded=Forwarded(origin, (refused,))),
             "MalformedError"),
        case("consent-for-another-message", with_(forwarded=Forwarded(origin, (elsewhere,))),
             "MalformedError"),
        case("origin-content-altered", with_(forwarded=Forwarded(tampered, (grant,))),
             "BadSignature"),
        case("origin-signed-by-another-member", with_(forwarded=Forwarded(other_key, (grant,))),
             "BadSignature"),
        case("origin-is-a-forward", with_(forwarded=Forwarded(nested, (grant,))),
             "MalformedError"),
    ]  # fmt: skip
    return {
        "description": (
            "Forwarding with proof of origin (PROTOCOL.md §8.5), checked against the directory "
            "of log.json. 'origin' is ES-FCC's RED message to FR-PNF (its header, content and "
            "inner signature), 'grant' ES-FCC's signed consent decision naming IT-ANAC, "
            "'forward' the content FR-PNF sends to IT-ANAC. verify_forward(forward, forwarder, "
            "recipient) must accept 'forward' from FR-PNF to IT-ANAC and refuse each case with "
            "exactly its error."
        ),
        "origin": {
            "header": h(origin.header),
            "content": h(origin.content),
            "signature": h(origin.signature),
            "sender": "ES-FCC",
            "message_id": str(origin_id),
        },
        "grant": {
            "header": h(grant.header),
            "content": h(grant.content),
            "signature": h(grant.signature),
        },
        "forward": h(forward.encode()),
        "forwarder": "FR-PNF",
        "recipient": "IT-ANAC",
        "invalid": cases,
    }


def parse_envelope_header_id(proof: SignedContent) -> MessageId:
    return decode_header(proof.header).message_id
