"""The committed test vectors (tests/vectors/*.json) against the implementation.

* ``test_regenerate_matches_files``: ``generate.build_vectors()`` reproduces the
  committed files exactly.  HPKE encapsulation randomness cannot be injected, so the
  generator reuses the committed ciphertexts while they still open to the expected
  plaintext; the test checks that everything covering them (outer signatures,
  envelope bytes and hashes, mutated envelopes) follows from them.
* ``test_verify_from_json_alone``: each file, read as JSON only, verifies with
  the public API -- what a second implementation written from docs/PROTOCOL.md
  has to do with the same files.  Every refusal (invalid.json and the ``invalid``
  lists of the other files) must raise exactly its error class; every input of
  valid.json must be accepted.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import pytest

import protocol.errors
from protocol import canonical, crypto, labels, strictjson
from protocol.attachments import AttachmentDecryptor, AttachmentEncryptor, encrypted_size
from protocol.directory import DirectoryState, verify_log
from protocol.envelope import (
    MAX_ENVELOPE_SIZE,
    check_recipients_active,
    decode_header,
    envelope_hash,
    open_envelope,
    parse_envelope,
    verify_envelope,
)
from protocol.errors import GlobeError
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId, NetworkId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey
from protocol.keystore import open_secret
from protocol.keyupdate import KeyUpdateRequest
from protocol.membership import (
    Application,
    Checkpoint,
    LogEntry,
    MembershipAction,
    authority_fingerprint,
    kem_pop_answer,
)
from protocol.messages import MessageContent, Party, SignedContent, check_status_sender
from protocol.origin import verify_forward, verify_signed_content
from protocol.prekeys import SignedPrekey
from protocol.profile import CONTACT_ROLES, OFFENCE_AREAS, Profile, ProfileEntry, decode_log_entry
from protocol.receipts import DeliveryReceipt, Evidence
from protocol.replay import NonceWindow, SeenSet, classify_seq
from protocol.requestauth import parse_request_auth, verify_request
from protocol.signed import SignedObject, verify_quorum
from tests.vectors.bundle_check import check_bundle

Json = dict[str, Any]

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
FILES = [
    "keys.json",
    "canonical.json",
    "strict_json.json",
    "keystore.json",
    "genesis.json",
    "application.json",
    "kem_pop.json",
    "certificate.json",
    "log.json",
    "directory.json",
    "profile.json",
    "key_update.json",
    "checkpoint.json",
    "prekey.json",
    "receipt.json",
    "evidence.json",
    "request_auth.json",
    "replay.json",
    "message.json",
    "envelope_1.json",
    "envelope_3.json",
    "envelope_ka.json",
    "attachment.json",
    "forward.json",
    "bundle.json",
    "invalid.json",
    "valid.json",
]
ENVELOPE_FILES = ("envelope_1.json", "envelope_3.json", "envelope_ka.json")


def b(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def inp(case: Json, field: str) -> bytes:
    """A case's input: the field's bytes, then ``pad_spaces`` spaces (README.md)."""
    spaces: int = case.get("pad_spaces", 0)
    return b(case[field]) + b" " * spaces


@cache
def _load_text(name: str) -> str:
    return (VECTOR_DIR / name).read_text(encoding="utf-8")


def load(name: str) -> Json:
    value: Json = json.loads(_load_text(name))
    return value


@cache
def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "globe_vectors_generate", VECTOR_DIR / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mutate(data: bytes, mutation: Json) -> bytes:  # noqa: PLR0911 - one branch per op
    """A recorded mutation of an envelope (README.md: ``derived_from``)."""
    op = mutation["op"]
    if op == "none":
        return data
    if op == "steps":
        for step in mutation["steps"]:
            data = mutate(data, step)
        return data
    if op == "xor":
        out = bytearray(data)
        out[mutation["offset"]] ^= mutation["mask"]
        return bytes(out)
    if op == "set":
        patch, off = bytes.fromhex(mutation["bytes"]), mutation["offset"]
        return data[:off] + patch + data[off + len(patch) :]
    if op == "insert":
        off = mutation["offset"]
        return data[:off] + bytes.fromhex(mutation["bytes"]) + data[off:]
    if op == "truncate":
        return data[: mutation["length"]]
    assert op == "append", op
    return data + bytes.fromhex(mutation["bytes"])


# --- regeneration ----------------------------------------------------------------------


def test_vector_files_are_exactly_the_listed_ones():
    assert sorted(p.name for p in VECTOR_DIR.glob("*.json")) == sorted(FILES)


def test_regenerate_matches_files():
    gen = _generator()
    built: dict[str, Json] = gen.build_vectors()
    assert sorted(built) == sorted(FILES)
    for name, content in built.items():
        assert gen.render(content) == _load_text(name), f"{name} differs: run generate.py --write"


def _cases() -> list[Json]:
    return [*load("invalid.json")["cases"], *load("valid.json")["cases"]]


def test_hpke_dependent_bytes_follow_from_the_ciphertexts():
    """Outer signatures, envelope bytes and hashes, and mutated envelopes are what the
    recorded wrapped keys determine (they are the only bytes fixed as data)."""
    for name in ENVELOPE_FILES:
        v = load(name)
        envelope = b(v["envelope"])
        assert envelope_hash(envelope).hex() == v["envelope_hash"]
        assert envelope[-64:].hex() == v["outer_signature"]
        assert [w.hex() for w in parse_envelope(envelope).wrapped] == [
            r["wrapped_key"] for r in v["recipients"]
        ]
    for case in _cases():
        if "derived_from" in case:
            base = b(load(case["derived_from"]["file"])["envelope"])
            assert mutate(base, case["derived_from"]["mutation"]) == b(case["envelope"]), case[
                "name"
            ]
        if "wraps" in case:
            env = parse_envelope(b(case["envelope"]))
            digest = crypto.sha256(env.header.raw)
            for wrap, wrapped in zip(case["wraps"], env.wrapped, strict=True):
                recorded = b(wrap["wrapped_key"])
                if "edit" in wrap:  # the envelope carries an edited ciphertext
                    recorded = mutate(recorded, wrap["edit"])
                assert wrapped == recorded, case["name"]
                info = crypto.labelled(labels.WRAP, digest, wrap["recipient"].encode())
                if wrap["wrap_info"] != info.hex():  # a case whose info is the defect
                    assert "wrap info" in case["name"], case["name"]


def test_the_vector_devnet_draws_one_rng_stream():
    """PROTOCOL.md §12: the admins' and the hub's seeds, then per member in order of
    admission -- IT-ANAC last, continuing the same stream -- identity, transport, KA key,
    serial and prekey, all from deterministic_rng(b"globe vectors v1")."""
    rng = crypto.deterministic_rng(b"globe vectors v1")
    g = load("genesis.json")
    assert [rng(32).hex() for _ in g["admins"]] == [a["seed"] for a in g["admins"]]
    assert rng(32).hex() == g["hub"]["seed"]
    serials = {
        a["authority"]: a["certificate"]["serial"] for a in load("certificate.json")["admits"]
    }
    prekeys = {p["authority"]: p["private_key"] for p in load("prekey.json")["prekeys"]}
    apps = load("application.json")["applications"]
    assert [a["authority"] for a in apps] == ["FR-PNF", "DE-BKA", "ES-FCC", "IT-ANAC"]
    for app in apps:
        who = app["authority"]
        assert (rng(32).hex(), rng(32).hex(), rng(96).hex()) == (
            app["identity_seed"],
            app["transport_seed"],
            app["ka_private_key"],
        ), who
        assert (rng(16).hex(), rng(96).hex()) == (serials[who], prekeys[who]), who


def test_every_case_names_its_rule():
    for case in _cases():
        assert case["rule"].startswith("§"), case["name"]
    names = [c["name"] for c in _cases()]
    assert len(set(names)) == len(names)


# --- verification from the JSON alone ------------------------------------------------------


@cache
def genesis() -> Genesis:
    return Genesis.decode(b(load("genesis.json")["genesis"]))


@cache
def extended_log() -> tuple[bytes, ...]:
    """log.json's entries, then directory.json's (``log_entries: n`` is a prefix of it)."""
    return tuple(
        b(e["entry"]) for e in [*load("log.json")["entries"], *load("directory.json")["entries"]]
    )


def log_entries() -> list[bytes]:
    return list(extended_log()[: len(load("log.json")["entries"])])


@cache
def directory(prefix: int | None = None, extra: tuple[str, ...] = ()) -> DirectoryState:
    """The directory of the first ``prefix`` entries (default: all of log.json), then ``extra``.

    Cached: the checks never mutate a state.
    """
    entries = list(extended_log()[: 6 if prefix is None else prefix])
    return verify_log(genesis(), [*entries, *(b(e) for e in extra)])


def case_directory(c: Json) -> DirectoryState:
    return directory(c["log_entries"], tuple(c.get("extra_entries", ())))


def member_table(state: DirectoryState) -> list[Json]:
    table = []
    for aid in sorted(state.members, key=str):
        m = state.members[aid]
        c = m.certificate
        table.append(
            {
                "authority": str(aid),
                "status": m.status.value,
                "serial": c.serial,
                "identity_key_id": str(c.identity_key.key_id),
                "transport_key_id": str(c.transport_key.key_id),
                "ka_key_id": str(c.ka_key().key_id),
                "last_action": m.last_action.hex(),
                "admitted_seq": m.admitted_seq,
                "updated_seq": m.updated_seq,
                "reason": m.reason,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "identity_keys": sorted(str(k) for k in m.identity_keys),
                "retired_at": {str(k): t for k, t in m.retired_at.items()},
            }
        )
    return table


def check_keys(v: Json) -> None:
    for k in v["ed25519"]:
        key = SigningKey(b(k["seed"]))
        assert bytes(key.verify_key).hex() == k["public_key"]
        assert str(key.key_id) == k["key_id"]
        assert str(KeyId.of("ed25519", b(k["public_key"]))) == k["key_id"]
    for k in v["kem"]:
        priv = KemPrivateKey(b(k["private_key"]))
        assert bytes(priv.public_key).hex() == k["public_key"]
        assert len(b(k["public_key"])) == 1216
        assert str(priv.key_id) == k["key_id"]
    for f in v["authority_fingerprints"]:
        parts = [f["authority"].encode("utf-8")] + [
            b(f[key]) for key in ("identity_key", "transport_key", "ka_key")
        ]
        data = b"".join(len(part).to_bytes(2, "big") + part for part in parts)
        assert data.hex() == f["data"], f["name"]
        assert crypto.fingerprint_digits(labels.AUTHORITY_FINGERPRINT, data) == f["fingerprint"]
        assert (
            authority_fingerprint(
                authority=AuthorityId.parse(f["authority"]),
                identity=VerifyKey(b(f["identity_key"])),
                transport=VerifyKey(b(f["transport_key"])),
                ka=KemPublicKey(b(f["ka_key"])),
            )
            == f["fingerprint"]
        ), f["name"]
    # FR-PNF, the same keys as FR-AFA, and FR-PNF with identity and transport swapped: the
    # authority id and the key order both change the value.
    assert [f["authority"] for f in v["authority_fingerprints"]] == ["FR-PNF", "FR-AFA", "FR-PNF"]
    assert len({f["fingerprint"] for f in v["authority_fingerprints"]}) == 3
    # The first case is FR-PNF of application.json: the value its applicant reads out.
    first = v["authority_fingerprints"][0]
    pnf = next(a for a in load("application.json")["applications"] if a["authority"] == "FR-PNF")
    assert [first[k] for k in ("authority", "identity_key", "transport_key", "ka_key")] == [
        pnf[k] for k in ("authority", "identity_key", "transport_key", "ka_key")
    ]
    assert (
        Application.decode(b(pnf["application"]), genesis()).fingerprint() == first["fingerprint"]
    )
    for s in v["labelled_signatures"]:
        key = SigningKey(b(s["seed"]))
        label = s["label"].encode("ascii")
        assert crypto.labelled(label, b(s["message"])).hex() == s["signed_bytes"]
        assert key.sign(label, b(s["message"])).hex() == s["signature"]
        key.verify_key.verify(label, b(s["message"]), b(s["signature"]))
    stream = crypto.deterministic_rng(b(v["deterministic_rng"]["seed"]))
    for call in v["deterministic_rng"]["calls"]:
        assert stream(call["n"]).hex() == call["output"]


def check_canonical(v: Json) -> None:
    for case in v["valid"]:
        data = b(case["encoding"])
        assert canonical.encode(case["value"]) == data, case["name"]
        assert canonical.decode(data, max_size=len(data), what="vector") == case["value"]
    for case in v["invalid"]:
        expect_error(
            case["error"],
            partial(canonical.decode, b(case["input"]), max_size=case["max_size"], what="vector"),
            case["name"],
        )
    for case in v["base64url"]["valid"]:
        assert canonical.b64e(b(case["bytes"])) == case["text"]
        assert canonical.b64d(case["text"], what="vector") == b(case["bytes"])
    for case in v["base64url"]["invalid"]:
        expect_error(
            case["error"], partial(canonical.b64d, case["text"], what="vector"), case["name"]
        )


def check_genesis(v: Json) -> None:
    g = Genesis.decode(b(v["genesis"]))
    assert g.encode().hex() == v["genesis"]
    assert g.signed.payload.hex() == v["payload"]
    assert g.digest.hex() == v["digest"]
    assert g.fingerprint() == v["fingerprint"]
    assert (str(g.network_id), g.name, g.threshold) == (v["network_id"], v["name"], v["threshold"])
    assert (g.hub_url, g.created) == (v["hub_url"], v["created"])
    assert [a.name for a in g.admins] == [a["name"] for a in v["admins"]]
    for admin, rec in zip(g.admins, v["admins"], strict=True):
        key = SigningKey(b(rec["seed"]))
        assert bytes(admin.key).hex() == rec["public_key"] == bytes(key.verify_key).hex()
        assert str(admin.key.key_id) == rec["key_id"]
    hub = SigningKey(b(v["hub"]["seed"]))
    assert bytes(g.hub_key).hex() == v["hub"]["public_key"] == bytes(hub.verify_key).hex()
    assert [str(s.key_id) for s in g.signed.signatures] == v["signers"]


def check_application(v: Json) -> None:
    assert len(v["applications"]) == 4
    for rec in v["applications"]:
        app = Application.decode(b(rec["application"]), genesis())
        assert app.signed.payload.hex() == rec["payload"]
        assert app.digest.hex() == rec["digest"]
        assert str(app.authority) == rec["authority"]
        assert (app.name, list(app.kinds), list(app.languages)) == (
            rec["name"],
            rec["kinds"],
            rec["languages"],
        )
        assert (app.contact, app.legal_basis, app.endpoint, app.created) == (
            rec["contact"],
            rec["legal_basis"],
            rec["endpoint"],
            rec["created"],
        )
        for field in ("identity", "transport"):
            key = SigningKey(b(rec[f"{field}_seed"]))
            certified = getattr(app, f"{field}_key")
            assert bytes(certified).hex() == rec[f"{field}_key"] == bytes(key.verify_key).hex()
            assert str(certified.key_id) == rec[f"{field}_key_id"]
        ka = KemPrivateKey(b(rec["ka_private_key"]))
        assert bytes(app.ka_key).hex() == rec["ka_key"] == bytes(ka.public_key).hex()
        assert str(app.ka_key.key_id) == rec["ka_key_id"]


def check_certificate(v: Json) -> None:
    g = genesis()
    apps = {a["authority"]: a for a in load("application.json")["applications"]}
    assert len(v["admits"]) == 4
    for rec in v["admits"]:
        signed = SignedObject.decode(b(rec["action"]), max_size=16 * 1024, what="action")
        action = MembershipAction.from_signed(signed, g)
        signers = verify_quorum(signed, labels.MEMBERSHIP_ACTION, g.admin_keys, g.threshold)
        assert sorted(str(k) for k in signers) == rec["signers"]
        assert len(rec["signers"]) == 2
        assert signed.payload.hex() == rec["payload"]
        assert action.digest.hex() == rec["digest"]
        assert (action.action.value, str(action.authority)) == ("admit", rec["authority"])
        assert action.issued == rec["issued"]
        assert action.prev is None
        cert = action.certificate
        assert cert is not None
        c = rec["certificate"]
        assert (cert.serial, cert.name, cert.authority.country) == (
            c["serial"],
            c["name"],
            c["country"],
        )
        assert (list(cert.kinds), list(cert.languages), cert.endpoint) == (
            c["kinds"],
            c["languages"],
            c["endpoint"],
        )
        assert bytes(cert.identity_key).hex() == c["identity_key"]
        assert bytes(cert.transport_key).hex() == c["transport_key"]
        assert cert.ka_key_raw.hex() == c["ka_key"]
        assert (cert.not_before, cert.not_after) == (c["not_before"], c["not_after"])
        assert cert.application is not None
        assert cert.application.hex() == c["application"] == apps[rec["authority"]]["digest"]
        assert c["identity_key"] == apps[rec["authority"]]["identity_key"]
        app = Application.decode(b(apps[rec["authority"]]["application"]), g)
        assert cert.fingerprint() == app.fingerprint()


def check_log(v: Json) -> None:
    g = genesis()
    state = verify_log(g, log_entries())
    assert (state.seq, state.head.hex(), state.time) == (v["seq"], v["head"], v["time"])
    prev = g.digest
    for i, rec in enumerate(v["entries"]):
        entry = LogEntry.decode(b(rec["entry"]), g)
        assert (entry.seq, entry.prev, entry.hash.hex()) == (i + 1, prev, rec["hash"])
        assert rec["hash"] == state.heads[i + 1].hex()
        prev = entry.hash
    assert member_table(state) == v["members"]
    for aid in state.members:
        state.active_member(aid, v["now"])


def check_directory(v: Json) -> None:
    """directory.json: log.json continued with update-keys, suspend, revoke, admit."""
    g = genesis()
    state = verify_log(g, list(extended_log()))
    assert (state.seq, state.head.hex(), state.time) == (v["seq"], v["head"], v["time"])
    for rec in v["entries"]:
        entry = LogEntry.decode(b(rec["entry"]), g)
        assert (entry.seq, entry.hash.hex(), entry.time) == (rec["seq"], rec["hash"], rec["time"])
        assert (entry.action.action.value, str(entry.action.authority)) == (
            rec["action"],
            rec["authority"],
        )
    assert member_table(state) == v["members"]
    fr = state.member(AuthorityId.parse("FR-PNF"))
    keys = v["keys"]
    assert bytes(SigningKey(b(keys["fr_pnf_identity_seed"])).verify_key) == bytes(
        fr.certificate.identity_key
    )
    assert KemPrivateKey(b(keys["fr_pnf_ka_private_key"])).public_key == fr.certificate.ka_key()
    de = state.member(AuthorityId.parse("DE-BKA"))
    assert bytes(SigningKey(b(keys["de_bka_transport_seed"])).verify_key) == bytes(
        de.certificate.transport_key
    )
    for rec in v["receipts"]:
        DeliveryReceipt.decode(b(rec["receipt"]), directory(rec["log_entries"]))
    for rec in v["relations"]:
        assert state.relation(rec["seq"], b(rec["head"])).value == rec["relation"], rec["name"]
    cp = Checkpoint.decode(b(v["checkpoint"]["checkpoint"]), g)
    assert state.check_checkpoint(cp).value == v["checkpoint"]["relation"]


def check_profile_file(v: Json) -> None:
    """profile.json: profile entries after directory.json's log, and the profiles they give."""
    g = genesis()
    entries = [b(e["entry"]) for e in v["entries"]]
    state = verify_log(g, [*extended_log()[: v["base_entries"]], *entries])
    assert (state.seq, state.head.hex()) == (v["seq"], v["head"])
    for rec in v["entries"]:
        entry = decode_log_entry(b(rec["entry"]), g)
        assert isinstance(entry, ProfileEntry)
        p = entry.profile
        assert (entry.seq, p.seq) == (rec["seq"], rec["profile_seq"])
        assert str(p.authority) == rec["authority"]
        assert p.signed.payload.hex() == rec["payload"]
        assert p.signed.encode().hex() == rec["container"]
        assert (p.digest.hex(), entry.hash.hex()) == (rec["digest"], rec["hash"])
        signer = state.member(p.authority).certificate.identity_key
        assert str(signer.key_id) == rec["signer"]
        p.verify(signer)
    table = []
    for aid in sorted(state.members, key=str):
        m = state.members[aid]
        if m.profile is not None:
            table.append({
                "authority": str(aid), "seq": m.profile.seq, "published": m.profile_time,
                "offences": list(m.profile.offences), "time_zone": m.profile.time_zone,
                "contacts": [c.to_json() for c in m.profile.contacts], "note": m.profile.note,
            })  # fmt: skip
    assert table == v["members"]
    vocabularies = {"offences": list(OFFENCE_AREAS), "contact_roles": list(CONTACT_ROLES)}
    assert v["vocabularies"] == vocabularies


