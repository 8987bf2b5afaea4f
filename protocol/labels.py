"""Every context label of protocol v1, in one place (docs/PROTOCOL.md §4).

Each signature and each key-derivation or hashing use has its own label
(R3).  A label is prefixed to the signed or hashed bytes as
``label || 0x00 || data``; labels are ASCII and contain no NUL, so input made
under one label can never verify under another.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALL_LABELS",
    "APPLICATION",
    "ATTACHMENT",
    "AUTHORITY_FINGERPRINT",
    "BODY_AAD",
    "BUNDLE",
    "CHECKPOINT",
    "CONTENT",
    "ENVELOPE",
    "ENVELOPE_HASH",
    "EVIDENCE",
    "GENESIS",
    "GENESIS_FINGERPRINT",
    "KEM_POP",
    "KEYSTORE",
    "KEY_COMMIT",
    "KEY_ID",
    "KEY_UPDATE",
    "LOG_ENTRY",
    "MEMBERSHIP_ACTION",
    "OBJECT_HASH",
    "PREKEY",
    "PROFILE",
    "RECEIPT",
    "REQUEST_AUTH",
    "WRAP",
]

GENESIS: Final = b"globe/v1/genesis"
KEY_ID: Final = b"globe/v1/key-id"
GENESIS_FINGERPRINT: Final = b"globe/v1/genesis-fingerprint"
AUTHORITY_FINGERPRINT: Final = b"globe/v1/authority-fingerprint"
APPLICATION: Final = b"globe/v1/application"
KEM_POP: Final = b"globe/v1/kem-pop"
MEMBERSHIP_ACTION: Final = b"globe/v1/membership-action"
LOG_ENTRY: Final = b"globe/v1/log-entry"
CHECKPOINT: Final = b"globe/v1/checkpoint"
PREKEY: Final = b"globe/v1/prekey"
ENVELOPE: Final = b"globe/v1/envelope"
ENVELOPE_HASH: Final = b"globe/v1/envelope-hash"
CONTENT: Final = b"globe/v1/content"
BODY_AAD: Final = b"globe/v1/body"
WRAP: Final = b"globe/v1/wrap"
KEY_COMMIT: Final = b"globe/v1/key-commit"
RECEIPT: Final = b"globe/v1/receipt"
EVIDENCE: Final = b"globe/v1/evidence"
REQUEST_AUTH: Final = b"globe/v1/request-auth"
OBJECT_HASH: Final = b"globe/v1/object-hash"
KEYSTORE: Final = b"globe/v1/keystore"
ATTACHMENT: Final = b"globe/v1/attachment"
PROFILE: Final = b"globe/v1/profile"
BUNDLE: Final = b"globe/v1/bundle"
KEY_UPDATE: Final = b"globe/v1/key-update"

ALL_LABELS: Final = (
    GENESIS,
    KEY_ID,
    GENESIS_FINGERPRINT,
    AUTHORITY_FINGERPRINT,
    APPLICATION,
    KEM_POP,
    MEMBERSHIP_ACTION,
    LOG_ENTRY,
    CHECKPOINT,
    PREKEY,
    ENVELOPE,
    ENVELOPE_HASH,
    CONTENT,
    BODY_AAD,
    WRAP,
    KEY_COMMIT,
    RECEIPT,
    EVIDENCE,
    REQUEST_AUTH,
    OBJECT_HASH,
    KEYSTORE,
    ATTACHMENT,
    PROFILE,
    BUNDLE,
    KEY_UPDATE,
)
