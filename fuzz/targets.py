"""Fuzz targets: one per decoder of bytes (or text) that come from outside.

Each target takes the fuzzer's bytes and returns ``True`` if the decoder accepted
them, ``False`` if it refused them with a :class:`~protocol.errors.ProtocolError`
(the *remote* branch: the input broke a rule).  Anything else is a finding and
propagates: another exception (a ``KeyError``, a ``ValueError`` from a library, a
:class:`~protocol.errors.UsageError` that blames the caller for the peer's bytes),
or a :class:`PropertyViolation`:

* an accepted input must re-encode to the same bytes, through an encoder written
  here from the decoded fields (the payload dicts of ``make_*`` and
  ``seal_envelope``), so a field the decoder drops or normalises shows up;
* where a module has a fast path and a reference path (``parse_envelope``,
  the envelope header, ``protocol.fastlog``), both must accept exactly the same
  inputs and return equal values;
* a refused log entry must leave the directory exactly as it was, and checking a
  key-update request must leave it as it was whatever the verdict.

Targets named ``*_payload`` take a payload and sign it with the key the real
signer uses (the vectors publish every private key), so mutated payloads get
past the signature to the checks behind it.  Work per input is bounded by the
decoders' own size caps; the runner's per-input timeout catches a hang.
"""

from __future__ import annotations

import contextlib
import functools
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import orjson

from fuzz.context import Context, context
from protocol import canonical, envelope, labels, strictjson
from protocol.attachments import AttachmentDecryptor, AttachmentEncryptor
from protocol.directory import TRANSITIONS, DirectoryState, MemberStatus, verify_log
from protocol.envelope import EnvelopeHeader
from protocol.errors import ProtocolError
from protocol.fastlog import decode_entry, entry_fast
from protocol.genesis import MAX_GENESIS_SIZE, Genesis
from protocol.ids import AuthorityId, KeyId, MessageId, NetworkId
from protocol.keys import KemPublicKey, SigningKey, VerifyKey
from protocol.keyupdate import KeyUpdateRequest
from protocol.membership import (
    MAX_ACTION_SIZE,
    MAX_ENTRY_SIZE,
    Application,
    Checkpoint,
    LogEntry,
    MembershipAction,
    make_entry,
)
from protocol.messages import MessageContent
from protocol.origin import verify_forward
from protocol.prekeys import SignedPrekey
from protocol.profile import Profile, decode_log_entry, make_profile_entry
from protocol.receipts import DeliveryReceipt, Evidence
from protocol.requestauth import parse_request_auth, sign_request, verify_request
from protocol.signed import SignedObject, verify_quorum

__all__ = ["TARGETS", "PropertyViolation", "Target"]

#: A target: the fuzzer's bytes -> accepted (True) or refused (False); raises on a finding.
Target = Callable[[bytes], bool]

#: The cap the canonical and strict JSON targets decode under (the largest envelope header).
_JSON_CAP: Final = 64 * 1024


class PropertyViolation(AssertionError):
    """A fuzz property broke; the message says which, the input is the reproducer."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PropertyViolation(message)


def _ctx() -> Context:
    return context()


def _text(data: bytes) -> str:
    """Bytes as the text a decoder is handed: UTF-8, undecodable bytes as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


# --- canonical JSON, base64url and strict JSON ----------------------------------------------


def canonical_target(data: bytes) -> bool:
    """``canonical.decode``: accepted values re-encode to the input; the fast mode
    (``check_values=False``) accepts everything the full check accepts, with the same value."""
    try:
        value = canonical.decode(data, max_size=_JSON_CAP, what="fuzz")
    except ProtocolError:
        value = None
    try:
        loose = canonical.decode(data, max_size=_JSON_CAP, what="fuzz", check_values=False)
    except ProtocolError:
        _require(value is None, "check_values=False refused what the full check accepted")
        return False
    if value is None:
        return False
    _require(loose == value, "the two decoding modes disagree on the value")
    _require(canonical.encode(value) == data, "an accepted value re-encodes to other bytes")
    return True


def base64url_target(data: bytes) -> bool:
    """``canonical.b64d`` on text: accepted strings are exactly ``b64e`` of their bytes."""
    text = _text(data)
    try:
        raw = canonical.b64d(text, what="fuzz")
    except ProtocolError:
        return False
    _require(canonical.b64e(raw) == text, "accepted base64url is not the canonical encoding")
    return True