def check_key_update(v: Json) -> None:
    """key_update.json: requests, the KEM challenge, update-keys actions and entries 7-10
    after log.json, the member table they give, and receipts that verify against them."""
    g = genesis()
    entries = [b(e["entry"]) for e in v["entries"]]
    full = [*log_entries(), *entries]
    state = verify_log(g, full)
    assert (state.seq, state.head.hex()) == (v["seq"], v["head"])
    for rec in v["entries"]:
        entry = LogEntry.decode(b(rec["entry"]), g)
        assert (entry.seq, entry.hash.hex(), entry.time) == (rec["seq"], rec["hash"], rec["time"])
    assert member_table(state) == v["members"]
    for authority, rec in v["requests"].items():
        req = KeyUpdateRequest.decode(b(rec["request"]), verify_log(g, full[: rec["log_entries"]]))
        assert str(req.authority) == authority
        assert (req.signed.payload.hex(), req.digest.hex()) == (rec["payload"], rec["digest"])
        assert (req.fingerprint(), list(req.replaced)) == (rec["fingerprint"], rec["replaced"])
        assert [str(s.key_id) for s in req.signed.signatures] == rec["signers"]
        assert SigningKey(b(rec["identity_seed"])).verify_key == req.identity_key
        assert SigningKey(b(rec["transport_seed"])).verify_key == req.transport_key
        assert KemPrivateKey(b(rec["ka_private_key"])).public_key == req.ka_key
        action = MembershipAction.from_signed(
            SignedObject.decode(b(v["actions"][authority]["action"]), max_size=1 << 16, what="a"),
            g,
        )
        assert action.certificate is not None
        assert action.certificate.application == req.digest
        assert action.certificate.identity_key == req.identity_key
        assert action.certificate.ka_key() == req.ka_key
        m = state.member(req.authority)
        assert m.identity_keys[req.identity_key.key_id] == req.identity_key
    pop = v["kem_pop"]
    assert b(pop["info"]) == b"globe/v1/kem-pop\x00" + b(pop["request_digest"])
    answer = kem_pop_answer(
        KemPrivateKey(b(pop["ka_private_key"])), b(pop["request_digest"]), b(pop["challenge"])
    )
    assert answer == b(pop["secret"])
    for rec in v["receipts"]:
        DeliveryReceipt.decode(b(rec["receipt"]), verify_log(g, full[: rec["log_entries"]]))


