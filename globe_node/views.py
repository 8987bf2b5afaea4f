"""Typed results of the node's queries, serialised only at the local API (``to_json``).

Each is a frozen dataclass; its ``to_json`` is the exact JSON the local API
answers (and that the CLI and the web UI read), so the shape is declared once,
here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from globe_node.alerts import AlertView
from globe_node.compartments import Placement
from globe_node.peerheads import Behind
from protocol.messages import MessageContent

__all__ = [
    "AlertView",
    "DeliveryView",
    "HeldMessage",
    "InMeta",
    "InboxItem",
    "KeyUpdateState",
    "KeyUpdateView",
    "KeysView",
    "NodeStatus",
    "OutMeta",
    "OutboxItem",
    "PrekeyView",
    "RecipientState",
]


@dataclass(frozen=True, slots=True)
class RecipientState:
    """One recipient's copy of a sent message."""

    state: str
    via: str | None
    attempts: int
    error: str | None
    delivered: int | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"state": self.state, "via": self.via, "attempts": self.attempts,
                "error": self.error, "delivered": self.delivered}  # fmt: skip


@dataclass(frozen=True, slots=True)
class InMeta:
    """What the node knows of a received message besides its content."""

    sender: str
    received: int
    via: str
    order: str
    seq: int
    read_at: int | None
    head_relation: str
    suspect: str | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "sender": self.sender, "received": self.received, "via": self.via,
            "order": self.order, "seq": self.seq, "read_at": self.read_at,
            "head_relation": self.head_relation, "suspect": self.suspect,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutMeta:
    """What the node knows of a message it sent besides its content."""

    sender: str
    created: int
    recipients: dict[str, RecipientState]

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"sender": self.sender, "created": self.created,
                "recipients": {k: v.to_json() for k, v in self.recipients.items()}}  # fmt: skip


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A stored message, received (``in``) or sent (``out``), and where it is filed."""

    direction: str
    content: MessageContent
    meta: InMeta | OutMeta
    place: Placement = field(default_factory=lambda: Placement(None, None))

    @property
    def sender(self) -> str:
        """Who wrote this copy (this node, for a sent message)."""
        return self.meta.sender

    def __iter__(self) -> Any:
        """Unpack as ``direction, content, meta``."""
        return iter((self.direction, self.content, self.meta))


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A received message in the inbox list."""

    id: str
    sender: str
    kind: str
    subject: str
    urgency: str
    tlp: str
    case: str | None
    received: int
    via: str
    read: bool
    order: str
    attachments: int
    suspect: str | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form (the sender is ``from``)."""
        return {
            "id": self.id, "from": self.sender, "kind": self.kind, "subject": self.subject,
            "urgency": self.urgency, "tlp": self.tlp, "case": self.case,
            "received": self.received, "via": self.via, "read": self.read, "order": self.order,
            "attachments": self.attachments, "suspect": self.suspect,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A sent message in the outbox list, with its subject and handling (decrypted) and
    each recipient's delivery state."""

    id: str
    kind: str
    subject: str
    urgency: str
    tlp: str
    case: str | None
    created: int
    recipients: dict[str, RecipientState]

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "id": self.id, "kind": self.kind, "subject": self.subject, "urgency": self.urgency,
            "tlp": self.tlp, "case": self.case, "created": self.created,
            "recipients": {k: v.to_json() for k, v in self.recipients.items()},
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """One sent message's delivery, with its attachment upload progress."""

    id: str
    recipients: dict[str, RecipientState]
    upload: tuple[int, int] | None
    pending_blobs: int

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        up = None if self.upload is None else {"done": self.upload[0], "total": self.upload[1]}
        return {"id": self.id, "recipients": {k: v.to_json() for k, v in self.recipients.items()},
                "upload": up, "pending_blobs": self.pending_blobs}  # fmt: skip


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """Membership, directory, hub, queues, requests and alerts at a glance, the
    reminders addressed to the user who asks (with how the reminder command fares), and
    the node directory's disk use (bytes; ``free_bytes``: free on its file system)."""

    authority: str
    membership: str
    seq: int
    head: str
    age_s: int | None
    max_age_s: int
    members: int
    behind_peer: Behind | None
    hub_url: str
    hub_reachable: bool | None
    push_connected: bool
    outbox: dict[str, int] = field(default_factory=dict)
    inbox_unread: int = 0
    requests_open: int = 0
    requests_overdue: int = 0
    alerts: int = 0
    reminders: tuple[AlertView, ...] = ()
    hook_runs: int = 0
    hook_failures: int = 0
    database_bytes: int = 0  # node.db with its WAL and shared-memory files
    blob_bytes: int = 0  # attachment files of sent and received messages
    upload_bytes: int = 0  # files of staged uploads no message took yet
    free_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "authority": self.authority,
            "membership": self.membership,
            "directory": {
                "seq": self.seq, "head": self.head, "age_s": self.age_s,
                "max_age_s": self.max_age_s, "members": self.members,
                "behind_peer": self.behind_peer.to_json() if self.behind_peer else None,
            },
            "hub": {"url": self.hub_url, "reachable": self.hub_reachable,
                    "push_connected": self.push_connected},
            "outbox": dict(self.outbox),
            "inbox_unread": self.inbox_unread,
            "requests_open": self.requests_open,
            "requests_overdue": self.requests_overdue,
            "alerts": self.alerts,
            "reminders": {
                "notices": [r.to_json() for r in self.reminders],
                "hook": {"runs": self.hook_runs, "failures": self.hook_failures},
            },
            "disk": {
                "database_bytes": self.database_bytes, "blob_bytes": self.blob_bytes,
                "upload_bytes": self.upload_bytes, "free_bytes": self.free_bytes,
            },
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class PrekeyView:
    """This node's current signed prekey: its key id, whether the hub holds it.

    The hub gives senders the published ones; it is valid from ``valid_from`` until
    ``expires`` (Unix times, ``expires`` excluded)."""

    id: str
    published: bool
    valid_from: int
    expires: int

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"id": self.id, "published": self.published, "valid_from": self.valid_from,
                "expires": self.expires}  # fmt: skip