def strictjson_target(data: bytes) -> bool:
    """``strictjson.loads``: what it accepts, the standard library and orjson read the same
    way, and the value survives a round trip."""
    try:
        value = strictjson.loads(data, max_size=_JSON_CAP)
    except ProtocolError:
        return False
    _require(json.loads(data) == value, "json.loads reads an accepted body otherwise")
    try:
        theirs = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PropertyViolation(f"orjson refuses a body strictjson accepts: {exc}") from exc
    _require(theirs == value, "orjson reads an accepted body otherwise")
    again = strictjson.loads(json.dumps(value, ensure_ascii=False).encode(), max_size=4 * _JSON_CAP)
    _require(again == value, "an accepted value does not survive a round trip")
    return True


# --- envelopes ---------------------------------------------------------------------------


def _header_fields(h: EnvelopeHeader) -> dict[str, object]:
    """The header object exactly as ``seal_envelope`` writes it."""
    fields: dict[str, object] = {
        "type": "envelope",
        "v": envelope.VERSION,
        "suite": envelope.SUITE,
        "network": canonical.b64e(h.network),
        "id": str(h.message_id),
        "sender": str(h.sender),
        "sender_key": str(h.sender_key),
        "recipients": [
            {"id": str(r.authority), "seq": r.seq, "prekey": str(r.prekey)} for r in h.recipients
        ],
        "created": h.created,
        "expires": h.expires,
        "dir": {"seq": h.dir_seq, "head": canonical.b64e(h.dir_head)},
        "commit": canonical.b64e(h.commit),
    }
    if h.blobs:
        fields["blobs"] = list(h.blobs)
    return fields


def header_target(data: bytes) -> bool:
    """``decode_header``: the fast and strict paths agree; a header re-encodes to its bytes."""
    try:
        header = envelope.decode_header(data)
    except ProtocolError:
        return False
    obj = canonical.decode(
        data, max_size=envelope.MAX_HEADER_SIZE, what="envelope header", check_values=False
    )
    fast = envelope._header_fast(obj, data)
    try:
        strict = envelope._header_strict(obj, data)
    except ProtocolError as exc:
        raise PropertyViolation(f"the strict path refuses an accepted header: {exc}") from exc
    _require(fast is None or fast == strict, "the fast and strict header paths disagree")
    _require(header == strict, "decode_header differs from the strict path")
    _require(canonical.encode(_header_fields(header)) == data, "a header re-encodes otherwise")
    return True


def envelope_target(data: bytes) -> bool:
    """``parse_envelope`` (fast path against ``_parse_slow``), re-framing, then what a
    hub and each recipient check: outer signature, recipients, unwrap, body, content."""
    try:
        env = envelope.parse_envelope(data)
    except ProtocolError as exc:
        try:
            envelope._parse_slow(data)
        except ProtocolError as slow:
            _require(type(slow) is type(exc), "the two parse paths refuse for different reasons")
        else:
            raise PropertyViolation("the slow parse path accepts what parse_envelope refuses")
        return False
    _require(envelope._parse_slow(data) == env, "the fast and slow parse paths disagree")
    h = env.header
    framed = b"".join(
        (
            envelope.MAGIC,
            bytes((envelope.VERSION, envelope.SUITE)),
            struct.pack(">I", len(h.raw)),
            h.raw,
            struct.pack(">H", len(env.wrapped)),
            *env.wrapped,
            struct.pack(">I", len(env.body)),
            env.body,
            env.signature,
        )
    )
    _require(framed == data, "a parsed envelope re-frames to other bytes")
    _require(canonical.encode(_header_fields(h)) == h.raw, "the header re-encodes otherwise")
    ctx = _ctx()
    directory = _full_directory()
    try:
        envelope.verify_envelope(env, directory, ctx.now)
        envelope.check_recipients_active(env, directory, ctx.now)
    except ProtocolError:
        return True
    for recipient in h.recipients:
        keys = ctx.prekeys.get(str(recipient.authority))
        if keys is None:
            continue
        private = keys[1]
        try:
            opened = envelope.open_envelope(
                env,
                directory=directory,
                me=recipient.authority,
                private_key=lambda _kid, key=private: key,  # type: ignore[misc]
                now=ctx.now,
            )
        except ProtocolError:
            continue
        if str(h.sender) in ctx.members:
            expected = envelope.content_signature(ctx.signer(str(h.sender)), h.raw, opened.content)
            _require(opened.inner_signature == expected, "the inner signature is not the sender's")
    return True


# --- membership: log entries, actions and certificates ---------------------------------------

_FULL: dict[str, DirectoryState] = {}


