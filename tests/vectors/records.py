"""Valid records: keys, canonical JSON, genesis, applications, certificates, the log,
checkpoint, prekeys, receipt, evidence and signed requests (tests/vectors/*.json)."""

from __future__ import annotations

import struct
from typing import Final

from protocol import canonical, crypto, labels
from protocol.canonical import b64e
from protocol.devnet import DevNetwork
from protocol.directory import DirectoryState, verify_log
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Certificate,
    LogEntry,
    authority_fingerprint,
    make_checkpoint,
)
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind, make_evidence, make_receipt
from protocol.requestauth import parse_request_auth, sign_request, verify_request
from tests.vectors.vectorlib import NOW, Json, h, member, rng_for, rng_seed

#: RFC 8032 section 7.1, TEST 1.
RFC8032_SEED: Final = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
RFC8032_PUBLIC: Final = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)


#: The authority id of the "same keys, another authority" fingerprint vector.
OTHER_AUTHORITY: Final = "FR-AFA"


def authority_fingerprint_data(
    authority: str, identity: bytes, transport: bytes, ka: bytes
) -> bytes:
    """The fingerprinted bytes of docs/PROTOCOL.md §3.4, built here from the text of the spec."""
    parts = (authority.encode("utf-8"), identity, transport, ka)
    return b"".join(struct.pack(">H", len(part)) + part for part in parts)


def _authority_fingerprint_case(
    name: str, authority: str, identity: VerifyKey, transport: VerifyKey, ka: KemPublicKey
) -> Json:
    data = authority_fingerprint_data(authority, bytes(identity), bytes(transport), bytes(ka))
    fp = crypto.fingerprint_digits(labels.AUTHORITY_FINGERPRINT, data)
    assert fp == authority_fingerprint(
        authority=AuthorityId.parse(authority), identity=identity, transport=transport, ka=ka
    )
    return {
        "name": name,
        "authority": authority,
        "identity_key": h(bytes(identity)),
        "transport_key": h(bytes(transport)),
        "ka_key": h(bytes(ka)),
        "data": h(data),
        "fingerprint": fp,
    }


def _authority_fingerprints(net: DevNetwork) -> list[Json]:
    m = member(net, "FR-PNF")
    app = m.application
    ident, transport, ka = app.identity_key, app.transport_key, app.ka_key
    cases = [
        _authority_fingerprint_case(
            "FR-PNF of the devnet (its keys in application.json)", "FR-PNF", ident, transport, ka
        ),
        _authority_fingerprint_case(
            "the same keys under another authority id", OTHER_AUTHORITY, ident, transport, ka
        ),
        _authority_fingerprint_case(
            "FR-PNF with its identity and transport keys swapped", "FR-PNF", transport, ident, ka
        ),
    ]
    assert app.fingerprint() == m.certificate.fingerprint() == cases[0]["fingerprint"]
    assert len({c["fingerprint"] for c in cases}) == len(cases)
    return cases


def build_keys(net: DevNetwork) -> Json:
    rng = rng_for("keys")
    ed_seeds = [RFC8032_SEED, bytes(32), bytes(range(32)), rng(32), rng(32)]
    kem_privates = [bytes(96), bytes(range(96)), rng(96), rng(96)]
    ed25519 = []
    for seed in ed_seeds:
        key = SigningKey(seed)
        ed25519.append(
            {
                "seed": h(seed),
                "public_key": h(bytes(key.verify_key)),
                "key_id": str(key.key_id),
            }
        )
    assert ed25519[0]["public_key"] == h(RFC8032_PUBLIC)
    kem = []
    for raw in kem_privates:
        priv = KemPrivateKey(raw)
        kem.append(
            {
                "private_key": h(raw),
                "public_key": h(bytes(priv.public_key)),
                "key_id": str(priv.key_id),
            }
        )
    signer = SigningKey(ed_seeds[3])
    signatures = []
    for label, message in (
        (labels.RECEIPT, b""),
        (labels.REQUEST_AUTH, b'{"hello":"world"}'),
    ):
        signatures.append(
            {
                "seed": h(signer.seed),
                "label": label.decode("ascii"),
                "message": h(message),
                "signed_bytes": h(crypto.labelled(label, message)),
                "signature": h(signer.sign(label, message)),
            }
        )
    stream = crypto.deterministic_rng(b"globe vectors v1/rng")
    calls = [{"n": n, "output": h(stream(n))} for n in (16, 32, 1, 96)]
    return {
        "description": (
            "Key derivations. ed25519: 32-byte seed -> public key, key id. "
            "kem: 96-byte hybrid private key (ML-KEM-768 seed d||z, 64 bytes, then X25519 "
            "scalar, 32 bytes) -> 1216-byte public key (ML-KEM-768 encapsulation key || "
            "X25519 public key), key id. authority_fingerprints: authority id and its "
            "identity, transport and key-agreement public keys -> data (u16be(len) || bytes, "
            "for each of the four in that order) -> fingerprint_digits("
            "'globe/v1/authority-fingerprint', data). labelled_signatures: Ed25519 over "
            "label || 0x00 || message. deterministic_rng: SHAKE-256(seed || u64be(counter)), "
            "counter starting at 1 and incremented per call, first n bytes."
        ),
        "ed25519": ed25519,
        "kem": kem,
        "authority_fingerprints": _authority_fingerprints(net),
        "labelled_signatures": signatures,
        "deterministic_rng": {"seed": h(b"globe vectors v1/rng"), "calls": calls},
    }


