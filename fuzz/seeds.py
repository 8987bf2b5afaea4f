"""The seed corpus: ``fuzz/corpus/<target>/<sha256 prefix>``, taken from the vectors.

Each target's seeds are the vector values it decodes — valid ones, so mutations
start deep inside the structure, and the invalid ones of ``invalid.json``,
``canonical.json`` and ``attachment.json``, so they start next to a refusal —
plus a few made here where the vectors have none (strict JSON bodies of the APIs'
shapes; a member profile, signed with a vector key, and its log entry).
``python -m fuzz.seeds`` rewrites the directories; run it after the vectors change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from fuzz.context import context, load_vectors
from protocol import canonical
from protocol.ids import AuthorityId
from protocol.profile import Contact, make_profile, make_profile_entry

__all__ = ["CORPUS", "corpus", "seeds", "write_corpus"]

#: The seed corpus directory (one subdirectory per target).
CORPUS: Final = Path(__file__).resolve().parent / "corpus"


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


def _cases(structure: str, field: str) -> Iterator[bytes]:
    """The ``field`` of every case of ``structure`` in ``valid.json`` and ``invalid.json``."""
    for name in ("valid", "invalid"):
        for case in load_vectors(name)["cases"]:
            if case["structure"] == structure and field in case:
                value = case[field]
                yield value.encode() if field == "text" else _hex(value)


def _cases_list(structure: str, field: str) -> Iterator[bytes]:
    """Like :func:`_cases` for a field that holds a list of hex values."""
    for name in ("valid", "invalid"):
        for case in load_vectors(name)["cases"]:
            if case["structure"] == structure:
                yield from (_hex(v) for v in case.get(field) or ())


def _signed_payloads() -> Iterator[bytes]:
    yield _hex(load_vectors("genesis")["payload"])
    for app in load_vectors("application")["applications"]:
        yield _hex(app["payload"])
    for admit in load_vectors("certificate")["admits"]:
        yield _hex(admit["payload"])
    yield _hex(load_vectors("checkpoint")["payload"])
    for p in load_vectors("prekey")["prekeys"]:
        yield _hex(p["payload"])
    yield _hex(load_vectors("receipt")["payload"])
    for ev in load_vectors("evidence")["evidence"]:
        yield _hex(ev["payload"])
    for req in load_vectors("key_update")["requests"].values():
        yield _hex(req["payload"])


def _requests() -> Iterator[bytes]:
    """Signed requests as the request_auth target reads them: header, method, target, body."""
    cases = list(load_vectors("request_auth")["cases"])
    for name in ("valid", "invalid"):
        cases += [c for c in load_vectors(name)["cases"] if c["structure"] == "request_auth"]
    for r in cases:
        yield b"\n".join(
            (r["header"].encode(), r["method"].encode(), r["target"].encode(), _hex(r["body"]))
        )


def _envelopes() -> Iterator[dict[str, Any]]:
    yield load_vectors("envelope_1")
    yield load_vectors("envelope_3")


def _log_entries() -> list[bytes]:
    entries = [_hex(e["entry"]) for e in load_vectors("log")["entries"]]
    return entries + [_hex(e["entry"]) for e in load_vectors("directory")["entries"]]


def _b64(text: str) -> bytes:
    return canonical.b64d(text, what="seed")


def _profile_entry() -> bytes:
    """A profile of FR-PNF as entry 7 of ``log.json`` (the vectors have none yet)."""
    ctx = context()
    profile = make_profile(
        genesis=ctx.genesis, authority=AuthorityId.parse("FR-PNF"), seq=1,
        identity=ctx.signer("FR-PNF"), offences=["bribery", "money-laundering"],
        time_zone="Europe/Paris",
        contacts=[
            Contact(role="duty-desk", label="Permanence", hours="24/7", languages=("en", "fr")),
            Contact(role="mutual-legal-assistance", email="mla@pnf.example", phone="+33100000000"),
        ],
        note="Requests in English or French.",
    )  # fmt: skip
    state = ctx.directory()
    return make_profile_entry(
        genesis=ctx.genesis, seq=state.seq + 1, prev=state.head, time=state.time,
        profile=profile.signed,
    )  # fmt: skip


def _member(entry: bytes, name: str) -> bytes | None:
    """A signed container inside a log entry (``action`` or ``profile``), as its own bytes."""
    obj = json.loads(entry)
    return canonical.encode(obj[name]) if name in obj else None


#: Strict JSON bodies of the shapes the APIs take, and the refusals of PROTOCOL.md §2.8.
_STRICT_JSON: Final = (
    b'{"receipts": ["eyJwYXlsb2FkIjoiIn0"], "notices": [1, 2, 3]}',
    b'{"answer": "AAAA"}',
    b'{"reason": "rejected by decision of the admins", "limit": 100, "after": 0}',
    b'[true, false, null, -9007199254740991, 9007199254740991, "\\u00e9\\ud83d\\ude00"]',
    b'{"a": {"b": {"c": [[[]]]}}, "\\u0000": "\\n\\t\\r\\"\\\\/"}',
    b" \t\n\r{}\r\n",
)


def seeds() -> dict[str, list[bytes]]:  # noqa: PLR0915 - one corpus after another
    """Each target's seed inputs, from the vectors (deduplicated, in a stable order)."""
    out: dict[str, list[bytes]] = {}
    can = load_vectors("canonical")
    payloads = list(_signed_payloads())
    fwd = load_vectors("forward")
    headers = [_hex(e["header"]) for e in _envelopes()]
    headers += [_hex(fwd["origin"]["header"]), _hex(fwd["grant"]["header"])]
    headers += _cases("envelope_header", "header")
    out["canonical"] = [
        *(_hex(v["encoding"]) for v in can["valid"]),
        *(_hex(v["input"]) for v in can["invalid"]),
        *payloads,
        *headers,
    ]
    out["base64url"] = [
        *(v["text"].encode("ascii") for v in can["base64url"]["valid"]),
        *(v["text"].encode("ascii") for v in can["base64url"]["invalid"]),
        *_cases("base64url", "text"),
    ]
    strict = load_vectors("strict_json")
    out["strictjson"] = [
        *_STRICT_JSON,
        *(_hex(v["input"]) for v in strict["valid"]),
        *(_hex(v["input"]) for v in strict["invalid"]),
    ]
    out["envelope"] = [
        *(_hex(e["envelope"]) for e in _envelopes()),
        *_cases("envelope_parse", "envelope"),
        *_cases("envelope_open", "envelope"),
        *_cases("envelope_hub_check", "envelope"),
    ]
    out["envelope_header"] = headers
    entries = _log_entries()
    profile_entry = _profile_entry()
    out["log_entry"] = [*entries, profile_entry, *_cases_list("log", "entries")]
    actions = [a for a in (_member(e, "action") for e in entries) if a is not None]
    admits = load_vectors("certificate")["admits"]
    out["action"] = [*(_hex(a["action"]) for a in admits), *actions]
    out["action_payload"] = [
        *(_hex(a["payload"]) for a in admits),
        *(_b64(json.loads(a)["payload"]) for a in actions),
    ]
    cp = load_vectors("checkpoint")
    out["checkpoint"] = [
        _hex(cp["checkpoint"]),
        *_cases("checkpoint", "checkpoint"),
        *_cases("checkpoint_check", "checkpoint"),
    ]
    out["checkpoint_payload"] = [_hex(cp["payload"])]
    evidence = load_vectors("evidence")["evidence"]
    out["evidence"] = [*(_hex(e["evidence"]) for e in evidence), *_cases("evidence", "evidence")]
    out["evidence_payload"] = [_hex(e["payload"]) for e in evidence]
    receipt = load_vectors("receipt")
    out["receipt"] = [
        _hex(receipt["receipt"]),
        *_cases("receipt", "receipt"),
        *(_hex(r["receipt"]) for r in load_vectors("directory")["receipts"]),
    ]
    out["receipt_payload"] = [_hex(receipt["payload"])]
    prekeys = load_vectors("prekey")["prekeys"]
    out["prekey"] = [*(_hex(p["prekey"]) for p in prekeys), *_cases("prekey", "prekey")]
    out["prekey_payload"] = [_hex(p["payload"]) for p in prekeys]
    apps = load_vectors("application")["applications"]
    out["application"] = [
        *(_hex(a["application"]) for a in apps),
        *_cases("application", "application"),
    ]
    out["application_payload"] = [_hex(a["payload"]) for a in apps]
    key_updates = load_vectors("key_update")["requests"].values()
    out["key_update"] = [
        *(_hex(r["request"]) for r in key_updates),
        *_cases("key_update", "request"),
    ]
    out["key_update_payload"] = [_hex(r["payload"]) for r in key_updates]
    profiles = [p for p in (_member(e, "profile") for e in out["log_entry"]) if p is not None]
    out["profile"] = profiles
    out["profile_payload"] = [_b64(json.loads(p)["payload"]) for p in profiles]
    genesis = load_vectors("genesis")
    out["genesis"] = [_hex(genesis["genesis"]), *_cases("genesis", "genesis")]
    out["genesis_payload"] = [_hex(genesis["payload"])]
    out["request_auth"] = list(_requests())
    att = load_vectors("attachment")
    blob = _hex(att["blob"])
    out["attachment"] = [blob] + [
        b"".join(
            blob[p["from"] : p["to"]] if "from" in p else _hex(p["hex"]) for p in case["parts"]
        )
        for case in att["invalid"]
    ]
    contents = [_hex(e["content"]) for e in _envelopes()]
    contents += [
        _hex(fwd["origin"]["content"]),
        _hex(fwd["grant"]["content"]),
        _hex(fwd["forward"]),
    ]
    contents += [_hex(m["content"]) for m in load_vectors("message")["messages"]]
    out["message"] = [
        *contents,
        *_cases("message", "content"),
        *_cases("status_workflow", "content"),
        *_cases("signed_content", "content"),
    ]
    out["forward"] = [_hex(fwd["forward"]), *(_hex(c["forward"]) for c in fwd["invalid"])]
    members = load_vectors("log")["members"]
    out["ids"] = [
        *(m["authority"].encode() for m in members),
        *(m["identity_key_id"].encode() for m in members),
        *(m["ka_key_id"].encode() for m in members),
        _hex(receipt["message_id"]).hex().encode(),
        genesis["network_id"].encode(),
        *(
            t
            for kind in ("authority_id", "key_id", "message_id", "network_id")
            for t in _cases(kind, "text")
        ),
    ]
    keys = load_vectors("keys")
    out["public_keys"] = [
        *(_hex(k["public_key"]) for k in keys["ed25519"]),
        *(_hex(k["public_key"]) for k in keys["kem"]),
        *_cases("ed25519_public", "key"),
        *_cases("kem_public", "key"),
    ]
    return {name: list(dict.fromkeys(values)) for name, values in out.items()}


def _name(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def write_corpus(root: Path = CORPUS) -> dict[str, int]:
    """Rewrite ``root/<target>/`` from :func:`seeds`; the number of files per target."""
    written: dict[str, int] = {}
    for target, values in seeds().items():
        directory = root / target
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        for value in values:
            (directory / _name(value)).write_bytes(value)
        written[target] = len(values)
    return written


def corpus(target: str, root: Path = CORPUS) -> list[bytes]:
    """The seed files of ``target``, sorted by name (empty if it has none)."""
    directory = root / target
    if not directory.is_dir():
        return []
    return [p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()]


def main() -> None:
    """Write the corpus and say how many seeds each target got."""
    for target, count in write_corpus().items():
        print(f"{target:20} {count:3} seeds")


if __name__ == "__main__":
    main()
