"""Status updates against the request they reply to (§8.2.1, structure ``status_workflow``):
who may report each state, a status about a request never exchanged, and extensions.

Each case is a status message content, ``party`` (what the status's sender is to the
request as the receiving node holds it: ``requester``, ``recipient`` or ``null`` when
the two never exchanged it) and ``deadline`` (the deadline the request asked for);
``check_status_sender`` must refuse it with ``WorkflowError`` or accept it.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from protocol.messages import (
    Handling,
    Kind,
    MessageContent,
    Party,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
    check_status_sender,
)
from tests.vectors.content import _REPLY
from tests.vectors.vectorlib import NOW, Accepts, Cases, h

#: The deadline the request of every case asked for.
DEADLINE: Final = NOW + 7 * 86400
_RULE: Final = "§8.2.1: who reports each state"
_NONE: Final = "§8.2.1: a status about a request never exchanged with its sender"
_LATER: Final = "§8.2.1: an extension's deadline is later than the request's"


def status(state: StatusState, **fields: Any) -> bytes:
    """The content of a status update on the request ``_REPLY``."""
    return MessageContent(
        kind=Kind.STATUS, subject="Re: Accounts of Exemple SA", body="", language="fr",
        urgency=Urgency.ROUTINE, handling=Handling(Tlp.AMBER), in_reply_to=_REPLY,
        status=StatusUpdate(state, **fields),
    ).encode()  # fmt: skip


def _check(data: bytes, party: Party | None, deadline: int) -> None:
    decoded = MessageContent.decode(data).status
    assert decoded is not None
    check_status_sender(decoded, party, deadline=deadline)


def status_cases(cases: Cases, accepts: Accepts) -> None:
    """Refusals and acceptances of ``check_status_sender``."""
    ack = status(StatusState.ACKNOWLEDGED, expected=NOW + 86400)
    refused: list[tuple[str, bytes, Party | None, int, str]] = [
        ("acknowledgement about a request never exchanged", ack, None, DEADLINE, _NONE),
        (
            "withdrawal of a request never exchanged",
            status(StatusState.WITHDRAWN, reason="Resolved."), None, DEADLINE, _NONE,
        ),
        ("acknowledgement from the requester", ack, Party.REQUESTER, DEADLINE, _RULE),
        (
            "in-progress from the requester",
            status(StatusState.IN_PROGRESS), Party.REQUESTER, DEADLINE, _RULE,
        ),
        (
            "declined from the requester",
            status(StatusState.DECLINED, reason="No."), Party.REQUESTER, DEADLINE, _RULE,
        ),
        ("answered from the requester", status(StatusState.ANSWERED), Party.REQUESTER,
         DEADLINE, _RULE),
        ("closed by a recipient", status(StatusState.CLOSED), Party.RECIPIENT, DEADLINE, _RULE),
        (
            "withdrawal by a recipient",
            status(StatusState.WITHDRAWN, reason="Not ours."), Party.RECIPIENT, DEADLINE, _RULE,
        ),
        (
            "extension by a recipient",
            status(StatusState.EXTENDED, deadline=DEADLINE + 86400), Party.RECIPIENT,
            DEADLINE, _RULE,
        ),
        (
            "extension to the request's own deadline",
            status(StatusState.EXTENDED, deadline=DEADLINE), Party.REQUESTER, DEADLINE, _LATER,
        ),
        (
            "extension to an earlier date",
            status(StatusState.EXTENDED, deadline=DEADLINE - 86400), Party.REQUESTER,
            DEADLINE, _LATER,
        ),
    ]  # fmt: skip
    for name, data, party, deadline, rule in refused:
        cases.add(
            name, "status_workflow", "WorkflowError",
            partial(_check, data, party, deadline),
            rule=rule, content=h(data), party=party.value if party else None, deadline=deadline,
        )  # fmt: skip
    accepted: list[tuple[str, bytes, Party, str]] = [
        ("acknowledgement from a recipient", ack, Party.RECIPIENT, _RULE),
        ("answered from a recipient", status(StatusState.ANSWERED), Party.RECIPIENT, _RULE),
        ("closed by the requester", status(StatusState.CLOSED), Party.REQUESTER, _RULE),
        (
            "withdrawal by the requester",
            status(StatusState.WITHDRAWN, reason="The suspect was arrested."),
            Party.REQUESTER, _RULE,
        ),
        (
            "extension one second past the request's deadline",
            status(StatusState.EXTENDED, deadline=DEADLINE + 1), Party.REQUESTER, _LATER,
        ),
    ]  # fmt: skip
    for name, data, party, rule in accepted:
        accepts.add(
            name, "status_workflow", partial(_check, data, party, DEADLINE),
            rule=rule, content=h(data), party=party.value, deadline=DEADLINE,
        )  # fmt: skip