# --- genesis, applications, certificates, log ------------------------------------------


def _key_entry(key: SigningKey) -> Json:
    return {"seed": h(key.seed), "public_key": h(bytes(key.verify_key)), "key_id": str(key.key_id)}


def build_genesis(net: DevNetwork) -> Json:
    g = net.genesis
    return {
        "description": (
            "The devnet genesis (build_devnet(b'globe vectors v1')). The admin and hub "
            "private seeds are published for testing only."
        ),
        "genesis": h(g.encode()),
        "payload": h(g.signed.payload),
        "digest": h(g.digest),
        "fingerprint": g.fingerprint(),
        "network_id": str(g.network_id),
        "name": g.name,
        "threshold": g.threshold,
        "hub_url": g.hub_url,
        "created": g.created,
        "admins": [
            {"name": a.name, **_key_entry(k)} for a, k in zip(g.admins, net.admins, strict=True)
        ],
        "hub": _key_entry(net.hub),
        "signers": [str(s.key_id) for s in g.signed.signatures],
    }


def build_application(net: DevNetwork) -> Json:
    apps = []
    for m in net.members.values():
        a = m.application
        apps.append(
            {
                "authority": str(a.authority),
                "application": h(a.signed.encode()),
                "payload": h(a.signed.payload),
                "digest": h(a.digest),
                "name": a.name,
                "kinds": list(a.kinds),
                "languages": list(a.languages),
                "contact": a.contact,
                "legal_basis": a.legal_basis,
                "endpoint": a.endpoint,
                "created": a.created,
                "identity_seed": h(m.identity.seed),
                "identity_key": h(bytes(a.identity_key)),
                "identity_key_id": str(a.identity_key.key_id),
                "transport_seed": h(m.transport.seed),
                "transport_key": h(bytes(a.transport_key)),
                "transport_key_id": str(a.transport_key.key_id),
                "ka_private_key": h(m.ka.raw),
                "ka_key": h(bytes(a.ka_key)),
                "ka_key_id": str(a.ka_key.key_id),
            }
        )
    return {
        "description": (
            "Membership applications, each signed by the applicant's identity and transport "
            "keys under globe/v1/application. Decode against genesis.json. Private keys are "
            "published for testing only."
        ),
        "applications": apps,
    }


def _certificate_json(cert: Certificate) -> Json:
    return {
        "serial": cert.serial,
        "name": cert.name,
        "country": cert.authority.country,
        "kinds": list(cert.kinds),
        "languages": list(cert.languages),
        "endpoint": cert.endpoint,
        "identity_key": h(bytes(cert.identity_key)),
        "transport_key": h(bytes(cert.transport_key)),
        "ka_key": h(cert.ka_key_raw),
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "application": h(cert.application) if cert.application is not None else None,
    }


def build_certificate(net: DevNetwork) -> Json:
    admits = []
    for raw in net.entries:
        action = LogEntry.decode(raw, net.genesis).action
        if action.action is not Action.ADMIT:
            continue
        assert action.certificate is not None
        admits.append(
            {
                "authority": str(action.authority),
                "action": h(action.signed.encode()),
                "payload": h(action.signed.payload),
                "digest": h(action.digest),
                "issued": action.issued,
                "signers": [str(s.key_id) for s in action.signed.signatures],
                "certificate": _certificate_json(action.certificate),
            }
        )
    return {
        "description": (
            "Admit actions: signed objects under globe/v1/membership-action with k=2 admin "
            "signatures (the first two admins of genesis.json), each carrying the member's "
            "certificate. The certificate's 'application' is the application's digest."
        ),
        "admits": admits,
    }