def check_strict_json(v: Json) -> None:
    for case in v["valid"]:
        value = strictjson.loads(b(case["input"]), max_size=case["max_size"])
        if case["value"] is not None:
            assert value == case["value"], case["name"]
    for case in v["invalid"]:
        expect_error(
            case["error"],
            partial(strictjson.loads, b(case["input"]), max_size=case["max_size"]),
            case["name"],
        )


def check_keystore(v: Json) -> None:
    secret = b(v["secret"])
    passphrase = b(v["passphrase"])
    assert open_secret(b(v["file"]), passphrase, purpose=v["purpose"]) == secret
    rng = crypto.deterministic_rng(b(v["rng_seed"]))
    assert (rng(16), rng(12)) == (b(v["salt"]), b(v["nonce"]))
    key = crypto.argon2id(passphrase, b(v["salt"]), opslimit=v["ops"], memlimit=v["mem"])
    assert key == b(v["key"])
    aad = crypto.labelled(labels.KEYSTORE, v["purpose"].encode())
    assert aad == b(v["aad"])
    file = json.loads(b(v["file"]))
    ct = canonical.b64d(file["ct"], what="vector")
    assert crypto.aead_decrypt(key, b(v["nonce"]), ct, aad) == secret


def check_kem_pop(v: Json) -> None:
    app = next(
        a for a in load("application.json")["applications"] if a["authority"] == v["authority"]
    )
    assert (v["application_digest"], v["ka_key"]) == (app["digest"], app["ka_key"])
    private = KemPrivateKey(b(v["ka_private_key"]))
    assert bytes(private.public_key) == b(v["ka_key"])
    assert crypto.labelled(labels.KEM_POP, b(v["application_digest"])) == b(v["info"])
    assert crypto.deterministic_rng(b(v["rng_seed"]))(32) == b(v["secret"])
    assert len(b(v["challenge"])) == crypto.WRAPPED_KEY_LEN
    assert kem_pop_answer(private, b(v["application_digest"]), b(v["challenge"])) == b(v["secret"])