def _full_directory() -> DirectoryState:
    """The verified directory of the whole vector log; read-only for the targets."""
    if "full" not in _FULL:
        _FULL["full"] = _ctx().directory()
    return _FULL["full"]


def _action_payload(a: MembershipAction) -> bytes:
    """The action payload exactly as ``make_action`` writes it."""
    payload: dict[str, object] = {
        "type": "membership-action",
        "v": 1,
        "network": _ctx().genesis.network_b64,
        "action": a.action.value,
        "authority": str(a.authority),
        "issued": a.issued,
    }
    if a.prev is not None:
        payload["prev"] = canonical.b64e(a.prev)
    if a.reason is not None:
        payload["reason"] = a.reason
    if a.certificate is not None:
        payload["certificate"] = a.certificate.to_json()
    return canonical.encode(payload)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Everything :meth:`DirectoryState.apply` may change."""

    seq: int
    heads: tuple[bytes, ...]
    time: int
    members: dict[AuthorityId, tuple[MemberStatus, bytes, int, str | None, int]]
    key_owner: dict[bytes, AuthorityId]
    serials: frozenset[str]

    @classmethod
    def of(cls, state: DirectoryState) -> _Snapshot:
        return cls(
            state.seq,
            tuple(state.heads),
            state.time,
            {
                a: (m.status, m.last_action, m.updated_seq, m.reason, len(m.identity_keys))
                for a, m in state.members.items()
            },
            dict(state.key_owner),
            frozenset(state.serials),
        )


def _apply(state: DirectoryState, data: bytes) -> bool:
    """Apply an entry; a refusal must leave ``state`` as it was, an acceptance follow the table."""
    before = _Snapshot.of(state)
    try:
        state.apply(data)
    except ProtocolError:
        _require(_Snapshot.of(state) == before, "a refused log entry changed the directory")
        return False
    entry = decode_log_entry(data, state.genesis)
    _require(state.seq == entry.seq and state.head == entry.hash, "the head did not advance")
    if isinstance(entry, LogEntry):
        action = entry.action
        old = before.members.get(action.authority)
        expected = TRANSITIONS[(None if old is None else old[0], action.action)]
        _require(state.members[action.authority].status is expected, "status is not the table's")
    return True


def log_entry_target(data: bytes) -> bool:
    """The reference decoder of log entries (actions and profiles) against ``fastlog``;
    re-encoding; applying the entry on the prefix of the vector log it continues."""
    ctx = _ctx()
    try:
        reference = decode_log_entry(data, ctx.genesis)
    except ProtocolError as exc:
        try:
            decode_entry(data, ctx.genesis)
        except ProtocolError as fast_exc:
            _require(type(fast_exc) is type(exc), "fastlog refuses for another reason")
        else:
            raise PropertyViolation("fastlog accepts an entry the reference decoder refuses")
        return False
    _require(decode_entry(data, ctx.genesis) == reference, "fastlog's decode_entry differs")
    if isinstance(reference, LogEntry):
        obj = canonical.decode(data, max_size=MAX_ENTRY_SIZE, what="log entry", check_values=False)
        fast = entry_fast(obj, data, ctx.genesis)
        _require(fast is None or fast == reference, "fastlog and the reference decoder disagree")
        rebuilt = make_entry(
            genesis=ctx.genesis, seq=reference.seq, prev=reference.prev, time=reference.time,
            action=reference.action.signed,
        )  # fmt: skip
        _require(_action_payload(reference.action) == reference.action.signed.payload, "action")
    else:
        rebuilt = make_profile_entry(
            genesis=ctx.genesis, seq=reference.seq, prev=reference.prev, time=reference.time,
            profile=reference.profile.signed,
        )  # fmt: skip
        _require(_profile_payload(reference.profile) == reference.profile.signed.payload, "profile")
    _require(rebuilt == data, "a log entry re-encodes to other bytes")
    if reference.seq <= len(ctx.entries) + 1:
        _apply(ctx.directory(reference.seq - 1), data)
    return True


def action_target(data: bytes) -> bool:
    """An admin-signed action container (with its certificate): decode, re-encode, quorum."""
    ctx = _ctx()
    try:
        signed = SignedObject.decode(data, max_size=2 * MAX_ACTION_SIZE, what="action")
        action = MembershipAction.from_signed(signed, ctx.genesis)
    except ProtocolError:
        return False
    _require(signed.encode() == data, "an action container re-encodes otherwise")
    _require(_action_payload(action) == signed.payload, "an action payload re-encodes otherwise")
    with contextlib.suppress(ProtocolError):
        verify_quorum(
            signed, labels.MEMBERSHIP_ACTION, ctx.genesis.admin_keys, ctx.genesis.threshold
        )
    return True


def action_payload_target(data: bytes) -> bool:
    """An action payload signed by the admin quorum, appended as entry 7 of the vector log."""
    ctx = _ctx()
    signed = SignedObject(data, ())
    for admin in ctx.admins[: ctx.genesis.threshold]:
        signed = signed.with_signature(labels.MEMBERSHIP_ACTION, admin)
    try:
        action = MembershipAction.from_signed(signed, ctx.genesis)
    except ProtocolError:
        return False
    _require(_action_payload(action) == data, "an action payload re-encodes otherwise")
    state = ctx.directory()
    entry = make_entry(
        genesis=ctx.genesis, seq=state.seq + 1, prev=state.head, time=state.time, action=signed
    )
    _apply(state, entry)
    return True


# --- hub statements: checkpoints and evidence -----------------------------------------------


def _checkpoint_payload(cp: Checkpoint) -> bytes:
    return canonical.encode(
        {
            "type": "checkpoint",
            "v": 1,
            "network": _ctx().genesis.network_b64,
            "seq": cp.seq,
            "head": canonical.b64e(cp.head),
            "time": cp.time,
        }
    )


def _check_checkpoint(cp: Checkpoint) -> None:
    with contextlib.suppress(ProtocolError):
        _full_directory().check_checkpoint(cp)


def checkpoint_target(data: bytes) -> bool:
    """``Checkpoint.decode``: re-encoding, then comparison with the vector log."""
    try:
        cp = Checkpoint.decode(data, _ctx().genesis)
    except ProtocolError:
        return False
    _require(cp.signed.encode() == data, "a checkpoint container re-encodes otherwise")
    _require(_checkpoint_payload(cp) == cp.signed.payload, "a checkpoint re-encodes otherwise")
    _check_checkpoint(cp)
    return True


def checkpoint_payload_target(data: bytes) -> bool:
    """A checkpoint payload signed by the hub key."""
    ctx = _ctx()
    signed = SignedObject(data, ()).with_signature(labels.CHECKPOINT, ctx.hub)
    try:
        cp = Checkpoint.from_signed(signed, ctx.genesis)
    except ProtocolError:
        return False
    _require(_checkpoint_payload(cp) == data, "a checkpoint payload re-encodes otherwise")
    _check_checkpoint(cp)
    return True


def _evidence_payload(ev: Evidence) -> bytes:
    payload: dict[str, object] = {
        "type": "evidence",
        "v": 1,
        "network": _ctx().genesis.network_b64,
        "kind": ev.kind.value,
        "id": str(ev.message_id),
        "envelope": canonical.b64e(ev.envelope_hash),
        "sender": str(ev.sender),
        "recipients": [str(r) for r in ev.recipients],
        "time": ev.time,
    }
    if ev.reason is not None:
        payload["reason"] = ev.reason
    return canonical.encode(payload)


def evidence_target(data: bytes) -> bool:
    """``Evidence.decode``: re-encoding of container and payload."""
    try:
        ev = Evidence.decode(data, _ctx().genesis)
    except ProtocolError:
        return False
    _require(ev.signed.encode() == data, "an evidence container re-encodes otherwise")
    _require(_evidence_payload(ev) == ev.signed.payload, "evidence re-encodes otherwise")
    return True


def evidence_payload_target(data: bytes) -> bool:
    """An evidence payload signed by the hub key."""
    ctx = _ctx()
    signed = SignedObject(data, ()).with_signature(labels.EVIDENCE, ctx.hub)
    try:
        ev = Evidence.from_signed(signed, ctx.genesis)
    except ProtocolError:
        return False
    _require(_evidence_payload(ev) == data, "an evidence payload re-encodes otherwise")
    return True


# --- member statements: receipts, prekeys, applications -----------------------------------------


def _receipt_payload(r: DeliveryReceipt) -> bytes:
    return canonical.encode(
        {
            "type": "receipt",
            "v": 1,
            "network": _ctx().genesis.network_b64,
            "id": str(r.message_id),
            "envelope": canonical.b64e(r.envelope_hash),
            "sender": str(r.sender),
            "recipient": str(r.recipient),
            "key": str(r.key),
            "time": r.time,
        }
    )


def receipt_target(data: bytes) -> bool:
    """``DeliveryReceipt.decode`` against the vector directory."""
    try:
        receipt = DeliveryReceipt.decode(data, _full_directory())
    except ProtocolError:
        return False
    _require(receipt.signed.encode() == data, "a receipt container re-encodes otherwise")
    _require(_receipt_payload(receipt) == receipt.signed.payload, "a receipt re-encodes otherwise")
    return True


def receipt_payload_target(data: bytes) -> bool:
    """A receipt payload signed by DE-BKA's identity key (the vector receipt's signer)."""
    signed = SignedObject(data, ()).with_signature(labels.RECEIPT, _ctx().signer("DE-BKA"))
    try:
        receipt = DeliveryReceipt.from_signed(signed, _full_directory())
    except ProtocolError:
        return False
    _require(_receipt_payload(receipt) == data, "a receipt payload re-encodes otherwise")
    return True


_PREKEY_OWNER: Final = "FR-PNF"


def _prekey_payload(p: SignedPrekey) -> bytes:
    return canonical.encode(
        {
            "type": "prekey",
            "v": 1,
            "network": _ctx().genesis.network_b64,
            "authority": str(p.authority),
            "key": canonical.b64e(bytes(p.key)),
            "not_before": p.not_before,
            "not_after": p.not_after,
        }
    )


def prekey_target(data: bytes) -> bool:
    """``SignedPrekey.decode`` as FR-PNF's prekey, against its identity key."""
    ctx = _ctx()
    identity = ctx.prekeys[_PREKEY_OWNER][0]
    try:
        prekey = SignedPrekey.decode(
            data, ctx.genesis, identity, authority=AuthorityId.parse(_PREKEY_OWNER)
        )
    except ProtocolError:
        return False
    _require(prekey.signed.encode() == data, "a prekey container re-encodes otherwise")
    _require(_prekey_payload(prekey) == prekey.signed.payload, "a prekey re-encodes otherwise")
    return True