class KeyUpdateState(Enum):
    """Where a key update this node asked for stands, as the node itself can tell (what the
    hub says of the request is ``globe-node keys update --status``)."""

    REQUESTED = "requested"  # the verified log does not certify the next keys yet
    CERTIFIED = "certified"  # it does: the node switches to them at its next sync


@dataclass(frozen=True, slots=True)
class KeyUpdateView:
    """A key update this node asked for (PROTOCOL.md §6.8), and where it stands.

    When it was asked for, its state, and the next keys' fingerprint and key ids (a key
    kept has the current one's id).  The state is a
    :class:`KeyUpdateState`: ``requested`` while the verified log does not certify the
    next keys (the administrators have not signed, or the node has not synced since),
    ``certified`` once it does (the node switches to them at its next sync)."""

    requested: int
    state: str
    fingerprint: str
    identity_key: str
    transport_key: str
    ka_key: str

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"requested": self.requested, "state": self.state,
                "fingerprint": self.fingerprint, "identity_key": self.identity_key,
                "transport_key": self.transport_key, "ka_key": self.ka_key}  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeysView:
    """This node's public key information: nothing secret.

    Its authority fingerprint (PROTOCOL.md §3.4), the key ids of its identity, transport
    and key-agreement keys, whether its verified log certifies exactly these keys, its
    current signed prekey and a pending key update."""

    authority: str
    fingerprint: str
    identity_key: str
    transport_key: str
    ka_key: str
    certified: bool
    prekey: PrekeyView | None
    update: KeyUpdateView | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "authority": self.authority, "fingerprint": self.fingerprint,
            "identity_key": self.identity_key, "transport_key": self.transport_key,
            "ka_key": self.ka_key, "certified": self.certified,
            "prekey": None if self.prekey is None else self.prekey.to_json(),
            "update": None if self.update is None else self.update.to_json(),
        }  # fmt: skip
