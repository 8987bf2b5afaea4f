"""Envelope vectors (§7): the sealed envelopes of envelope_1.json, envelope_3.json and
envelope_ka.json, and every refusal of a header, a frame, an opening and a hub check.

Envelopes that must open, or must fail only at a late step of §7.6, carry HPKE-wrapped
content keys; their ciphertexts come from :class:`~tests.vectors.vectorlib.HpkePool`, so
regenerating reproduces the committed bytes.  Envelopes that only need to *parse* are
framed here byte by byte from §7.1 with zero-filled wrapped keys, body and signature.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import orjson

from protocol import crypto, labels
from protocol.devnet import DevNetwork
from protocol.directory import DirectoryState
from protocol.envelope import (
    SealTo,
    envelope_hash,
    open_envelope,
    parse_envelope,
    seal_envelope,
)
from protocol.ids import MessageId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.messages import Handling, Kind, MessageContent, SignedContent, Tlp, Urgency
from protocol.origin import verify_signed_content
from tests.vectors.vectorlib import (
    ENVELOPE_CREATED,
    ENVELOPE_EXPIRES,
    NOW,
    HpkePool,
    Json,
    b64,
    by_key_id,
    h,
    member,
    message_content,
    mutate,
    rng_for,
    rng_seed,
)

W: Final = crypto.WRAPPED_KEY_LEN
#: Fields of the envelope vectors fixed by HPKE randomness (kept stable by the HpkePool).
HPKE_DEPENDENT: Final = ["envelope", "envelope_hash", "outer_signature", "recipients[].wrapped_key"]


def bucket(n: int) -> int:
    size = 1024
    while size < n:
        size <<= 1
    return size


def frame(header: bytes, wrapped: list[bytes], body: bytes) -> bytes:
    """The signed part of an envelope (§7.1): everything before the signature."""
    return b"".join(
        (
            b"GLBE\x01\x01",
            struct.pack(">I", len(header)),
            header,
            struct.pack(">H", len(wrapped)),
            *wrapped,
            struct.pack(">I", len(body)),
            body,
        )
    )


def sign_frame(identity: SigningKey, part: bytes) -> bytes:
    return part + identity.sign(labels.ENVELOPE, part)


def zero_frame(
    header: bytes, *, count: int = 1, wrapped: int | None = None, body_len: int = 1040
) -> bytes:
    """A frame with zero-filled wrapped keys, body and signature (enough for parsing)."""
    n = count if wrapped is None else wrapped
    return b"".join(
        (
            b"GLBE\x01\x01",
            struct.pack(">I", len(header)),
            header,
            struct.pack(">H", count),
            bytes(W * n),
            struct.pack(">I", body_len),
            bytes(body_len),
            bytes(64),
        )
    )


def pad(content: bytes, inner: bytes) -> bytes:
    framed = struct.pack(">I", len(content)) + content + inner
    return framed + bytes(bucket(len(framed)) - len(framed))


# --- valid envelopes -----------------------------------------------------------------------


def seal(
    net: DevNetwork,
    pool: HpkePool,
    name: str,
    recipients: list[tuple[str, int]],
    *,
    fallback: bool = False,
) -> tuple[Json, bytes]:
    """Seal the fixed content from FR-PNF; return the vector and the envelope bytes.

    ``fallback`` wraps to each recipient's certified key-agreement key instead of its
    signed prekey (§6.6): the header's ``prekey`` then names the KA key.
    """
    content_obj = message_content()
    content = content_obj.encode()
    sender = member(net, "FR-PNF")
    state = net.directory
    probe = rng_for(name)
    message_id = MessageId(probe(16))
    content_key = probe(crypto.AEAD_KEY_LEN)

    def private(authority: str) -> KemPrivateKey:
        m = member(net, authority)
        return m.ka if fallback else m.prekey

    raw0 = seal_envelope(
        genesis=net.genesis,
        sender=sender.authority,
        identity=sender.identity,
        recipients=[
            SealTo(member(net, a).authority, seq, private(a).public_key) for a, seq in recipients
        ],
        content=content,
        created=ENVELOPE_CREATED,
        expires=ENVELOPE_EXPIRES,
        dir_seq=state.seq,
        dir_head=state.head,
        rng=rng_for(name),
        blobs=[a.blob for a in content_obj.attachments],
    )
    env0 = parse_envelope(raw0)
    header = env0.header.raw
    header_digest = crypto.sha256(header)
    infos = [
        crypto.labelled(labels.WRAP, header_digest, a.encode("ascii"))
        for a, _ in sorted(recipients)
    ]
    wrapped = [
        pool.seal(private(a), info, content_key)
        for (a, _), info in zip(sorted(recipients), infos, strict=True)
    ]
    raw = sign_frame(sender.identity, frame(header, wrapped, env0.body))
    env = parse_envelope(raw)
    commit = crypto.sha256(crypto.labelled(labels.KEY_COMMIT, message_id.raw, content_key))
    assert env.header.message_id == message_id
    assert env.header.commit == commit
    assert env.header.blobs == tuple(a.blob for a in content_obj.attachments)
    inner = sender.identity.sign(labels.CONTENT, header_digest + content)
    plaintext = pad(content, inner)
    body = crypto.aead_encrypt(
        content_key,
        bytes(crypto.AEAD_NONCE_LEN),
        plaintext,
        crypto.labelled(labels.BODY_AAD, header),
    )
    assert body == env.body
    sender.identity.verify_key.verify(labels.ENVELOPE, raw[:-64], env.signature)
    verify_signed_content(SignedContent(header, content, inner), state)
    rows = []
    for (authority, seq), info, w in zip(sorted(recipients), infos, wrapped, strict=True):
        key = private(authority)
        m = member(net, authority)
        assert key.open(w, info) == content_key
        opened = open_envelope(
            env, directory=state, me=m.authority, private_key=by_key_id(m.prekey, m.ka), now=NOW
        )
        assert (opened.content, opened.inner_signature) == (content, inner)
        rows.append(
            {
                "authority": authority,
                "seq": seq,
                "prekey_key_id": str(key.key_id),
                "prekey_private_key": h(key.raw),
                "wrap_info": h(info),
                "wrapped_key": h(w),
            }
        )
    what = "certified key-agreement key (the fallback of §6.6)" if fallback else "signed prekey"
    vector = {
        "description": (
            f"An envelope from FR-PNF to {len(recipients)} recipient(s), each content key "
            f"wrapped to the recipient's {what}, sealed at 'created' and opened at 'now' "
            "against the directory of log.json. Message id and content key are the first two "
            "outputs (16, 32 bytes) of deterministic_rng(rng_seed). The content's attachment is "
            "the blob of attachment.json, and the header lists its id in 'blobs'. Fields in "
            "'hpke_dependent' come from HPKE encapsulation randomness; every other field is "
            "derived from them and the seeds."
        ),
        "now": NOW,
        "created": ENVELOPE_CREATED,
        "expires": ENVELOPE_EXPIRES,
        "dir_seq": state.seq,
        "dir_head": h(state.head),
        "rng_seed": h(rng_seed(name)),
        "message_id": str(message_id),
        "content_key": h(content_key),
        "commit": h(commit),
        "sender": "FR-PNF",
        "sender_identity_key": h(bytes(sender.identity.verify_key)),
        "sender_identity_key_id": str(sender.identity.key_id),
        "content": h(content),
        "blobs": list(env.header.blobs),
        "header": h(header),
        "header_digest": h(header_digest),
        "plaintext": h(plaintext),
        "body": h(body),
        "inner_signature": h(inner),
        "recipients": rows,
        "outer_signature": h(env.signature),
        "envelope": h(raw),
        "envelope_hash": h(envelope_hash(raw)),
        "hpke_dependent": list(HPKE_DEPENDENT),
    }
    return vector, raw


# --- crafted envelopes (valid outer signature, a defect further in) ------------------------


def small_content(subject: str = "Crafted envelope") -> bytes:
    return MessageContent(
        kind=Kind.INFORMATION,
        subject=subject,
        body="For the conformance test.",
        language="en",
        urgency=Urgency.ROUTINE,
        handling=Handling(Tlp.GREEN),
    ).encode()


@dataclass
class Crafted:
    """An envelope built from §7 step by step; every field can be made wrong."""

    net: DevNetwork
    pool: HpkePool
    name: str
    sender: str = "FR-PNF"
    to: str = "DE-BKA"
    wrap_to: str = "prekey"  # "prekey" or "ka": the key the content key is wrapped to
    prekey_id: str | None = None  # the header's prekey id (default: the wrap key's)
    header: Json | None = None  # changes to the header fields
    content: bytes | None = None
    commit_key: bytes | None = None  # the key the commitment is computed from
    wrapped_plaintext: bytes | None = None  # what is wrapped (default: the content key)
    info_recipient: str | None = None  # the recipient id bound in the wrap info
    body_key: bytes | None = None
    body_aad: bytes | None = None
    plaintext: Callable[[bytes, bytes], bytes] | None = None  # (content, inner) -> plaintext
    inner: Callable[[bytes, bytes], bytes] | None = None  # (header, content) -> inner sig
    outer: SigningKey | None = None
    state: DirectoryState | None = None
    wrapped_edit: Json | None = None  # a mutation of the wrapped key (after HPKE)

    def build(self) -> tuple[bytes, list[Json]]:
        net = self.net
        rng = rng_for(f"open/{self.name}")
        mid, ck = rng(16), rng(32)
        s, r = member(net, self.sender), member(net, self.to)
        key = r.ka if self.wrap_to == "ka" else r.prekey
        state = self.state or net.directory
        commit = crypto.sha256(crypto.labelled(labels.KEY_COMMIT, mid, self.commit_key or ck))
        fields: Json = {
            "type": "envelope",
            "v": 1,
            "suite": 1,
            "network": b64(net.genesis.digest),
            "id": mid.hex(),
            "sender": self.sender,
            "sender_key": str(s.identity.key_id),
            "recipients": [{"id": self.to, "seq": 1, "prekey": self.prekey_id or str(key.key_id)}],
            "created": ENVELOPE_CREATED,
            "expires": ENVELOPE_EXPIRES,
            "dir": {"seq": state.seq, "head": b64(state.head)},
            "commit": b64(commit),
            **(self.header or {}),
        }
        header = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        hd = crypto.sha256(header)
        content = self.content if self.content is not None else small_content()
        if self.inner is not None:
            inner = self.inner(header, content)
        else:
            inner = s.identity.sign(labels.CONTENT, hd + content)
        plaintext = self.plaintext(content, inner) if self.plaintext else pad(content, inner)
        body = crypto.aead_encrypt(
            self.body_key or ck,
            bytes(12),
            plaintext,
            self.body_aad
            if self.body_aad is not None
            else crypto.labelled(labels.BODY_AAD, header),
        )
        info = crypto.labelled(labels.WRAP, hd, (self.info_recipient or self.to).encode())
        wrapped = self.pool.seal(key, info, self.wrapped_plaintext or ck)
        wrap: Json = {"recipient": self.to, "wrap_info": h(info), "wrapped_key": h(wrapped)}
        if self.wrapped_edit is not None:  # the envelope carries the edited ciphertext
            wrapped = mutate(wrapped, self.wrapped_edit)
            wrap["edit"] = self.wrapped_edit
        raw = sign_frame(self.outer or s.identity, frame(header, [wrapped], body))
        return raw, [wrap]
