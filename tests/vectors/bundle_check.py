"""bundle.json verified from the JSON alone (tests/protocol/test_vectors.py): the valid bundle
verifies against its pinned genesis fingerprint with the messages it lists, and each refusal
gives exactly its failures, in order (PROTOCOL.md §9.3)."""

from __future__ import annotations

from typing import Any

from protocol.bundle import verify_bundle

__all__ = ["check_bundle"]


def _mutate(data: bytes, mutation: dict[str, Any]) -> bytes:
    op = mutation["op"]
    if op == "steps":
        for step in mutation["steps"]:
            data = _mutate(data, step)
        return data
    if op == "set":
        patch, off = bytes.fromhex(mutation["bytes"]), mutation["offset"]
        return data[:off] + patch + data[off + len(patch) :]
    if op == "truncate":
        return data[: mutation["length"]]
    assert op == "append", op
    return data + bytes.fromhex(mutation["bytes"])


def check_bundle(v: dict[str, Any]) -> None:
    valid = bytes.fromhex(v["bundle"])
    report = verify_bundle(valid, pinned=v["genesis_fingerprint"])
    assert report.ok, [f.line() for f in report.failures]
    assert report.provenance is not None
    assert report.provenance.manifest_digest == v["manifest_digest"]
    assert [
        {"id": m.message_id, "sender": m.sender, "kind": m.kind, "created": m.created,
         "basis": m.basis}
        for m in report.messages
    ] == v["messages"]  # fmt: skip
    names = set()
    for case in v["invalid"]:
        if "bundle" in case:
            data = bytes.fromhex(case["bundle"])
        else:
            assert case["derived_from"] == "bundle.json"
            data = _mutate(valid, case["mutation"])
        got = verify_bundle(data, pinned=case.get("pinned"))
        assert [[f.slug, f.item] for f in got.failures] == case["failures"], case["name"]
        assert got.failures[0].error == case["error"], case["name"]
        names.add(case["name"])
    assert len(names) == len(v["invalid"]) >= 15