def member_rows(state: DirectoryState) -> list[Json]:
    """The member table a verifier must produce (docs/PROTOCOL.md §6.5), sorted by authority.

    ``identity_keys`` lists every identity key ever certified (sorted key ids) and
    ``retired_at`` the log time at which each replaced one stopped being certified.
    """
    rows = []
    for aid in sorted(state.members, key=str):
        m = state.members[aid]
        c = m.certificate
        rows.append(
            {
                "authority": str(aid),
                "status": m.status.value,
                "serial": c.serial,
                "identity_key_id": str(c.identity_key.key_id),
                "transport_key_id": str(c.transport_key.key_id),
                "ka_key_id": str(KemPublicKey(c.ka_key_raw).key_id),
                "last_action": h(m.last_action),
                "admitted_seq": m.admitted_seq,
                "updated_seq": m.updated_seq,
                "reason": m.reason,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "identity_keys": sorted(str(k) for k in m.identity_keys),
                "retired_at": dict(sorted((str(k), t) for k, t in m.retired_at.items())),
            }
        )
    return rows


def build_log(net: DevNetwork) -> Json:
    state = verify_log(net.genesis, net.entries)
    entries = [
        {"seq": i + 1, "entry": h(raw), "hash": h(LogEntry.decode(raw, net.genesis).hash)}
        for i, raw in enumerate(net.entries)
    ]
    return {
        "description": (
            "The membership log: entries 1-4 admit FR-PNF, DE-BKA, ES-FCC, IT-ANAC; 5 "
            "suspends ES-FCC; 6 reinstates it. verify_log(genesis, entries) must give "
            "'head' at 'seq' and the member table (sorted by authority; identity_keys are "
            "the sorted ids of every identity key ever certified, retired_at the log time at "
            "which each replaced one was retired). directory.json continues this log."
        ),
        "now": NOW,
        "entries": entries,
        "seq": state.seq,
        "head": h(state.head),
        "time": state.time,
        "members": member_rows(state),
    }


def build_checkpoint(net: DevNetwork) -> Json:
    state = net.directory
    cp = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=state.seq, head=state.head, time=NOW)
    return {
        "description": "A hub checkpoint (globe/v1/checkpoint) of the head of log.json.",
        "checkpoint": h(cp.signed.encode()),
        "payload": h(cp.signed.payload),
        "seq": cp.seq,
        "head": h(cp.head),
        "time": cp.time,
        "hub_key": h(bytes(net.genesis.hub_key)),
    }


def build_prekey(net: DevNetwork) -> Json:
    out = []
    for m in net.members.values():
        sp = m.signed_prekey
        out.append(
            {
                "authority": str(m.authority),
                "prekey": h(sp.signed.encode()),
                "payload": h(sp.signed.payload),
                "identity_key": h(bytes(m.identity.verify_key)),
                "private_key": h(m.prekey.raw),
                "public_key": h(bytes(sp.key)),
                "key_id": str(sp.key.key_id),
                "not_before": sp.not_before,
                "not_after": sp.not_after,
            }
        )
    return {
        "description": (
            "Signed prekeys (globe/v1/prekey), verified with the member's certified identity "
            "key. Private halves published for testing only."
        ),
        "now": NOW,
        "prekeys": out,
    }


def receipt_params() -> Json:
    rng = rng_for("receipt")
    return {
        "message_id": MessageId(rng(16)),
        "envelope_hash": rng(32),
        "sender": AuthorityId.parse("FR-PNF"),
        "recipient": AuthorityId.parse("DE-BKA"),
        "time": NOW + 30,
    }


def build_receipt(net: DevNetwork) -> Json:
    p = receipt_params()
    recipient = member(net, "DE-BKA")
    signed = make_receipt(genesis=net.genesis, identity=recipient.identity, **p)
    receipt = DeliveryReceipt.decode(signed.encode(), net.directory)
    return {
        "description": (
            "A delivery receipt (globe/v1/receipt) by DE-BKA's identity key. The message id "
            "and envelope hash come from deterministic_rng(b'globe vectors v1/receipt') "
            "(16 then 32 bytes); they name no real envelope. Decode against the directory "
            "of log.json."
        ),
        "receipt": h(signed.encode()),
        "payload": h(signed.payload),
        "message_id": str(receipt.message_id),
        "envelope_hash": h(receipt.envelope_hash),
        "sender": str(receipt.sender),
        "recipient": str(receipt.recipient),
        "key": str(receipt.key),
        "time": receipt.time,
    }


