"""Proofs of origin and forwards (PROTOCOL.md §8.5), each refusal in the order of the spec.

The vectors (tests/vectors/forward.json) pin the wire cases; these add the ones that
need a directory of their own (another network, an unknown key, a retired key) and
the properties of the order of checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import canonical, crypto, labels
from protocol.devnet import GENESIS_TIME, DevNetwork, build_devnet
from protocol.envelope import (
    SealTo,
    content_signature,
    open_envelope,
    parse_envelope,
    seal_envelope,
    seal_envelope_signed,
)
from protocol.errors import BadSignature, MalformedError, UnknownMember, UsageError
from protocol.ids import AuthorityId, MessageId
from protocol.keys import SigningKey
from protocol.messages import (
    Attachment,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    SignedContent,
    Tlp,
    Urgency,
    handling_at_least,
)
from protocol.origin import signed_content, verify_forward, verify_signed_content

NOW = GENESIS_TIME + 7200


@pytest.fixture(scope="module")
def net() -> DevNetwork:
    return build_devnet(b"origin", members=[("FR-PNF", "P"), ("DE-BKA", "B"), ("ES-FCC", "F")])


def message(**kw: Any) -> MessageContent:
    base: dict[str, Any] = {
        "kind": Kind.INFORMATION, "subject": "Accounts", "body": "b", "language": "en",
        "urgency": Urgency.ROUTINE, "handling": Handling(Tlp.GREEN),
    }  # fmt: skip
    base.update(kw)
    return MessageContent(**base)


def proof(
    net: DevNetwork,
    sender: str,
    to: str,
    content: MessageContent,
    *,
    blobs: list[str] | None = None,
    identity: SigningKey | None = None,
) -> SignedContent:
    s, r = net.members[sender], net.members[to]
    key = identity or s.identity
    data = content.encode()
    raw = seal_envelope(
        genesis=net.genesis, sender=s.authority, identity=key,
        recipients=[SealTo(r.authority, 1, r.signed_prekey.key)], content=data,
        created=NOW - 60, expires=NOW + 3600, dir_seq=net.directory.seq,
        dir_head=net.directory.head,
        blobs=[a.blob for a in content.attachments] if blobs is None else blobs,
    )  # fmt: skip
    header = parse_envelope(raw).header.raw
    return SignedContent(header, data, content_signature(key, header, data))


def test_a_proof_names_its_writer_and_reader(net: DevNetwork) -> None:
    p = proof(net, "ES-FCC", "FR-PNF", message())
    origin = verify_signed_content(p, net.directory)
    assert origin.sender == AuthorityId.parse("ES-FCC")
    assert origin.recipients == frozenset({AuthorityId.parse("FR-PNF")})
    assert origin.content.subject == "Accounts"
    assert origin.signed is p


def test_a_proof_from_another_network_is_malformed(net: DevNetwork) -> None:
    other = build_devnet(b"elsewhere", members=[("FR-PNF", "P"), ("ES-FCC", "F")])
    p = proof(other, "ES-FCC", "FR-PNF", message())
    with pytest.raises(MalformedError, match="made for another network"):
        verify_signed_content(p, net.directory)


def test_an_unknown_writer_or_key_is_refused(net: DevNetwork) -> None:
    other = build_devnet(b"origin", members=[("FR-PNF", "P"), ("DE-BKA", "B"), ("ES-FCC", "F"),
                                             ("IT-ANAC", "I")])  # fmt: skip
    by_newcomer = proof(other, "IT-ANAC", "FR-PNF", message())
    with pytest.raises(UnknownMember):
        verify_signed_content(by_newcomer, net.directory)
    # the right authority and network, a key the log never certified for it
    forged = proof(net, "ES-FCC", "FR-PNF", message(), identity=SigningKey.generate())
    with pytest.raises(BadSignature, match="no certified identity key of ES-FCC"):
        verify_signed_content(forged, net.directory)


def test_a_key_replaced_before_the_message_was_written_does_not_prove_it(
    net: DevNetwork,
) -> None:
    p = proof(net, "ES-FCC", "FR-PNF", message())
    state = net.directory
    member = state.members[AuthorityId.parse("ES-FCC")]
    key_id = member.certificate.identity_key.key_id
    member.retired_at[key_id] = NOW - 60  # replaced at the very second it was "written"
    try:
        with pytest.raises(BadSignature, match="after its signing key was replaced"):
            verify_signed_content(p, state)
    finally:
        del member.retired_at[key_id]
    verify_signed_content(p, state)


def test_a_signature_is_over_the_exact_header(net: DevNetwork) -> None:
    p = proof(net, "ES-FCC", "FR-PNF", message())
    other_header = proof(net, "ES-FCC", "DE-BKA", message())
    with pytest.raises(BadSignature):
        verify_signed_content(SignedContent(other_header.header, p.content, p.signature),
                              net.directory)  # fmt: skip
    raw_sig = net.members["ES-FCC"].identity.sign(
        labels.ENVELOPE, crypto.sha256(p.header) + p.content
    )  # the right bytes under another label
    with pytest.raises(BadSignature):
        verify_signed_content(SignedContent(p.header, p.content, raw_sig), net.directory)


def test_attachments_must_match_the_header_blobs(net: DevNetwork) -> None:
    att = Attachment("a.pdf", 10, "application/pdf", bytes(32), bytes(32), "ab" * 16)
    p = proof(net, "ES-FCC", "FR-PNF", message(attachments=(att,)), blobs=[])
    with pytest.raises(MalformedError, match="do not match the header's blobs"):
        verify_signed_content(p, net.directory)


def test_only_a_forward_is_verified_as_one(net: DevNetwork) -> None:
    with pytest.raises(MalformedError, match="not a forward"):
        verify_forward(message(), forwarder=AuthorityId.parse("FR-PNF"),
                       recipient=AuthorityId.parse("DE-BKA"), directory=net.directory)  # fmt: skip


def test_clear_and_green_material_needs_no_consent(net: DevNetwork) -> None:
    p = proof(net, "ES-FCC", "FR-PNF", message(handling=Handling(Tlp.GREEN)))
    fwd = message(subject="Fwd: Accounts", forwarded=Forwarded(p))
    origin = verify_forward(
        fwd, forwarder=AuthorityId.parse("FR-PNF"), recipient=AuthorityId.parse("DE-BKA"),
        directory=net.directory,
    )  # fmt: skip
    assert origin.sender == AuthorityId.parse("ES-FCC")


@pytest.mark.parametrize(
    ("handling", "floor", "at_least"),
    [
        (Handling(Tlp.RED), Handling(Tlp.AMBER), True),
        (Handling(Tlp.AMBER), Handling(Tlp.RED), False),
        (Handling(Tlp.AMBER_STRICT), Handling(Tlp.AMBER), True),
        (Handling(Tlp.CLEAR), Handling(Tlp.CLEAR), True),
    ],
)
def test_handling_order(handling: Handling, floor: Handling, at_least: bool) -> None:
    assert handling_at_least(handling, floor) is at_least


def test_signed_content_is_built_from_its_three_parts(net: DevNetwork) -> None:
    p = proof(net, "ES-FCC", "FR-PNF", message())
    built = signed_content(p.header, p.content, p.signature)
    assert built == p
    assert verify_signed_content(built, net.directory).sender == AuthorityId.parse("ES-FCC")


@pytest.mark.parametrize("empty", ["header", "content"])
def test_a_forward_with_an_empty_header_or_content_is_refused(net: DevNetwork, empty: str) -> None:
    p = proof(net, "ES-FCC", "FR-PNF", message())
    hollow = SignedContent(
        b"" if empty == "header" else p.header,
        b"" if empty == "content" else p.content,
        p.signature,
    )
    detail = "message.forwarded.origin: header and content are not empty"
    with pytest.raises(UsageError) as built:
        message(subject="Fwd: Accounts", forwarded=Forwarded(hollow)).encode()
    assert built.value.detail == detail
    good = message(subject="Fwd: Accounts", forwarded=Forwarded(p)).encode()
    obj: Any = canonical.decode(good, max_size=1 << 20, what="m")
    obj["forwarded"]["origin"][empty] = ""
    with pytest.raises(MalformedError) as received:
        MessageContent.decode(canonical.encode(obj))
    assert received.value.detail == detail


@pytest.mark.parametrize("kind", [Kind.REQUEST, Kind.ANSWER])
def test_only_information_may_carry_a_forward(net: DevNetwork, kind: Kind) -> None:
    p = proof(net, "ES-FCC", "FR-PNF", message())
    reply_to = MessageId(bytes(16)) if kind is Kind.ANSWER else None
    forward = message(kind=kind, forwarded=Forwarded(p), in_reply_to=reply_to)
    with pytest.raises(UsageError):
        forward.encode()  # built here: the caller's error
    obj = canonical.decode(message(forwarded=Forwarded(p)).encode(), max_size=1 << 20, what="m")
    obj["kind"] = kind.value
    if reply_to is not None:
        obj["in_reply_to"] = str(reply_to)
    with pytest.raises(MalformedError) as info:  # received: the peer's
        MessageContent.decode(canonical.encode(obj))
    assert info.value.detail == "message: a forward is information"


def test_sealing_returns_the_inner_signature_the_envelope_carries(net: DevNetwork) -> None:
    """What a sender keeps as its proof of origin is the very signature sealed inside,
    without parsing its own envelope again."""
    s, r = net.members["ES-FCC"], net.members["FR-PNF"]
    data = message().encode()
    kwargs: dict[str, Any] = {
        "genesis": net.genesis, "sender": s.authority, "identity": s.identity,
        "recipients": [SealTo(r.authority, 1, r.signed_prekey.key)], "content": data,
        "created": NOW - 60, "expires": NOW + 3600, "dir_seq": net.directory.seq,
        "dir_head": net.directory.head, "message_id": MessageId.new(),
    }  # fmt: skip
    raw, inner = seal_envelope_signed(**kwargs)
    header = parse_envelope(raw).header.raw
    assert inner == content_signature(s.identity, header, data)
    opened = open_envelope(
        parse_envelope(raw), directory=net.directory, me=r.authority,
        private_key=lambda _kid: r.prekey, now=NOW,
    )  # fmt: skip
    assert opened.inner_signature == inner
