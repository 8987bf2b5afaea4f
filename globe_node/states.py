"""The node's two state machines, each in one table (as h11 keeps its own).

* **Delivery** of one sent message to one recipient (the outbox, R10):
  ``queued`` until the hub accepted it (``sent``) or the recipient's signed
  receipt came back (``delivered``); ``failed`` when refused for good or
  expired.  A receipt is proof and always wins; nothing moves a message out of
  ``delivered``.  There is no ``read``: the protocol has no read notification.
* **Request** workflow of an assistance request, on either side: each status
  update (PROTOCOL.md §8.2.1) or answer is an event with the states it applies
  in and the state it leads to (:data:`REQUEST_TRANSITIONS`); the requester
  closes, withdraws and extends, the recipients acknowledge, progress, decline
  and answer.

Everything here is pure: states, events, the transition table and the retry
schedule (:func:`next_attempt`, with the randomness passed in).  The storage
layer applies a transition as one conditional statement ("set the target
state where the state is one of the sources"), so a late event can never undo
a later state.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Final

from protocol.messages import STATUS_SENDER, Party, StatusState

__all__ = [
    "DELIVERY_TRANSITIONS",
    "OPEN_REQUEST_STATES",
    "RECIPIENT_EVENTS",
    "REQUEST_TRANSITIONS",
    "Delivery",
    "DeliveryEvent",
    "RequestState",
    "next_attempt",
    "request_transition",
    "transition",
]


class Delivery(Enum):
    """Where one recipient's copy of a sent message stands."""

    QUEUED = "queued"  # committed here; not yet accepted by the hub or the peer
    SENT = "sent"  # the hub accepted it (its signed evidence is kept)
    DELIVERED = "delivered"  # the recipient's signed receipt is kept
    FAILED = "failed"  # refused for good, or expired undelivered (evidence kept)


class DeliveryEvent(Enum):
    """What can happen to a recipient's copy."""

    HUB_ACCEPTED = "hub-accepted"  # the hub's accepted evidence names this envelope
    RECEIPT = "receipt"  # the recipient's signed receipt, directly or via the hub
    REFUSED = "refused"  # the hub refused it for good (its rejected evidence if any)
    EXPIRED = "expired"  # the envelope's expiry passed before it left
    NON_DELIVERY = "non-delivery"  # the hub's evidence: expired in the recipient's mailbox
    RETRY = "retry"  # an operator asks for another attempt now


#: event -> (the states it applies in, the state it leads to).  An event in any other
#: state changes nothing: a receipt after "delivered", an expiry after "sent", ….
DELIVERY_TRANSITIONS: Final[dict[DeliveryEvent, tuple[frozenset[Delivery], Delivery]]] = {
    DeliveryEvent.HUB_ACCEPTED: (frozenset({Delivery.QUEUED}), Delivery.SENT),
    DeliveryEvent.RECEIPT: (
        frozenset({Delivery.QUEUED, Delivery.SENT, Delivery.FAILED}),
        Delivery.DELIVERED,
    ),
    DeliveryEvent.REFUSED: (frozenset({Delivery.QUEUED}), Delivery.FAILED),
    DeliveryEvent.EXPIRED: (frozenset({Delivery.QUEUED}), Delivery.FAILED),
    DeliveryEvent.NON_DELIVERY: (frozenset({Delivery.QUEUED, Delivery.SENT}), Delivery.FAILED),
    DeliveryEvent.RETRY: (frozenset({Delivery.QUEUED, Delivery.FAILED}), Delivery.QUEUED),
}


def transition(state: Delivery, event: DeliveryEvent) -> Delivery | None:
    """The state after ``event``, or None when the event does not apply in ``state``."""
    sources, target = DELIVERY_TRANSITIONS[event]
    return target if state in sources else None


def next_attempt(
    now: int, attempts: int, *, base: float, cap: float, jitter: Callable[[], float]
) -> int:
    """When to try a queued delivery again after ``attempts`` failed tries.

    Exponential backoff ``base * 2**attempts`` capped at ``cap``, scaled by
    ``jitter()`` (a number in [0.5, 1], injected so tests can pin it), at least
    one second later: retries spread out and never spin.
    """
    delay = min(cap, base * 2 ** min(attempts, 20))
    return now + int(delay * jitter()) + 1


class RequestState(Enum):
    """An assistance request's workflow state (PROTOCOL.md §8.2.1 ``status.state``)."""

    SENT = "sent"  # ours, not answered yet
    RECEIVED = "received"  # theirs, not answered yet
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in-progress"
    ANSWERED = "answered"
    DECLINED = "declined"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


#: States in which a request still waits for its answer (and can be overdue).
OPEN_REQUEST_STATES: Final = frozenset(
    {RequestState.SENT, RequestState.RECEIVED, RequestState.ACKNOWLEDGED, RequestState.IN_PROGRESS}
)
_OPEN: Final = OPEN_REQUEST_STATES
_ENDED: Final = frozenset({RequestState.ANSWERED, RequestState.DECLINED})

#: event (a status state; an answer is ``answered``) -> (the states it applies in, the state
#: it leads to; ``None``: the state stays, only the deadline moves).  An event in any other
#: state is kept with its message but changes nothing: a late ``in-progress`` after the
#: requester closed, a second withdrawal, an extension of an answered request.
REQUEST_TRANSITIONS: Final[
    dict[StatusState, tuple[frozenset[RequestState], RequestState | None]]
] = {
    StatusState.ACKNOWLEDGED: (_OPEN, RequestState.ACKNOWLEDGED),
    StatusState.IN_PROGRESS: (_OPEN, RequestState.IN_PROGRESS),
    StatusState.DECLINED: (_OPEN, RequestState.DECLINED),
    StatusState.ANSWERED: (_OPEN | {RequestState.ANSWERED}, RequestState.ANSWERED),
    StatusState.CLOSED: (_OPEN | _ENDED, RequestState.CLOSED),
    StatusState.WITHDRAWN: (_OPEN, RequestState.WITHDRAWN),
    StatusState.EXTENDED: (_OPEN, None),
}
#: The events only a request's recipients report: each is a response to the request.
RECIPIENT_EVENTS: Final = frozenset(
    state for state, party in STATUS_SENDER.items() if party is Party.RECIPIENT
)


def request_transition(state: RequestState, event: StatusState) -> RequestState | None:
    """The state after ``event`` (the same state for an extension), or None when the
    event does not apply in ``state``."""
    sources, target = REQUEST_TRANSITIONS[event]
    if state not in sources:
        return None
    return state if target is None else target
