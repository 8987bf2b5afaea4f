"""Fast decoding of membership log entries for directory verification.

:meth:`protocol.membership.LogEntry.decode` is the reference decoder: strict,
field by field, naming each defect.  Replaying a log of 100 k entries spends
most of its non-signature time there, in per-field reader calls.  This module
decodes a well-formed entry in one pass over plain dicts and returns exactly
the :class:`LogEntry` the reference decoder returns; for anything unusual it
returns ``None`` and :func:`decode_entry` falls back to the reference decoder,
which then raises the precise error.  ``tests/protocol/test_fast_paths.py``
checks that the two agree.
"""

from __future__ import annotations

import re
from typing import Any, Final

from protocol import canonical
from protocol.crypto import ED25519_SIG_LEN, KEM_PUBLIC_LEN
from protocol.errors import GlobeError
from protocol.genesis import Genesis, check_url
from protocol.ids import AuthorityId, KeyId
from protocol.keys import VerifyKey
from protocol.membership import (
    AUTHORITY_KINDS,
    MAX_ACTION_SIZE,
    MAX_ENTRY_SIZE,
    Action,
    Certificate,
    LogEntry,
    MembershipAction,
)
from protocol.profile import ProfileEntry
from protocol.signed import MAX_SIGNATURES, Signature, SignedObject

__all__ = ["decode_entry", "entry_fast"]

_ENTRY_KEYS: Final = frozenset(["type", "v", "network", "seq", "prev", "time", "action"])
_CONTAINER_KEYS: Final = frozenset(["payload", "sigs"])
_SIG_KEYS: Final = frozenset(["kid", "sig"])
_ACTION_REQUIRED: Final = frozenset(["type", "v", "network", "action", "authority", "issued"])
_ACTION_OPTIONAL: Final = frozenset(["prev", "reason", "certificate"])
_CERT_REQUIRED: Final = frozenset(
    [
        "serial",
        "name",
        "country",
        "kinds",
        "languages",
        "identity_key",
        "transport_key",
        "ka_key",
        "not_before",
        "not_after",
    ]
)
_CERT_OPTIONAL: Final = frozenset(["endpoint", "application"])
_SERIAL_RE: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)
_LANG_RE: Final = re.compile(r"[a-z]{2}\Z", re.ASCII)
_ACTIONS: Final = {a.value: a for a in Action}
_MAX_INT: Final = canonical.MAX_INT
_KEM_B64: Final = (KEM_PUBLIC_LEN * 4 + 2) // 3  # 1,622 characters


def _uint(value: object, lo: int = 0) -> bool:
    return type(value) is int and lo <= value <= _MAX_INT


def _b64(value: object, n_chars: int) -> bytes | None:
    if type(value) is not str or len(value) != n_chars:
        return None
    return canonical.b64d(value, what="log entry")


def _text(value: object, max_len: int, *, multiline: bool) -> bool:
    return (
        type(value) is str
        and 1 <= len(value) <= max_len
        and not canonical.has_hidden_chars(value)
        and (multiline or ("\n" not in value and "\t" not in value))
    )


def _sorted_unique_strs(value: object, lo: int, hi: int, max_len: int) -> list[str] | None:
    if type(value) is not list or not lo <= len(value) <= hi:
        return None
    if any(type(x) is not str or not 1 <= len(x) <= max_len for x in value):
        return None
    return value if value == sorted(set(value)) else None


def entry_fast(obj: dict[str, Any], data: bytes, genesis: Genesis) -> LogEntry | None:  # noqa: PLR0911
    """The entry if it is plainly well formed, else ``None`` (the caller falls back)."""
    try:
        net = genesis.network_b64
        if obj.keys() != _ENTRY_KEYS or obj["type"] != "log-entry" or obj["network"] != net:
            return None
        v, seq, time, container = obj["v"], obj["seq"], obj["time"], obj["action"]
        if not (_uint(v) and v == 1 and _uint(seq, 1) and _uint(time)):
            return None
        prev = _b64(obj["prev"], 43)
        if prev is None or type(container) is not dict or container.keys() != _CONTAINER_KEYS:
            return None
        sigs_in, payload_text = container["sigs"], container["payload"]
        if type(payload_text) is not str or type(sigs_in) is not list:
            return None
        if len(sigs_in) > MAX_SIGNATURES:
            return None
        sigs: list[Signature] = []
        kids: list[str] = []
        for item in sigs_in:
            if type(item) is not dict or item.keys() != _SIG_KEYS or type(item["kid"]) is not str:
                return None
            sig = _b64(item["sig"], 86)
            if sig is None or len(sig) != ED25519_SIG_LEN:
                return None
            kids.append(item["kid"])
            sigs.append(Signature(KeyId.parse(item["kid"]), sig))
        if kids != sorted(set(kids)):
            return None
        payload = canonical.b64d(payload_text, what="log entry")
        if len(payload) > MAX_ACTION_SIZE:
            return None
        signed = SignedObject(payload, tuple(sigs))
        action = _action_fast(signed, genesis)
        return None if action is None else LogEntry(data, seq, prev, time, action)
    except GlobeError:
        return None