def _nonce_steps(window: int, capacity: int, steps: list[Json]) -> str:
    """Feed every step; each but the last must give its ``expect``; return the last's."""
    nw = NonceWindow(window=window, capacity=capacity)
    got = ""
    for i, s in enumerate(steps):
        try:
            nw.check_and_add(KeyId.parse(s["kid"]), b(s["nonce"]), s["created"], s["now"])
            got = "ok"
        except GlobeError as exc:
            got = type(exc).__name__
        if i < len(steps) - 1:
            assert got == s["expect"], (i, s)
    return got


def _seen_steps(steps: list[Json]) -> str:
    seen = SeenSet()
    got = ""
    for i, s in enumerate(steps):
        try:
            seen.check_and_add(
                AuthorityId.parse(s["sender"]), MessageId.parse(s["id"]), b(s["envelope_hash"])
            )
            got = "ok"
        except GlobeError as exc:
            got = type(exc).__name__
        if i < len(steps) - 1:
            assert got == s["expect"], (i, s)
    return got


def check_replay(v: Json) -> None:
    for seq in v["nonce_window"]:
        steps = seq["steps"]
        assert _nonce_steps(seq["window"], seq["capacity"], steps) == steps[-1]["expect"]
    assert _seen_steps(v["seen_set"]) == v["seen_set"][-1]["expect"]
    for rec in v["sequence"]:
        verdict = classify_seq(rec["last"], rec["seq"])
        assert (verdict.in_order, list(verdict.missing), verdict.old) == (
            rec["in_order"],
            rec["missing"],
            rec["old"],
        )