def prekey_payload_target(data: bytes) -> bool:
    """A prekey payload signed by FR-PNF's identity key."""
    ctx = _ctx()
    key = ctx.signer(_PREKEY_OWNER)
    signed = SignedObject(data, ()).with_signature(labels.PREKEY, key)
    try:
        prekey = SignedPrekey.from_signed(
            signed, ctx.genesis, key.verify_key, authority=AuthorityId.parse(_PREKEY_OWNER)
        )
    except ProtocolError:
        return False
    _require(_prekey_payload(prekey) == data, "a prekey payload re-encodes otherwise")
    return True


def _application_payload(app: Application) -> bytes:
    payload: dict[str, object] = {
        "type": "application",
        "v": 1,
        "network": _ctx().genesis.network_b64,
        "authority": str(app.authority),
        "name": app.name,
        "country": app.authority.country,
        "kinds": list(app.kinds),
        "languages": list(app.languages),
        "contact": app.contact,
        "legal_basis": app.legal_basis,
        "identity_key": canonical.b64e(bytes(app.identity_key)),
        "transport_key": canonical.b64e(bytes(app.transport_key)),
        "ka_key": canonical.b64e(bytes(app.ka_key)),
        "created": app.created,
    }
    if app.endpoint is not None:
        payload["endpoint"] = app.endpoint
    return canonical.encode(payload)


