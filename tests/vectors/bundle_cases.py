"""bundle.json: a valid evidence bundle of the vector network and the bundles that must be
refused, each with its first error and every failure (PROTOCOL.md §9.3).

The exchange is tests/vectors/bundle_parts.py's: its request is envelope_1.json's envelope,
its two replies are sealed through the HPKE pool (their ciphertexts are recorded in
``wraps``, so a regeneration reproduces them).  A refusal made by changing bytes of the
valid bundle is recorded as ``derived_from`` plus a ``mutation`` (the ops of
``vectorlib.mutate``); one built afresh (other messages, another log slice) is given whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from protocol import labels
from protocol.bundle import BundleMessage, Manifest, log_name, verify_bundle
from protocol.devnet import DevNetwork
from protocol.membership import make_checkpoint
from protocol.messages import Handling, Tlp
from protocol.signed import sign_object
from tests.vectors import bundle_parts as bp
from tests.vectors.vectorlib import (
    ADMIT_AT,
    NOW,
    SUSPEND_AT,
    HpkePool,
    Json,
    build_network,
    h,
    member,
)

__all__ = ["build_bundle_vectors"]

NAME: Final = "bundle.json"
ZERO_PIN: Final = " ".join(["00000"] * 12)


def _diff(base: bytes, other: bytes) -> Json:
    """A mutation turning ``base`` into ``other``: runs of ``set`` for a bundle of the same
    length, else a ``truncate`` or an ``append`` where that is all it takes."""
    if len(other) < len(base) and base.startswith(other):
        return {"op": "truncate", "length": len(other)}
    if len(other) > len(base) and other.startswith(base):
        return {"op": "append", "bytes": h(other[len(base) :])}
    assert len(other) == len(base)
    steps: list[Json] = []
    i = 0
    while i < len(base):
        if base[i] == other[i]:
            i += 1
            continue
        j = i
        while j < len(base) and base[j] != other[j]:
            j += 1
        steps.append({"op": "set", "offset": i, "bytes": h(other[i:j])})
        i = j
    return steps[0] if len(steps) == 1 else {"op": "steps", "steps": steps}


class _Cases:
    def __init__(self, valid: bytes) -> None:
        self.valid = valid
        self.items: list[Json] = []

    def add(
        self, name: str, rule: str, data: bytes, *, pinned: str | None = None, whole: bool = False
    ) -> None:
        report = verify_bundle(data, pinned=pinned)
        assert report.failures, name
        case: Json = {
            "name": name,
            "rule": rule,
            "error": report.failures[0].error,
            "failures": [[f.slug, f.item] for f in report.failures],
        }
        if pinned is not None:
            case["pinned"] = pinned
        if whole or (len(data) != len(self.valid) and not _prefixed(self.valid, data)):
            case["bundle"] = h(data)
        else:
            case["derived_from"] = NAME
            case["mutation"] = _diff(self.valid, data)
        self.items.append(case)


def _prefixed(a: bytes, b: bytes) -> bool:
    return a.startswith(b) or b.startswith(a)


def _manifest(data: bytes, change: Callable[[dict[str, Any]], None], net: DevNetwork) -> bytes:
    pairs = bp.members(data)
    payload = dict(Manifest.decode(pairs[0][1]).signed.payload_json(what="vector"))
    change(payload)
    signed = sign_object(payload, labels.BUNDLE, [member(net, "FR-PNF").identity]).encode()
    return bp.rebuild([(pairs[0][0], signed), *pairs[1:]])


def _sent_to_fr(
    net: DevNetwork, pool: HpkePool, wraps: list[Json], name: str, *, sender: str,
    handling: Handling, created: int,
) -> BundleMessage:  # fmt: skip
    s = bp.seal(net, pool, name, sender=sender, recipients=[("FR-PNF", 9)],
                content=bp.information(name, handling), created=created)  # fmt: skip
    wraps += s.wraps
    return bp.held(net, s, sender, created + 1)


def build_bundle_vectors(pool: HpkePool, request_envelope: bytes) -> Json:
    """bundle.json."""
    net = build_network()
    ex = bp.exchange(net, pool, request_envelope)
    valid = ex.bundle()
    report = verify_bundle(valid, pinned=net.genesis.fingerprint())
    assert report.ok
    c = _Cases(valid)
    req = f"messages/FR-PNF/{ex.sealed['request'].message_id}/"
    c.add("a bundle cut short", "§9.3.1: the container ends inside its central directory",
          valid[:-1])  # fmt: skip
    c.add("a byte after the end record", "§9.3.1: nothing after the end record", valid + b"\0")
    c.add("a content byte changed", "§9.3.5: an item's SHA-256 differs from the manifest's",
          bp.flip(valid, req + "content.json", 30))  # fmt: skip
    c.add("an attachment byte changed", "§9.3.5: an item's SHA-256 differs from the manifest's",
          bp.flip(valid, req + "attachment-1", 100))  # fmt: skip
    c.add("a receipt removed", "§9.3.5: every item the manifest lists is in the bundle",
          bp.edit(valid, req + "receipt-DE-BKA.json", lambda d: None))  # fmt: skip
    ev = dict(bp.members(valid))[req + "evidence-1.json"]
    c.add("an evidence item added", "§9.3.5: every item of the bundle is listed by the manifest",
          bp.add(valid, req + "evidence-3.json", ev))  # fmt: skip
    c.add("a bundle of another network than the pinned one",
          "§9.3.5: the genesis has the pinned fingerprint", valid, pinned=ZERO_PIN)  # fmt: skip
    c.add("a manifest backdated by another key",
          "§9.3.3: the manifest is signed by the exporter's certified identity key",
          _resigned(valid, net))  # fmt: skip
    c.add("a manifest with a field of its own", "§9.3.3: the manifest has no other field",
          _manifest(valid, lambda p: p.update(note="added"), net), whole=True)  # fmt: skip
    c.add("a manifest of version 2", "§9.3.3: the manifest's version is 1",
          _manifest(valid, lambda p: p.update(v=2), net), whole=True)  # fmt: skip
    entry = dict(bp.members(valid))[log_name(2)]
    at = entry.index(b'"time":') + 8
    c.add("a log entry's time changed", "§9.3.5: the log slice replays from the genesis",
          bp.edit(valid, log_name(2), lambda d: d[:at] + b"9" + d[at + 1 :]))  # fmt: skip
    cp = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=6, head=net.directory.head,
                         time=NOW).signed.encode()  # fmt: skip
    c.add("a checkpoint beyond the slice", "§9.3.5: the slice runs from entry 1 to the checkpoint",
          ex.bundle(entries=net.entries[:5], checkpoint_bytes=cp), whole=True)  # fmt: skip
    forked = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=6, head=bytes(32),
                             time=NOW).signed.encode()  # fmt: skip
    c.add("a checkpoint of another head", "§9.3.5: the checkpoint's head is the slice's",
          ex.bundle(checkpoint_bytes=forked), whole=True)  # fmt: skip
    early = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=6, head=net.directory.head,
                            time=bp.ANSWER_AT).signed.encode()  # fmt: skip
    c.add("a checkpoint older than a receipt", "§9.3.5: the checkpoint is no older than the"
          " latest time a membership fact is judged at", ex.bundle(checkpoint_bytes=early),
          whole=True)  # fmt: skip
    wraps = list(ex.wraps)
    suspended = _sent_to_fr(net, pool, wraps, "bundle/suspended", sender="ES-FCC",
                            handling=Handling(Tlp.GREEN), created=SUSPEND_AT + 100)  # fmt: skip
    c.add("a message signed while its author was suspended",
          "§9.3.5: the signer was an active member when it signed",
          ex.bundle([*ex.messages, suspended]), whole=True)  # fmt: skip
    before = _sent_to_fr(net, pool, wraps, "bundle/before", sender="DE-BKA",
                         handling=Handling(Tlp.GREEN), created=ADMIT_AT - 60)  # fmt: skip
    c.add("a message dated before its author was admitted",
          "§9.3.5: the signer's key was certified when it signed",
          ex.bundle([*ex.messages, before]), whole=True)  # fmt: skip
    red = _sent_to_fr(
        net,
        pool,
        wraps,
        "bundle/red",
        sender="DE-BKA",
        handling=Handling(Tlp.RED),
        created=NOW - 10,
    )
    c.add("another authority's RED message without its consent",
          "§9.3.6: restricted material of another authority needs its consent to the export",
          ex.bundle([*ex.messages, red]), whole=True)  # fmt: skip
    return {
        "description": (
            "An evidence bundle (PROTOCOL.md §9.3): FR-PNF's export of its request to DE-BKA "
            "(envelope_1.json's envelope, with the hub's accepted and delivered evidence, "
            "DE-BKA's receipt and the attachment of attachment.json) and DE-BKA's "
            "acknowledgement and answer (with FR-PNF's receipts), over the six entries of "
            "log.json and the hub's checkpoint at 'now'. Verify it against the genesis "
            "fingerprint 'genesis_fingerprint'. 'invalid' lists bundles to refuse: 'error' "
            "is the first refusal, 'failures' every one in check order, as [slug, item]; a "
            "case with 'derived_from' is the valid bundle changed by 'mutation', otherwise "
            "'bundle' is given whole; 'pinned' is the fingerprint the verifier pins. 'wraps' "
            "records the HPKE ciphertexts of the envelopes sealed for this file."
        ),
        "now": NOW,
        "genesis_fingerprint": net.genesis.fingerprint(),
        "bundle": h(valid),
        "messages": [
            {
                "id": m.message_id,
                "sender": m.sender,
                "kind": m.kind,
                "created": m.created,
                "basis": m.basis,
            }
            for m in report.messages
        ],
        "manifest_digest": report.provenance.manifest_digest if report.provenance else None,
        "wraps": wraps,
        "invalid": c.items,
    }


def _resigned(data: bytes, net: DevNetwork) -> bytes:
    """The manifest re-signed by DE-BKA's key under FR-PNF's name (same length)."""
    pairs = bp.members(data)
    m = Manifest.decode(pairs[0][1])
    forged = sign_object(m.signed.payload_json(what="vector"), labels.BUNDLE,
                         [member(net, "DE-BKA").identity]).encode()  # fmt: skip
    return bp.rebuild([(pairs[0][0], forged), *pairs[1:]])