def check_message(v: Json) -> None:
    kinds = set()
    for rec in v["messages"]:
        data = b(rec["content"])
        content = MessageContent.decode(data)
        assert content.encode() == data, rec["name"]
        assert content.kind.value == rec["kind"]
        kinds.add(rec["kind"])
    assert len(kinds) == 7  # every kind of §8.1


def check_checkpoint(v: Json) -> None:
    g = genesis()
    cp = Checkpoint.decode(b(v["checkpoint"]), g)
    assert cp.signed.payload.hex() == v["payload"]
    assert (cp.seq, cp.head.hex(), cp.time) == (v["seq"], v["head"], v["time"])
    assert bytes(g.hub_key).hex() == v["hub_key"]
    assert directory().check_checkpoint(cp).value == "same"


def check_prekey(v: Json) -> None:
    g = genesis()
    state = directory()
    assert len(v["prekeys"]) == 4
    for rec in v["prekeys"]:
        aid = AuthorityId.parse(rec["authority"])
        identity = state.member(aid).certificate.identity_key
        assert bytes(identity).hex() == rec["identity_key"]
        pk = SignedPrekey.decode(b(rec["prekey"]), g, identity, authority=aid)
        assert pk.authority == aid
        assert pk.signed.payload.hex() == rec["payload"]
        assert bytes(pk.key).hex() == rec["public_key"]
        assert str(pk.key.key_id) == rec["key_id"]
        assert bytes(KemPrivateKey(b(rec["private_key"])).public_key).hex() == rec["public_key"]
        assert (pk.not_before, pk.not_after) == (rec["not_before"], rec["not_after"])
        pk.check_valid_at(v["now"])