def application_target(data: bytes) -> bool:
    """``Application.decode``: both proofs of possession, re-encoding."""
    try:
        app = Application.decode(data, _ctx().genesis)
    except ProtocolError:
        return False
    _require(app.signed.encode() == data, "an application container re-encodes otherwise")
    _require(_application_payload(app) == app.signed.payload, "an application re-encodes")
    return True


def application_payload_target(data: bytes) -> bool:
    """An application payload signed by FR-PNF's identity and transport keys."""
    ctx = _ctx()
    signed = SignedObject(data, ())
    for key in ctx.members["FR-PNF"]:
        signed = signed.with_signature(labels.APPLICATION, key)
    try:
        app = Application.from_signed(signed, ctx.genesis)
    except ProtocolError:
        return False
    _require(_application_payload(app) == data, "an application payload re-encodes otherwise")
    return True


# --- key-update requests ------------------------------------------------------------------------


@functools.cache
def _key_update_directories() -> tuple[DirectoryState, ...]:
    """The directories a key-update request is checked against, read-only: ``log.json``'s
    (every member active; the vectors' requests were made on it), ``key_update.json``'s after
    entry 8 (IT-ANAC's keys replaced, FR-PNF suspended) and ``directory.json``'s (FR-PNF's
    keys replaced, DE-BKA revoked), so every step of PROTOCOL.md §6.8 has a member to reach."""
    ctx = _ctx()
    branch = verify_log(ctx.genesis, [*ctx.entries[: ctx.base], *ctx.key_update_entries[:2]])
    return ctx.directory(), branch, ctx.directory(len(ctx.entries))