def _action_fast(signed: SignedObject, genesis: Genesis) -> MembershipAction | None:  # noqa: PLR0911
    p: dict[str, Any] = canonical.decode(
        signed.payload, max_size=len(signed.payload), what="action", check_values=False
    )
    keys = p.keys()
    if not (keys >= _ACTION_REQUIRED and keys - _ACTION_REQUIRED <= _ACTION_OPTIONAL):
        return None
    if p["type"] != "membership-action" or p["network"] != genesis.network_b64:
        return None
    v, issued, name = p["v"], p["issued"], p["action"]
    if not (_uint(v) and v == 1 and _uint(issued) and type(name) is str and name in _ACTIONS):
        return None
    kind = _ACTIONS[name]
    authority = AuthorityId.parse(p["authority"])
    prev = None
    if "prev" in p:
        prev = _b64(p["prev"], 43)
        if prev is None:
            return None
    reason = p.get("reason")
    if reason is not None and not _text(reason, 2000, multiline=True):
        return None
    cert = None
    if "certificate" in p:
        cert = _certificate_fast(p["certificate"], authority)
        if cert is None:
            return None
    carries_cert = kind in (Action.ADMIT, Action.UPDATE_KEYS)
    if carries_cert != (cert is not None) or (kind is Action.ADMIT) != (prev is None):
        return None
    if (not carries_cert and reason is None) or (
        kind is Action.ADMIT and cert is not None and cert.application is None
    ):
        return None
    return MembershipAction(signed, kind, authority, prev, issued, reason, cert)


def _certificate_fast(c: object, authority: AuthorityId) -> Certificate | None:  # noqa: PLR0911
    if type(c) is not dict:
        return None
    keys = c.keys()
    if not (keys >= _CERT_REQUIRED and keys - _CERT_REQUIRED <= _CERT_OPTIONAL):
        return None
    serial, name, nb, na = c["serial"], c["name"], c["not_before"], c["not_after"]
    if type(serial) is not str or not _SERIAL_RE.match(serial):
        return None
    if not _text(name, 200, multiline=False) or c["country"] != authority.country:
        return None
    kinds = _sorted_unique_strs(c["kinds"], 1, len(AUTHORITY_KINDS), 32)
    langs = _sorted_unique_strs(c["languages"], 1, 16, 2)
    if kinds is None or langs is None or any(k not in AUTHORITY_KINDS for k in kinds):
        return None
    if any(not _LANG_RE.match(x) for x in langs):
        return None
    endpoint = c.get("endpoint")
    if endpoint is not None:
        if type(endpoint) is not str or len(endpoint) > 2048:
            return None
        check_url(endpoint, "certificate")
    identity, transport = _b64(c["identity_key"], 43), _b64(c["transport_key"], 43)
    ka = _b64(c["ka_key"], _KEM_B64)
    application = None
    if "application" in c:
        application = _b64(c["application"], 43)
        if application is None:
            return None
    if identity is None or transport is None or ka is None or identity == transport:
        return None
    if not (_uint(nb) and _uint(na) and na > nb):
        return None
    return Certificate(
        authority, serial, name, tuple(kinds), tuple(langs), endpoint,
        VerifyKey.from_certified(identity), VerifyKey.from_certified(transport), ka, nb, na,
        application,
    )  # fmt: skip


def decode_entry(data: bytes, genesis: Genesis) -> LogEntry | ProfileEntry:
    """Decode an entry: the fast path when it applies, else the reference decoder.

    An entry with a ``profile`` member is a profile entry (PROTOCOL.md §6.7): rare next
    to actions at replay, so it always takes the reference decoder.
    """
    obj = canonical.decode(data, max_size=MAX_ENTRY_SIZE, what="log entry", check_values=False)
    if "profile" in obj:
        return ProfileEntry.decode(data, genesis)
    return entry_fast(obj, data, genesis) or LogEntry.decode(data, genesis)
