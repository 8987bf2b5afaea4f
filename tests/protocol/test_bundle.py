"""Evidence bundles: a valid bundle verifies offline and tells its chain of custody; each kind
of tampering is refused with its named reason (protocol/bundle.py; docs/PROTOCOL.md §9.3).

The exchange is the devnet one of tests/vectors/bundle_parts.py: FR-PNF's request with an
attachment to DE-BKA, DE-BKA's acknowledgement and answer, exported by FR-PNF.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from typing import Any

import pytest

from protocol import canonical, labels
from protocol.bundle import (
    MANIFEST,
    BundleMessage,
    Manifest,
    build_bundle,
    layout,
    log_name,
    sign_manifest,
    verify_bundle,
    verify_items,
)
from protocol.bundlezip import encode_container
from protocol.custody import Failure, Item
from protocol.errors import MalformedError, UsageError
from protocol.ids import AuthorityId, MessageId
from protocol.keys import SigningKey
from protocol.membership import make_checkpoint
from protocol.signed import SignedObject, sign_object
from tests.vectors import bundle_parts as bp
from tests.vectors.vectorlib import NOW, HpkePool, attachment_inputs, build_network

REQUEST = "messages/FR-PNF/{}/"


@cache
def exchange() -> bp.Exchange:
    return bp.exchange(build_network(), HpkePool())


@cache
def valid() -> bytes:
    return exchange().bundle()


def prefix(which: str) -> str:
    s = exchange().sealed[which]
    sender = "FR-PNF" if which == "request" else "DE-BKA"
    return f"messages/{sender}/{s.message_id}/"


def failures(data: bytes, **kw: Any) -> list[tuple[str, str | None]]:
    return [(f.slug, f.item) for f in verify_bundle(data, **kw).failures]


# --- a valid bundle ----------------------------------------------------------------------------


def test_a_valid_bundle_verifies_and_tells_its_chain_of_custody() -> None:
    net = exchange().net
    report = verify_bundle(valid(), pinned=net.genesis.fingerprint())
    assert report.ok
    assert report.failures == ()
    report.raise_first()  # nothing to raise
    p = report.provenance
    assert p is not None
    assert (p.network_id, p.pinned, p.exporter, p.exported, p.case, p.message) == (
        "globe-dev", True, "FR-PNF", bp.EXPORTED, "FR-PNF/2026/0042", None,
    )  # fmt: skip
    assert (p.attachments_included, p.log_seq, p.checkpoint_time) == (True, 6, bp.CHECKPOINT_AT)
    assert p.log_head == net.directory.head.hex()
    assert p.genesis_fingerprint == net.genesis.fingerprint()
    request, ack, answer = report.messages
    assert [(m.kind, m.sender, m.created) for m in report.messages] == [
        ("request", "FR-PNF", NOW - 60), ("status", "DE-BKA", bp.ACK_AT),
        ("answer", "DE-BKA", bp.ANSWER_AT),
    ]  # fmt: skip
    fr = net.members["FR-PNF"]
    assert request.signer is not None
    assert dataclasses.astuple(request.signer) == (
        "FR-PNF", "Parquet national financier", fr.certificate.serial, str(fr.identity.key_id),
        fr.certificate.fingerprint(),
    )  # fmt: skip
    assert (request.tlp, request.restrictions, request.recipients) == (
        "AMBER", ("intelligence-only",), ("DE-BKA",),
    )  # fmt: skip
    assert [(e.kind, e.time) for e in request.evidence] == [
        ("accepted", NOW - 59), ("delivered", NOW - 57),
    ]  # fmt: skip
    assert [(r.recipient, r.time) for r in request.receipts] == [("DE-BKA", NOW - 58)]
    a = attachment_inputs()
    assert [dataclasses.astuple(x) for x in request.attachments] == [
        (1, "releves-bancaires-2025.bin", "application/octet-stream", len(a.plaintext),
         hashlib.sha256(a.plaintext).hexdigest(), prefix("request") + "attachment-1"),
    ]  # fmt: skip
    assert request.basis == "originator"
    assert ack.in_reply_to == answer.in_reply_to == request.message_id
    assert ack.basis == answer.basis == "TLP:AMBER"
    assert [r.recipient for r in ack.receipts] == ["FR-PNF"]
    assert [(m.authority, [s[2:4] for s in m.stages]) for m in report.members] == [
        ("DE-BKA", [("admit", "active")]), ("FR-PNF", [("admit", "active")]),
    ]  # fmt: skip


def test_the_report_is_plain_json() -> None:
    data = verify_bundle(valid()).to_json()
    assert data["ok"] is True
    assert data["provenance"]["pinned"] is False  # type: ignore[index]
    assert canonical.encode(_strip_nulls(data))  # JSON-ready: str, int, bool, lists, objects


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def test_a_bundle_with_digests_only_reports_each_attachment_as_not_included() -> None:
    report = verify_bundle(exchange().bundle(included=False))
    assert report.ok
    assert report.provenance is not None
    assert not report.provenance.attachments_included
    (att,) = report.messages[0].attachments
    assert att.item is None
    assert att.sha256 == hashlib.sha256(attachment_inputs().plaintext).hexdigest()


def test_one_exchange_names_its_first_message_in_the_manifest() -> None:
    mid = exchange().sealed["request"].message_id
    report = verify_bundle(exchange().bundle(message=mid))
    assert report.ok
    assert report.provenance is not None
    assert report.provenance.message == str(mid)
    lonely = exchange().bundle([exchange().ack], message=mid)
    assert failures(lonely) == [("malformed", MANIFEST)]


def test_the_exporters_own_check_takes_attachments_by_their_digests() -> None:
    """What a node runs before it writes: attachments known by digest, not bytes."""
    bundle = bp.members(valid())
    items = [Item.of(n, d) for n, d in bundle]
    light = [dataclasses.replace(i, data=None) if "attachment" in i.name else i for i in items]
    assert verify_items(light[0], light[1:]).ok
    # and an item that must have bytes but has none is missing
    gone = [dataclasses.replace(i, data=None) if i.name == "genesis.json" else i for i in items]
    assert [(f.slug, f.item) for f in verify_items(gone[0], gone[1:]).failures] == [
        ("item-missing", "genesis.json")
    ]


def test_a_pinned_fingerprint_may_be_spaced_any_way() -> None:
    fp = exchange().net.genesis.fingerprint()
    assert verify_bundle(valid(), pinned=fp.replace(" ", "")).ok
    assert verify_bundle(valid(), pinned="  " + fp.replace(" ", "\t")).ok


# --- tampering -----------------------------------------------------------------------------------


def test_a_content_byte_changed_is_named() -> None:
    name = prefix("request") + "content.json"
    assert failures(bp.flip(valid(), name, 40)) == [
        ("item-altered", name), ("bad-signature", name),
    ]  # fmt: skip


def test_a_receipt_byte_changed_is_named() -> None:
    name = prefix("request") + "receipt-DE-BKA.json"
    data = bp.members(valid())
    receipt = dict(data)[name]
    at = receipt.index(b'"sig":"') + 10  # inside the signature, still base64url
    swap = b"B" if receipt[at : at + 1] == b"A" else b"A"
    changed = bp.edit(valid(), name, lambda d: d[:at] + swap + d[at + 1 :])
    assert failures(changed) == [
        ("item-altered", name), ("bad-signature", name),
    ]  # fmt: skip


def test_a_log_entry_byte_changed_stops_the_verification() -> None:
    assert failures(bp.flip(valid(), log_name(3), 100)) == [("malformed", log_name(3))]
    # a change the decoder accepts (the hub's time of entry 2): entry 3 no longer links to it
    entry = dict(bp.members(valid()))[log_name(2)]
    at = entry.index(b'"time":') + 8
    changed = bp.edit(valid(), log_name(2), lambda d: d[:at] + b"9" + d[at + 1 :])
    assert failures(changed) == [("chain-broken", log_name(3))]
    # ...and the last entry changed no longer has the checkpoint's head
    entry = dict(bp.members(valid()))[log_name(6)]
    at = entry.index(b'"time":') + 8
    changed = bp.edit(valid(), log_name(6), lambda d: d[:at] + b"9" + d[at + 1 :])
    assert failures(changed) == [("fork", "checkpoint.json")]


def test_a_signature_byte_changed_is_named() -> None:
    name = prefix("ack") + "signature.bin"
    assert failures(bp.flip(valid(), name, 0)) == [
        ("item-altered", name), ("bad-signature", prefix("ack") + "content.json"),
    ]  # fmt: skip


def test_the_manifest_changed_or_signed_by_another_key_is_named() -> None:
    assert failures(bp.flip(valid(), MANIFEST, 5)) == [("malformed", MANIFEST)]
    pairs = bp.members(valid())
    m = Manifest.decode(pairs[0][1])
    payload = dict(m.signed.payload_json(what="test"))
    payload["created"] = bp.EXPORTED - 3600  # backdated by someone without the node's key
    forged = sign_object(payload, labels.BUNDLE, [SigningKey.generate()]).encode()
    assert failures(bp.rebuild([(MANIFEST, forged), *pairs[1:]])) == [("bad-signature", MANIFEST)]
    resigned = SignedObject(sign_object(payload, labels.BUNDLE, []).payload, m.signed.signatures)
    assert failures(bp.rebuild([(MANIFEST, resigned.encode()), *pairs[1:]])) == [
        ("bad-signature", MANIFEST)
    ]
    twice = sign_object(payload, labels.BUNDLE, [exchange().net.members["FR-PNF"].identity,
                                                  SigningKey.generate()])  # fmt: skip
    assert failures(bp.rebuild([(MANIFEST, twice.encode()), *pairs[1:]])) == [
        ("bad-signature", MANIFEST)
    ]


def test_a_member_removed_is_named() -> None:
    name = prefix("request") + "receipt-DE-BKA.json"
    assert failures(bp.edit(valid(), name, lambda d: None)) == [("item-missing", name)]
    name = prefix("ack") + "envelope.bin"
    assert failures(bp.edit(valid(), name, lambda d: None)) == [("item-missing", name)]


def test_a_member_added_is_named() -> None:
    name = prefix("request") + "evidence-9.json"
    ev = dict(bp.members(valid()))[prefix("request") + "evidence-1.json"]
    assert failures(bp.add(valid(), name, ev)) == [("item-unlisted", name)]


def test_an_attachment_byte_changed_is_named() -> None:
    name = prefix("request") + "attachment-1"
    assert failures(bp.flip(valid(), name, 1000)) == [("item-altered", name)]


def test_a_bundle_of_another_network_than_the_pinned_one_is_refused() -> None:
    other = build_network().genesis.fingerprint()
    assert failures(valid(), pinned=other) == []
    assert failures(valid(), pinned="00000 " * 12) == [("genesis-mismatch", "genesis.json")]


def test_bytes_of_the_container_changed_are_refused_as_the_file() -> None:
    data = valid()
    assert failures(data[:-1]) == [("truncated", None)]
    assert failures(data + b"x") == [("malformed", None)]
    pairs = bp.members(data)
    assert failures(bp.rebuild([*pairs[1:], pairs[0]])) == [("malformed", None)]
    swapped = [pairs[0], pairs[2], pairs[1], *pairs[3:]]
    assert failures(bp.rebuild(swapped)) == [("malformed", None)]
    crc_only = bytearray(data)
    crc_only[14] ^= 1  # the manifest's stated CRC-32, in its local header
    assert failures(bytes(crc_only)) == [("malformed", None)]


def test_a_member_with_a_wrong_stated_crc_is_altered() -> None:
    """The container is well formed, but the CRC both headers state is not the bytes'."""
    pairs = bp.members(valid())
    specs = layout(*_items(pairs))
    name = prefix("answer") + "content.json"
    specs = [dataclasses.replace(s, crc=s.crc ^ 1) if s.name == name else s for s in specs]
    assert failures(encode_container(specs)) == [("item-altered", name)]