@functools.cache
def _member_signing_keys() -> dict[bytes, SigningKey]:
    """Every member signing key the vectors publish, by its public key."""
    ctx = _ctx()
    keys = [*(k for pair in ctx.members.values() for k in pair), *ctx.new_keys]
    return {bytes(k.verify_key): k for k in keys}


def _key_update_payload(req: KeyUpdateRequest) -> bytes:
    """The key-update payload exactly as ``make_key_update`` writes it."""
    return canonical.encode(
        {
            "type": "key-update",
            "v": 1,
            "network": _ctx().genesis.network_b64,
            "authority": str(req.authority),
            "identity_key": canonical.b64e(bytes(req.identity_key)),
            "transport_key": canonical.b64e(bytes(req.transport_key)),
            "ka_key": canonical.b64e(bytes(req.ka_key)),
            "created": req.created,
        }
    )


def _check_key_update(
    state: DirectoryState, check: Callable[[DirectoryState], KeyUpdateRequest]
) -> KeyUpdateRequest | None:
    """``check(state)``, or None if it refuses; either way ``state`` must be left as it was
    (the hub checks requests against its live directory)."""
    before = _Snapshot.of(state)
    try:
        req = check(state)
    except ProtocolError:
        req = None
    _require(_Snapshot.of(state) == before, "checking a key update changed the directory")
    return req


def key_update_target(data: bytes) -> bool:
    """``KeyUpdateRequest.decode`` (the container a member hands the hub) on each directory:
    re-encoding of container and payload."""
    accepted = False
    for state in _key_update_directories():
        req = _check_key_update(state, functools.partial(KeyUpdateRequest.decode, data))
        if req is not None:
            _require(req.signed.encode() == data, "a key-update container re-encodes otherwise")
            _require(_key_update_payload(req) == req.signed.payload, "a key update re-encodes")
            accepted = True
    return accepted