def evidence_list(net: DevNetwork) -> list[Evidence]:
    rng = rng_for("evidence")
    mid = MessageId(rng(16))
    env_hash = rng(32)
    fr, de, es = (AuthorityId.parse(x) for x in ("FR-PNF", "DE-BKA", "ES-FCC"))
    specs: list[tuple[EvidenceKind, list[AuthorityId], str | None, int]] = [
        (EvidenceKind.ACCEPTED, [es, de], None, NOW),
        (EvidenceKind.REJECTED, [de], "bad-signature", NOW + 1),
        (EvidenceKind.DELIVERED, [de], None, NOW + 60),
        (EvidenceKind.NON_DELIVERY, [es], "expired", NOW + 7 * 86400),
    ]
    return [
        make_evidence(
            genesis=net.genesis,
            hub=net.hub,
            kind=kind,
            message_id=mid,
            envelope_hash=env_hash,
            sender=fr,
            recipients=recipients,
            time=time,
            reason=reason,
        )
        for kind, recipients, reason, time in specs
    ]


def build_evidence(net: DevNetwork) -> Json:
    items = []
    for ev in evidence_list(net):
        items.append(
            {
                "kind": ev.kind.value,
                "evidence": h(ev.signed.encode()),
                "payload": h(ev.signed.payload),
                "message_id": str(ev.message_id),
                "envelope_hash": h(ev.envelope_hash),
                "sender": str(ev.sender),
                "recipients": [str(r) for r in ev.recipients],
                "reason": ev.reason,
                "time": ev.time,
            }
        )
    return {
        "description": (
            "Hub evidence (globe/v1/evidence), one per kind, verified with the genesis hub "
            "key. Message id and envelope hash from deterministic_rng(b'globe vectors "
            "v1/evidence') (16 then 32 bytes)."
        ),
        "evidence": items,
    }


# --- request_auth.json -----------------------------------------------------------------

#: (name, signer, audience, method, target, body): requests to the hub's real routes
#: (docs/PROTOCOL.md §8.4.1, §9.2, hub API) and one direct delivery to a peer (§10.4).
REQUESTS: Final = [
    ("post-message", "FR-PNF", "hub", "POST", "/v1/messages", b"GLBE\x01\x01 (envelope bytes)"),
    ("get-directory-log", "DE-BKA", "hub", "GET", "/v1/directory/log?since=3&limit=100", b""),
    ("peer-inbox", "FR-PNF", "DE-BKA", "POST", "/v1/inbox", b"GLBE\x01\x01 (envelope bytes)"),
]


def build_request_auth(net: DevNetwork) -> Json:
    cases = []
    network = net.genesis.digest
    for name, who, audience, method, target, body in REQUESTS:
        key = member(net, who).transport
        nonce = rng_for(f"request-auth/{name}")(16)
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
        base = canonical.encode(
            {
                "audience": audience,
                "body": b64e(crypto.sha256(body)),
                "created": NOW,
                "kid": str(key.key_id),
                "method": method,
                "network": b64e(network),
                "nonce": b64e(nonce),
                "target": target,
            }
        )
        auth = parse_request_auth(header)
        assert auth.nonce == nonce
        key.verify_key.verify(labels.REQUEST_AUTH, base, auth.signature)
        verify_request(
            auth,
            key=key.verify_key,
            network=network,
            audience=audience,
            method=method,
            target=target,
            body=body,
            now=NOW,
        )
        cases.append(
            {
                "name": name,
                "authority": who,
                "transport_seed": h(key.seed),
                "public_key": h(bytes(key.verify_key)),
                "key_id": str(key.key_id),
                "network": h(network),
                "audience": audience,
                "method": method,
                "target": target,
                "body": h(body),
                "created": NOW,
                "nonce_rng_seed": h(rng_seed(f"request-auth/{name}")),
                "nonce": h(nonce),
                "signature_base": h(base),
                "signed_bytes": h(crypto.labelled(labels.REQUEST_AUTH, base)),
                "signature": h(auth.signature),
                "header": header,
                "now": NOW,
            }
        )
    return {
        "description": (
            "Signed HTTP requests (Globe-Auth header) by a member's transport key. The nonce "
            "is the first 16 bytes of deterministic_rng(nonce_rng_seed). Verify at 'now' "
            "(accepted skew 60 s)."
        ),
        "cases": cases,
    }
