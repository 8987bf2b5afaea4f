"""Replay, conflict and sequence-gap rules (R7; docs/PROTOCOL.md §7.6).

The durable seen-set lives in the node's and the hub's databases; the rules
for what a repeated id *means* live here, so both apply them identically:

* same ``(sender, message id)``, same envelope hash → **replay**
  (harmless: acknowledge again, show nothing new);
* same ``(sender, message id)``, different hash → **conflict** (keep both as
  evidence, show neither as new);
* record an envelope in the seen-set only after it has been fully verified
  (outer signature at the hub; everything up to the inner signature at a
  node): recording unverified bytes would let anyone who guesses or copies an
  id turn a genuine message into a "conflict";
* per-pair sequence numbers: a jump forward is a **gap** (messages missing
  or still in flight), a number at or below the last one is **old**.

:class:`NonceWindow` is the bounded in-memory store for request-auth nonces.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from protocol.errors import ConflictError, ReplayError
from protocol.ids import AuthorityId, KeyId, MessageId

__all__ = [
    "NonceWindow",
    "SeenSet",
    "SeenVerdict",
    "SeqVerdict",
    "classify_seen",
    "classify_seq",
]


class SeenVerdict(Enum):
    """What a message id seen before means."""

    NEW = "new"
    REPLAY = "replay"
    CONFLICT = "conflict"


def classify_seen(previous_hash: bytes | None, envelope_hash: bytes) -> SeenVerdict:
    """Classify an envelope against the hash recorded for its ``(sender, id)``, if any."""
    if previous_hash is None:
        return SeenVerdict.NEW
    return SeenVerdict.REPLAY if previous_hash == envelope_hash else SeenVerdict.CONFLICT


class SeenSet:
    """In-memory seen-set with the same semantics as the durable ones."""

    def __init__(self) -> None:
        self._seen: dict[tuple[AuthorityId, MessageId], bytes] = {}

    def check_and_add(self, sender: AuthorityId, message_id: MessageId, env_hash: bytes) -> None:
        """Record a new message; raise :class:`ReplayError` or :class:`ConflictError`."""
        verdict = classify_seen(self._seen.get((sender, message_id)), env_hash)
        if verdict is SeenVerdict.REPLAY:
            raise ReplayError(f"message {message_id} from {sender} was already received")
        if verdict is SeenVerdict.CONFLICT:
            raise ConflictError(f"message {message_id} from {sender} differs from the one seen")
        self._seen[(sender, message_id)] = env_hash


@dataclass(frozen=True, slots=True)
class SeqVerdict:
    """Result of checking a per-pair sequence number."""

    in_order: bool
    missing: range  # sequence numbers skipped (empty if none)
    old: bool  # at or below the highest already seen (late or duplicate)


def classify_seq(last_seen: int, seq: int) -> SeqVerdict:
    """Compare ``seq`` with the highest number seen so far for the pair (0 if none)."""
    if seq <= last_seen:
        return SeqVerdict(in_order=False, missing=range(0), old=True)
    return SeqVerdict(in_order=seq == last_seen + 1, missing=range(last_seen + 1, seq), old=False)


class NonceWindow:
    """Remembers request nonces for as long as their timestamp is acceptable.

    Bounded: at most ``capacity`` nonces; beyond that the oldest are dropped,
    which is safe only because their timestamps have also aged out — size
    ``capacity`` above the request rate times the window.
    """

    def __init__(self, *, window: int, capacity: int = 1_000_000) -> None:
        self._window = window
        self._capacity = capacity
        self._seen: OrderedDict[tuple[KeyId, bytes], int] = OrderedDict()

    def check_and_add(self, key_id: KeyId, nonce: bytes, created: int, now: int) -> None:
        """Raise :class:`ReplayError` if ``(key_id, nonce)`` is still remembered."""
        self._expire(now)
        if (key_id, nonce) in self._seen:
            raise ReplayError("request nonce already used")
        self._seen[(key_id, nonce)] = created
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def _expire(self, now: int) -> None:
        # Insertion order approximates time order; stop at the first live entry.
        while self._seen:
            key, created = next(iter(self._seen.items()))
            if created + 2 * self._window >= now:
                break
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