def check_receipt(v: Json) -> None:
    r = DeliveryReceipt.decode(b(v["receipt"]), directory())
    assert r.signed.payload.hex() == v["payload"]
    assert r.matches(MessageId.parse(v["message_id"]), b(v["envelope_hash"]))
    assert (str(r.sender), str(r.recipient), str(r.key), r.time) == (
        v["sender"],
        v["recipient"],
        v["key"],
        v["time"],
    )


def check_evidence(v: Json) -> None:
    assert sorted(e["kind"] for e in v["evidence"]) == [
        "accepted",
        "delivered",
        "non-delivery",
        "rejected",
    ]
    for rec in v["evidence"]:
        ev = Evidence.decode(b(rec["evidence"]), genesis())
        assert ev.signed.payload.hex() == rec["payload"]
        assert (ev.kind.value, str(ev.message_id), ev.envelope_hash.hex()) == (
            rec["kind"],
            rec["message_id"],
            rec["envelope_hash"],
        )
        assert (str(ev.sender), [str(x) for x in ev.recipients], ev.reason, ev.time) == (
            rec["sender"],
            rec["recipients"],
            rec["reason"],
            rec["time"],
        )


def check_request_auth(v: Json) -> None:
    state = directory()
    for case in v["cases"]:
        key = VerifyKey(b(case["public_key"]))
        certified = state.member(AuthorityId.parse(case["authority"])).certificate.transport_key
        assert key == certified
        assert bytes(SigningKey(b(case["transport_seed"])).verify_key) == bytes(key)
        auth = parse_request_auth(case["header"])
        assert (str(auth.key_id), auth.created) == (case["key_id"], case["created"])
        assert auth.nonce.hex() == case["nonce"]
        assert crypto.deterministic_rng(b(case["nonce_rng_seed"]))(16).hex() == case["nonce"]
        assert auth.signature.hex() == case["signature"]
        base = canonical.encode(
            {
                "audience": case["audience"],
                "body": canonical.b64e(crypto.sha256(b(case["body"]))),
                "created": case["created"],
                "kid": case["key_id"],
                "method": case["method"],
                "network": canonical.b64e(b(case["network"])),
                "nonce": canonical.b64e(b(case["nonce"])),
                "target": case["target"],
            }
        )
        assert base.hex() == case["signature_base"]
        assert crypto.labelled(labels.REQUEST_AUTH, base).hex() == case["signed_bytes"]
        key.verify(labels.REQUEST_AUTH, base, auth.signature)
        verify_request(
            auth,
            key=key,
            network=b(case["network"]),
            audience=case["audience"],
            method=case["method"],
            target=case["target"],
            body=b(case["body"]),
            now=case["now"],
        )


def check_envelope(v: Json) -> None:
    state = directory()
    env = parse_envelope(b(v["envelope"]))
    h = env.header
    assert h.raw.hex() == v["header"]
    assert crypto.sha256(h.raw).hex() == v["header_digest"]
    assert env.body.hex() == v["body"]
    assert env.signature.hex() == v["outer_signature"]
    assert env.hash.hex() == v["envelope_hash"]
    assert [w.hex() for w in env.wrapped] == [r["wrapped_key"] for r in v["recipients"]]
    assert (str(h.message_id), str(h.sender), h.created, h.expires) == (
        v["message_id"],
        v["sender"],
        v["created"],
        v["expires"],
    )
    assert (h.dir_seq, h.dir_head.hex(), h.network) == (
        v["dir_seq"],
        v["dir_head"],
        state.genesis.digest,
    )
    assert [(str(r.authority), r.seq, str(r.prekey)) for r in h.recipients] == [
        (r["authority"], r["seq"], r["prekey_key_id"]) for r in v["recipients"]
    ]
    # The content key, recovered from the pinned rng, matches the commitment and the body.
    rng = crypto.deterministic_rng(b(v["rng_seed"]))
    assert rng(16).hex() == v["message_id"]
    content_key = b(v["content_key"])
    assert rng(32) == content_key
    commit = crypto.sha256(crypto.labelled(labels.KEY_COMMIT, h.message_id.raw, content_key))
    assert commit.hex() == v["commit"] == h.commit.hex()
    aad = crypto.labelled(labels.BODY_AAD, h.raw)
    plaintext = crypto.aead_decrypt(content_key, bytes(12), env.body, aad)
    assert plaintext.hex() == v["plaintext"]
    content = b(v["content"])
    message = MessageContent.decode(content)
    # §7.2, §8.4: the header lists exactly the blob ids of the content's attachments, and
    # the manifest describes the blob of attachment.json.
    assert list(h.blobs) == v["blobs"] == sorted(a.blob for a in message.attachments)
    att = load("attachment.json")
    (manifest,) = message.attachments
    assert (manifest.blob, manifest.key.hex()) == (att["blob_id"], att["key"])
    assert (manifest.size, manifest.sha256.hex()) == (att["size"], att["sha256"])
    dec = AttachmentDecryptor(manifest.key, manifest.blob)
    assert crypto.sha256(dec.update(b(att["blob"])) + dec.finalize()) == manifest.sha256
    sender_key = verify_envelope(env, state, v["now"])
    assert bytes(sender_key).hex() == v["sender_identity_key"]
    sender_key.verify(labels.CONTENT, crypto.sha256(h.raw) + content, b(v["inner_signature"]))
    # The header, the content and the inner signature are a proof of origin (§8.5).
    origin = verify_signed_content(SignedContent(h.raw, content, b(v["inner_signature"])), state)
    assert origin.content == message
    check_recipients_active(env, state, v["now"])
    prekeys = {p["authority"]: p["key_id"] for p in load("prekey.json")["prekeys"]}
    for r in v["recipients"]:
        private = KemPrivateKey(b(r["prekey_private_key"]))
        assert str(private.key_id) == r["prekey_key_id"]
        certified = state.member(AuthorityId.parse(r["authority"])).certificate
        # A signed prekey of the recipient, or (envelope_ka.json) its certified KA key.
        assert r["prekey_key_id"] in (prekeys[r["authority"]], str(certified.ka_key().key_id))
        info = crypto.labelled(labels.WRAP, crypto.sha256(h.raw), r["authority"].encode("ascii"))
        assert info.hex() == r["wrap_info"]
        assert private.open(b(r["wrapped_key"]), info) == content_key
        opened = open_envelope(
            env,
            directory=state,
            me=AuthorityId.parse(r["authority"]),
            private_key=lookup(private),
            now=v["now"],
        )
        assert opened.content == content
        assert opened.inner_signature.hex() == v["inner_signature"]
        assert opened.head_relation.value == "same"