def _items(pairs: list[tuple[str, bytes]]) -> tuple[Item, list[Item]]:
    items = [Item.of(n, d) for n, d in pairs]
    return items[0], items[1:]


# --- the manifest, the genesis, the log ----------------------------------------------------------


def _with_manifest(payload: dict[str, Any], signer: str = "FR-PNF") -> bytes:
    pairs = bp.members(valid())
    key = exchange().net.members[signer].identity
    return bp.rebuild([(MANIFEST, sign_object(payload, labels.BUNDLE, [key]).encode()),
                       *pairs[1:]])  # fmt: skip


def _payload() -> dict[str, Any]:
    return dict(Manifest.decode(bp.members(valid())[0][1]).signed.payload_json(what="t"))


@pytest.mark.parametrize(
    ("change", "slug"),
    [
        ({"type": "bundles"}, "malformed"),
        ({"v": 2}, "unsupported-version"),
        ({"case": "no spaces"}, "malformed"),
        ({"attachments": "some"}, "malformed"),
        ({"exporter": "fr-pnf"}, "invalid-identifier"),
        ({"message": "x"}, "invalid-identifier"),
        ({"extra": 1}, "unknown-field"),
        ({"items": []}, "malformed"),
    ],
)
def test_a_manifest_out_of_its_rules_is_refused(change: dict[str, Any], slug: str) -> None:
    assert failures(_with_manifest({**_payload(), **change})) == [(slug, MANIFEST)]