def _raw_key(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return canonical.b64d(value, what="fuzz")
    except ProtocolError:
        return None


def _key_update_fields(data: bytes) -> tuple[AuthorityId | None, list[bytes]]:
    """A payload's authority and new identity and transport keys, as far as they read."""
    try:
        obj = SignedObject(data, ()).payload_json(what="fuzz")
    except ProtocolError:
        return None, []
    name = obj.get("authority")
    try:
        authority = AuthorityId.parse(name) if isinstance(name, str) else None
    except ProtocolError:
        authority = None
    keys = (_raw_key(obj.get(field)) for field in ("identity_key", "transport_key"))
    return authority, [k for k in keys if k is not None]


def key_update_payload_target(data: bytes) -> bool:
    """A key-update payload signed, on each directory, as its member would sign it: by the
    named member's current identity key and the new identity and transport keys, those of
    them the vectors publish."""
    known = _member_signing_keys()
    authority, new = _key_update_fields(data)
    accepted = False
    for state in _key_update_directories():
        member = state.members.get(authority) if authority is not None else None
        current = [bytes(member.certificate.identity_key)] if member is not None else []
        signed = SignedObject(data, ())
        for raw in dict.fromkeys([*current, *new]):
            if raw in known:
                signed = signed.with_signature(labels.KEY_UPDATE, known[raw])
        req = _check_key_update(state, functools.partial(KeyUpdateRequest.from_signed, signed))
        if req is not None:
            _require(_key_update_payload(req) == data, "a key-update payload re-encodes otherwise")
            accepted = True
    return accepted


# --- the genesis ------------------------------------------------------------------------------


def _genesis_payload(g: Genesis) -> bytes:
    return canonical.encode(
        {
            "type": "genesis",
            "v": 1,
            "network_id": str(g.network_id),
            "name": g.name,
            "admins": [{"name": a.name, "key": canonical.b64e(bytes(a.key))} for a in g.admins],
            "threshold": g.threshold,
            "hub_key": canonical.b64e(bytes(g.hub_key)),
            "hub_url": g.hub_url,
            "created": g.created,
        }
    )


def genesis_target(data: bytes) -> bool:
    """``Genesis.decode``: quorum of its own admins, re-encoding."""
    try:
        genesis = Genesis.decode(data)
    except ProtocolError:
        return False
    _require(genesis.encode() == data, "a genesis container re-encodes otherwise")
    _require(_genesis_payload(genesis) == genesis.signed.payload, "a genesis re-encodes otherwise")
    return True


def genesis_payload_target(data: bytes) -> bool:
    """A genesis payload signed by every admin of the vectors."""
    if len(data) > MAX_GENESIS_SIZE:
        return False
    signed = SignedObject(data, ())
    for admin in _ctx().admins:
        signed = signed.with_signature(labels.GENESIS, admin)
    try:
        genesis = Genesis.from_signed(signed)
    except ProtocolError:
        return False
    _require(_genesis_payload(genesis) == data, "a genesis payload re-encodes otherwise")
    return True


# --- member profiles ---------------------------------------------------------------------------


def _profile_payload(p: Profile) -> bytes:
    """The profile payload exactly as ``make_profile`` writes it."""
    payload: dict[str, object] = {
        "type": "profile",
        "v": 1,
        "network": _ctx().genesis.network_b64,
        "authority": str(p.authority),
        "seq": p.seq,
        "offences": list(p.offences),
        "contacts": [c.to_json() for c in p.contacts],
    }
    if p.time_zone is not None:
        payload["time_zone"] = p.time_zone
    if p.note is not None:
        payload["note"] = p.note
    return canonical.encode(payload)


def profile_target(data: bytes) -> bool:
    """``Profile.decode`` (a container a member hands the hub), re-encoding, its signature."""
    try:
        profile = Profile.decode(data, _ctx().genesis)
    except ProtocolError:
        return False
    _require(profile.signed.encode() == data, "a profile container re-encodes otherwise")
    _require(_profile_payload(profile) == profile.signed.payload, "a profile re-encodes otherwise")
    with contextlib.suppress(ProtocolError):
        profile.verify(_ctx().signer(_PREKEY_OWNER).verify_key)
    return True


def profile_payload_target(data: bytes) -> bool:
    """A profile payload signed by FR-PNF's identity key, then appended to the vector log."""
    ctx = _ctx()
    key = ctx.signer(_PREKEY_OWNER)
    signed = SignedObject(data, ()).with_signature(labels.PROFILE, key)
    try:
        profile = Profile.from_signed(signed, ctx.genesis)
        profile.verify(key.verify_key)
    except ProtocolError:
        return False
    _require(_profile_payload(profile) == data, "a profile payload re-encodes otherwise")
    state = ctx.directory()
    entry = make_profile_entry(
        genesis=ctx.genesis, seq=state.seq + 1, prev=state.head, time=state.time, profile=signed
    )
    _apply(state, entry)
    return True


# --- request authentication --------------------------------------------------------------


def request_auth_target(data: bytes) -> bool:
    """``Globe-Auth`` header, method, target and body, one per line (the body is the rest):
    parse, re-format, verify; an accepted request is exactly what ``sign_request`` makes."""
    parts = data.split(b"\n", 3)
    header, method, target, body = (*parts, b"", b"", b"")[:4]
    text = _text(header)
    try:
        auth = parse_request_auth(text)
    except ProtocolError:
        return False
    formatted = (
        f"v1;kid={auth.key_id};created={auth.created};"
        f"nonce={canonical.b64e(auth.nonce)};sig={canonical.b64e(auth.signature)}"
    )
    _require(formatted == text, "a parsed Globe-Auth header re-formats otherwise")
    ctx = _ctx()
    case = ctx.request
    network, audience = ctx.genesis.digest, case.audience
    method_text, target_text = _text(method), _text(target)
    try:
        verify_request(
            auth, key=case.transport.verify_key, network=network, audience=audience,
            method=method_text, target=target_text, body=body, now=case.now,
        )  # fmt: skip
    except ProtocolError:
        return True
    again = sign_request(
        key=case.transport, network=network, audience=audience, method=method_text,
        target=target_text, body=body, created=auth.created, rng=lambda _n: auth.nonce,
    )  # fmt: skip
    _require(again == text, "a verified request is not what sign_request makes")
    return True


# --- attachments -----------------------------------------------------------------------------

#: Slice sizes the stream is fed in: odd ones, one smaller than a header, one over a chunk.
_SLICES: Final = (1, 15, 4096, 7, 4113, 65_536)


def attachment_target(data: bytes) -> bool:
    """``AttachmentDecryptor`` fed in uneven slices; an accepted stream is exactly what
    ``AttachmentEncryptor`` makes of its plaintext, and one ``update`` gives the same."""
    ctx = _ctx()
    decryptor = AttachmentDecryptor(ctx.attachment_key, ctx.attachment_blob_id)
    out: list[bytes] = []
    pos, i = 0, 0
    try:
        while pos < len(data):
            size = _SLICES[i % len(_SLICES)]
            out.append(decryptor.update(data[pos : pos + size]))
            pos, i = pos + size, i + 1
        out.append(decryptor.finalize())
    except ProtocolError:
        return False
    plaintext = b"".join(out)
    _require(decryptor.size == len(plaintext), "size is not the bytes released")
    chunk_size = decryptor.chunk_size
    assert chunk_size is not None  # noqa: S101 - the header was read
    encryptor = AttachmentEncryptor(ctx.attachment_key, ctx.attachment_blob_id, chunk_size)
    again = encryptor.header() + encryptor.update(plaintext) + encryptor.finalize()
    _require(again == data, "an accepted stream is not the encryption of its plaintext")
    whole = AttachmentDecryptor(ctx.attachment_key, ctx.attachment_blob_id)
    _require(whole.update(data) + whole.finalize() == plaintext, "slicing changed the output")
    _require(whole.sha256 == decryptor.sha256, "slicing changed the digest")
    return True


# --- message content and forwards -------------------------------------------------------------


def message_target(data: bytes) -> bool:
    """``MessageContent.decode``: accepted content re-encodes to its bytes."""
    try:
        content = MessageContent.decode(data)
    except ProtocolError:
        return False
    _require(content.encode() == data, "message content re-encodes to other bytes")
    return True


def forward_target(data: bytes) -> bool:
    """A forward's content, then ``verify_forward`` as the vectors' forwarder and recipient."""
    ctx = _ctx()
    try:
        content = MessageContent.decode(data)
    except ProtocolError:
        return False
    _require(content.encode() == data, "message content re-encodes to other bytes")
    try:
        origin = verify_forward(
            content,
            forwarder=ctx.forwarder,
            recipient=ctx.forward_recipient,
            directory=_full_directory(),
        )
    except ProtocolError:
        return True
    _require(origin.content.encode() == origin.signed.content, "the origin re-encodes otherwise")
    _require(origin.header.raw == origin.signed.header, "the origin's header is not its bytes")
    return True


# --- identifiers and public keys --------------------------------------------------------------


def ids_target(data: bytes) -> bool:
    """Authority, key, message and network ids: an accepted text is its own string form."""
    text = _text(data)
    accepted = False
    parsers: tuple[Callable[[object], object], ...] = (
        AuthorityId.parse,
        KeyId.parse,
        MessageId.parse,
        NetworkId.parse,
    )
    for parse in parsers:
        try:
            value = parse(text)
        except ProtocolError:
            continue
        _require(str(value) == text, f"{parse.__qualname__} normalised its input")
        accepted = True
    return accepted


def public_keys_target(data: bytes) -> bool:
    """Ed25519 and hybrid KEM public keys: an accepted key is its own encoding."""
    accepted = False
    try:
        ed = VerifyKey(data)
    except ProtocolError:
        pass
    else:
        _require(bytes(ed) == data, "an Ed25519 key is not its bytes")
        _require(VerifyKey.from_certified(data) == ed, "from_certified differs")
        accepted = True
    try:
        kem = KemPublicKey(data)
    except ProtocolError:
        pass
    else:
        _require(bytes(kem) == data, "a KEM key is not its bytes")
        accepted = True
    return accepted


#: Every target, by the name of its corpus directory.
TARGETS: Final[dict[str, Target]] = {
    "canonical": canonical_target,
    "base64url": base64url_target,
    "strictjson": strictjson_target,
    "envelope": envelope_target,
    "envelope_header": header_target,
    "log_entry": log_entry_target,
    "action": action_target,
    "action_payload": action_payload_target,
    "checkpoint": checkpoint_target,
    "checkpoint_payload": checkpoint_payload_target,
    "evidence": evidence_target,
    "evidence_payload": evidence_payload_target,
    "receipt": receipt_target,
    "receipt_payload": receipt_payload_target,
    "prekey": prekey_target,
    "prekey_payload": prekey_payload_target,
    "application": application_target,
    "application_payload": application_payload_target,
    "key_update": key_update_target,
    "key_update_payload": key_update_payload_target,
    "profile": profile_target,
    "profile_payload": profile_payload_target,
    "genesis": genesis_target,
    "genesis_payload": genesis_payload_target,
    "request_auth": request_auth_target,
    "attachment": attachment_target,
    "message": message_target,
    "forward": forward_target,
    "ids": ids_target,
    "public_keys": public_keys_target,
}
