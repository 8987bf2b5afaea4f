"""GlobE Link protocol v1: sans-IO identities, encodings, envelopes and membership.

No networking, no database, no clock: callers pass ``now`` (Unix seconds)
and bytes in, and get bytes and typed results out.  Every refusal is a
:class:`~protocol.errors.GlobeError`.  The wire format is specified in
``docs/PROTOCOL.md``.
"""

from __future__ import annotations

from protocol.attachments import AttachmentDecryptor, AttachmentEncryptor, encrypted_size
from protocol.directory import DirectoryState, HeadRelation, Member, MemberStatus, verify_log
from protocol.envelope import (
    Envelope,
    EnvelopeHeader,
    OpenedEnvelope,
    SealTo,
    check_recipients_active,
    envelope_hash,
    open_envelope,
    parse_envelope,
    seal_envelope,
    seal_envelope_signed,
    verify_envelope,
)
from protocol.errors import GlobeError, ProtocolError, UsageError
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId, KeyId, MessageId, NetworkId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Application,
    Certificate,
    Checkpoint,
    LogEntry,
    MembershipAction,
    authority_fingerprint,
    make_action,
    make_application,
    make_checkpoint,
    make_entry,
)
from protocol.messages import Handling, Kind, MessageContent, Tlp, Urgency
from protocol.prekeys import SignedPrekey, make_prekey
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind, make_evidence, make_receipt
from protocol.signed import SignedObject

__all__ = [
    "Action",
    "Application",
    "AttachmentDecryptor",
    "AttachmentEncryptor",
    "AuthorityId",
    "Certificate",
    "Checkpoint",
    "DeliveryReceipt",
    "DirectoryState",
    "Envelope",
    "EnvelopeHeader",
    "Evidence",
    "EvidenceKind",
    "Genesis",
    "GlobeError",
    "Handling",
    "HeadRelation",
    "KemPrivateKey",
    "KemPublicKey",
    "KeyId",
    "Kind",
    "LogEntry",
    "Member",
    "MemberStatus",
    "MembershipAction",
    "MessageContent",
    "MessageId",
    "NetworkId",
    "OpenedEnvelope",
    "ProtocolError",
    "SealTo",
    "SignedObject",
    "SignedPrekey",
    "SigningKey",
    "Tlp",
    "Urgency",
    "UsageError",
    "VerifyKey",
    "authority_fingerprint",
    "check_recipients_active",
    "encrypted_size",
    "envelope_hash",
    "make_action",
    "make_application",
    "make_checkpoint",
    "make_entry",
    "make_evidence",
    "make_genesis",
    "make_prekey",
    "make_receipt",
    "open_envelope",
    "parse_envelope",
    "seal_envelope",
    "seal_envelope_signed",
    "verify_envelope",
    "verify_log",
]