def test_manifest_items_are_sorted_known_names_and_never_the_manifest() -> None:
    items = _payload()["items"]
    assert failures(_with_manifest({**_payload(), "items": items[::-1]})) == [
        ("malformed", MANIFEST)
    ]
    for bad in ("manifest.json", "notes.txt", "log/1.json"):
        extra = {"name": bad, "sha256": items[0]["sha256"], "size": 1}
        assert failures(_with_manifest({**_payload(), "items": [*items, extra]})) == [
            ("malformed", MANIFEST)
        ], bad


def test_the_first_member_must_be_the_manifest_and_names_must_be_known() -> None:
    pairs = bp.members(valid())
    assert failures(bp.rebuild(pairs[1:])) == [("malformed", None)]
    assert failures(bp.rebuild([*pairs, ("README.txt", b"hello")])) == [("malformed", None)]


def test_a_manifest_of_another_network_or_exporter_is_refused() -> None:
    other = canonical.b64e(bytes(32))
    assert failures(_with_manifest({**_payload(), "network": other})) == [("malformed", MANIFEST)]
    stranger = _with_manifest({**_payload(), "exporter": "PT-PJ"}, signer="DE-BKA")
    assert failures(stranger) == [
        ("unknown-member", MANIFEST),
        *sorted(("malformed", prefix(w) + "envelope.bin") for w in ("answer", "ack", "request")),
    ]
    # DE-BKA signing as the exporter: only FR-PNF's key verifies FR-PNF's manifest
    assert failures(_with_manifest(_payload(), signer="DE-BKA")) == [("bad-signature", MANIFEST)]