def lookup(*keys: KemPrivateKey) -> Callable[[KeyId], KemPrivateKey | None]:
    """A node's key store: the private key whose id the header names, if it holds it."""
    held = {k.key_id: k for k in keys}
    return held.get


# --- invalid.json and valid.json ------------------------------------------------------------------


def expect_error(name: str, check: Callable[[], object], what: str) -> None:
    cls = getattr(protocol.errors, name)
    with pytest.raises(protocol.errors.GlobeError) as info:
        check()
    assert type(info.value) is cls, f"{what}: expected {name}, got {type(info.value).__name__}"


def _open_case(c: Json) -> object:
    keys = [KemPrivateKey(b(k)) for k in c["private_keys"]]
    return open_envelope(
        parse_envelope(b(c["envelope"])),
        directory=case_directory(c),
        me=AuthorityId.parse(c["me"]),
        private_key=lookup(*keys),
        now=c["now"],
    )


def _hub_case(c: Json) -> None:
    env = parse_envelope(b(c["envelope"]))
    state = case_directory(c)
    verify_envelope(env, state, c["now"])
    check_recipients_active(env, state, c["now"])


def _log_case(c: Json) -> DirectoryState:
    entries = list(extended_log()[: c["base_entries"]]) + [b(e) for e in c["entries"]]
    t = c.get("trusted")
    return verify_log(genesis(), entries, trusted=None if t is None else (t["seq"], b(t["head"])))


def _request_case(c: Json) -> None:
    verify_request(
        parse_request_auth(c["header"]),
        key=VerifyKey(b(c["public_key"])),
        network=b(c["network"]),
        audience=c["audience"],
        method=c["method"],
        target=c["target"],
        body=b(c["body"]),
        now=c["now"],
    )


def _prekey_case(c: Json) -> SignedPrekey:
    pk = SignedPrekey.decode(
        inp(c, "prekey"),
        genesis(),
        VerifyKey(b(c["identity_key"])),
        authority=AuthorityId.parse(c["authority"]),
    )
    if "now" in c:
        pk.check_valid_at(c["now"])
    return pk


def _raise(result: str) -> None:
    if result != "ok":
        raise getattr(protocol.errors, result)("the last step")


CASE_CHECKS: dict[str, Callable[[Json], object]] = {
    "authority_id": lambda c: AuthorityId.parse(c["text"]),
    "key_id": lambda c: KeyId.parse(c["text"]),
    "message_id": lambda c: MessageId.parse(c["text"]),
    "network_id": lambda c: NetworkId.parse(c["text"]),
    "base64url": lambda c: canonical.b64d(c["text"], what="vector"),
    "ed25519_public": lambda c: VerifyKey(b(c["key"])),
    "kem_public": lambda c: KemPublicKey(b(c["key"])),
    "keystore": lambda c: open_secret(inp(c, "file"), b(c["passphrase"]), purpose=c["purpose"]),
    "genesis": lambda c: Genesis.decode(inp(c, "genesis")),
    "application": lambda c: Application.decode(inp(c, "application"), genesis()),
    "key_update": lambda c: KeyUpdateRequest.decode(inp(c, "request"), case_directory(c)),
    "kem_pop": lambda c: kem_pop_answer(
        KemPrivateKey(b(c["ka_private_key"])), b(c["application_digest"]), b(c["challenge"])
    ),
    "log": _log_case,
    "checkpoint": lambda c: Checkpoint.decode(inp(c, "checkpoint"), genesis()),
    "checkpoint_check": lambda c: directory(c["log_entries"]).check_checkpoint(
        Checkpoint.decode(inp(c, "checkpoint"), genesis())
    ),
    "prekey": _prekey_case,
    "profile": lambda c: case_directory(c).check_profile(
        Profile.decode(inp(c, "profile"), genesis()), c["now"]
    ),
    "receipt": lambda c: DeliveryReceipt.decode(inp(c, "receipt"), case_directory(c)),
    "evidence": lambda c: Evidence.decode(inp(c, "evidence"), genesis()),
    "request_auth": _request_case,
    "nonce_window": lambda c: _raise(_nonce_steps(c["window"], c["capacity"], c["steps"])),
    "seen_set": lambda c: _raise(_seen_steps(c["steps"])),
    "message": lambda c: MessageContent.decode(inp(c, "content")),
    "status_workflow": lambda c: check_status_sender(
        MessageContent.decode(b(c["content"])).status,  # type: ignore[arg-type]
        Party(c["party"]) if c["party"] else None,
        deadline=c["deadline"],
    ),
    "envelope_header": lambda c: decode_header(inp(c, "header")),
    "envelope_parse": lambda c: parse_envelope(
        b(c["envelope"]), max_size=c.get("max_size", MAX_ENVELOPE_SIZE)
    ),
    "envelope_open": _open_case,
    "envelope_hub_check": _hub_case,
    "signed_content": lambda c: verify_signed_content(
        SignedContent(b(c["header"]), b(c["content"]), b(c["signature"])), case_directory(c)
    ),
}


def check_invalid(v: Json) -> None:
    cases = v["cases"]
    assert len(cases) >= 600
    for case in cases:
        expect_error(case["error"], partial(CASE_CHECKS[case["structure"]], case), case["name"])


def check_valid(v: Json) -> None:
    assert len(v["cases"]) >= 40
    for case in v["cases"]:
        CASE_CHECKS[case["structure"]](case)


def check_forward(v: Json) -> None:
    """PROTOCOL.md §8.5: the forward verifies; each case fails with exactly its error."""
    state = directory()
    forward = MessageContent.decode(b(v["forward"]))
    assert forward.forwarded is not None
    origin, grant = v["origin"], v["grant"]
    assert forward.forwarded.origin == SignedContent(
        b(origin["header"]), b(origin["content"]), b(origin["signature"])
    )
    assert forward.forwarded.consents == (
        SignedContent(b(grant["header"]), b(grant["content"]), b(grant["signature"])),
    )
    verified = verify_forward(
        forward,
        forwarder=AuthorityId.parse(v["forwarder"]),
        recipient=AuthorityId.parse(v["recipient"]),
        directory=state,
    )
    assert (str(verified.sender), str(verified.message_id)) == (
        origin["sender"],
        origin["message_id"],
    )
    for c in v["invalid"]:
        case: Json = c

        def check(case: Json = case) -> object:
            return verify_forward(
                MessageContent.decode(b(case["forward"])),
                forwarder=AuthorityId.parse(case["forwarder"]),
                recipient=AuthorityId.parse(case["recipient"]),
                directory=state,
            )

        expect_error(c["error"], check, c["name"])


def _open_attachment(key: bytes, blob_id: str, blob: bytes) -> bytes:
    dec = AttachmentDecryptor(key, blob_id)
    return dec.update(blob) + dec.finalize()


def check_attachment(v: Json) -> None:
    key, blob_id, size = b(v["key"]), v["blob_id"], v["chunk_size"]
    plaintext, blob, header = b(v["plaintext"]), b(v["blob"]), b(v["header"])
    assert len(plaintext) == v["size"]
    assert crypto.sha256(plaintext).hex() == v["sha256"]
    assert header == b"GLBA\x01\x01\x00\x00" + size.to_bytes(4, "big") + bytes(4)
    # Each chunk from §8.4.2 alone: nonce, associated data, ChaCha20-Poly1305.
    assert len(v["chunks"]) == 3
    pieces = [plaintext[i : i + size] for i in range(0, len(plaintext), size)]
    for i, (chunk, piece) in enumerate(zip(v["chunks"], pieces, strict=True)):
        final = i == len(pieces) - 1
        nonce = bytes(4) + i.to_bytes(8, "big")
        aad = b"globe/v1/attachment\x00" + header + blob_id.encode() + nonce[4:] + bytes([final])
        assert (chunk["index"], chunk["final"], chunk["plaintext_size"]) == (i, final, len(piece))
        assert (b(chunk["nonce"]), b(chunk["aad"])) == (nonce, aad)
        assert crypto.aead_decrypt(key, nonce, b(chunk["ciphertext"]), aad) == piece
    assert header + b"".join(b(c["ciphertext"]) for c in v["chunks"]) == blob
    assert len(blob) == v["encrypted_size"] == encrypted_size(len(plaintext), size)
    # The streaming API: encryption is deterministic, decryption gives the plaintext back.
    enc = AttachmentEncryptor(key, blob_id, size)
    assert enc.header() + enc.update(plaintext) + enc.finalize() == blob
    dec = AttachmentDecryptor(key, blob_id)
    assert dec.update(blob) + dec.finalize() == plaintext
    assert (dec.size, dec.sha256.hex()) == (v["size"], v["sha256"])
    names = set()
    for case in v["invalid"]:
        data = b"".join(
            blob[p["from"] : p["to"]] if "from" in p else b(p["hex"]) for p in case["parts"]
        )
        assert crypto.sha256(data).hex() == case["blob_sha256"], case["name"]
        check = partial(
            _open_attachment, b(case.get("key", v["key"])), case.get("blob_id", blob_id), data
        )
        expect_error(case["error"], check, case["name"])
        names.add(case["name"])
    assert len(names) == len(v["invalid"]) >= 20


CHECKS: dict[str, Callable[[Json], None]] = {
    "keys.json": check_keys,
    "canonical.json": check_canonical,
    "strict_json.json": check_strict_json,
    "keystore.json": check_keystore,
    "genesis.json": check_genesis,
    "application.json": check_application,
    "kem_pop.json": check_kem_pop,
    "certificate.json": check_certificate,
    "log.json": check_log,
    "directory.json": check_directory,
    "profile.json": check_profile_file,
    "key_update.json": check_key_update,
    "checkpoint.json": check_checkpoint,
    "prekey.json": check_prekey,
    "receipt.json": check_receipt,
    "evidence.json": check_evidence,
    "request_auth.json": check_request_auth,
    "replay.json": check_replay,
    "message.json": check_message,
    "envelope_1.json": check_envelope,
    "envelope_3.json": check_envelope,
    "envelope_ka.json": check_envelope,
    "attachment.json": check_attachment,
    "forward.json": check_forward,
    "bundle.json": check_bundle,
    "invalid.json": check_invalid,
    "valid.json": check_valid,
}


@pytest.mark.parametrize("name", FILES)
def test_verify_from_json_alone(name):
    CHECKS[name](load(name))


def test_every_case_structure_is_checked():
    used = {c["structure"] for c in _cases()}
    assert used == set(CASE_CHECKS)