def test_the_genesis_must_be_there_and_valid() -> None:
    assert failures(bp.edit(valid(), "genesis.json", lambda d: None)) == [
        ("item-missing", "genesis.json")
    ]
    assert failures(bp.flip(valid(), "genesis.json", 10)) == [("malformed", "genesis.json")]


def test_the_log_slice_runs_from_entry_one_to_the_checkpoint() -> None:
    assert failures(bp.edit(valid(), log_name(2), lambda d: None)) == [
        ("item-missing", log_name(2)), ("chain-broken", log_name(3)),
    ]  # fmt: skip
    assert failures(bp.edit(valid(), log_name(6), lambda d: None)) == [
        ("item-missing", log_name(6)), ("rollback", "checkpoint.json"),
    ]  # fmt: skip
    assert failures(bp.edit(valid(), "checkpoint.json", lambda d: None)) == [
        ("item-missing", "checkpoint.json")
    ]
    net = exchange().net
    five = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=5, head=net.directory.heads[5],
                           time=NOW).signed.encode()  # fmt: skip
    assert failures(exchange().bundle(checkpoint_bytes=five)) == [("malformed", "checkpoint.json")]
    forked = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=6, head=bytes(32),
                             time=NOW).signed.encode()  # fmt: skip
    assert failures(exchange().bundle(checkpoint_bytes=forked)) == [("fork", "checkpoint.json")]
    real = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=6, head=net.directory.head,
                           time=NOW)  # fmt: skip
    forged = SignedObject(real.signed.payload, ()).with_signature(labels.CHECKPOINT,
                                                                  net.admins[0])  # fmt: skip
    assert failures(exchange().bundle(checkpoint_bytes=forged.encode())) == [
        ("bad-signature", "checkpoint.json")
    ]


def test_a_checkpoint_older_than_a_signature_it_must_cover_is_stale() -> None:
    net = exchange().net
    early = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=6, head=net.directory.head,
                            time=bp.ANSWER_AT).signed.encode()  # fmt: skip
    # the answer's receipt (ANSWER_AT + 1) is the latest time the bundle relies on
    assert failures(exchange().bundle(checkpoint_bytes=early)) == [
        ("log-stale", prefix("answer") + "receipt-FR-PNF.json")
    ]


# --- the API ------------------------------------------------------------------------------------


def test_failures_read_as_one_line_each() -> None:
    f = Failure.of(MalformedError("two\n  lines"), None)
    assert f.line() == "malformed: two lines"
    assert Failure.of(MalformedError("x"), "a.json").line() == "malformed: a.json: x"
    assert f.to_json() == {"slug": "malformed", "error": "MalformedError", "item": None,
                           "detail": "two\n  lines"}  # fmt: skip
    report = verify_bundle(b"")
    with pytest.raises(MalformedError):
        report.raise_first()
    assert report.to_json()["provenance"] is None


def test_building_refuses_an_item_twice() -> None:
    m = exchange().request
    with pytest.raises(UsageError, match="each item once"):
        build_bundle(
            genesis=exchange().net.genesis, entries=exchange().net.entries,
            checkpoint=bp.checkpoint(exchange().net), messages=[m, m],
            exporter=AuthorityId.parse("FR-PNF"),
            identity=exchange().net.members["FR-PNF"].identity, created=NOW,
        )  # fmt: skip


def test_a_manifest_lists_what_it_is_given_signed_by_the_exporter() -> None:
    item = Item.of("genesis.json", b"g")
    net = exchange().net
    manifest = sign_manifest(
        [item], genesis=net.genesis, exporter=AuthorityId.parse("FR-PNF"),
        identity=net.members["FR-PNF"].identity, created=5, case="C-1",
        message=MessageId.parse("a" * 32), included=False,
    )  # fmt: skip
    m = Manifest.decode(manifest.raw())
    assert (m.case, str(m.message), m.included, m.created) == ("C-1", "a" * 32, False, 5)
    assert m.items == (("genesis.json", item.sha256, 1),)
    assert BundleMessage(b"e", b"c", b"s").receipts == ()
