"""Message content (§8): message.json (one valid content per kind) and every refusal of
a content's fields and per-kind rules (invalid.json, structure ``message``)."""

from __future__ import annotations

from typing import Any, Final

from protocol.ids import AuthorityId, MessageId
from protocol.messages import (
    Consent,
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
)
from tests.vectors.vectorlib import (
    NOW,
    Json,
    h,
    message_content,
    rng_for,
)

_REPLY: Final = MessageId(rng_for("message/reply")(16))


def valid_messages() -> list[tuple[str, MessageContent]]:
    """One content per kind and rule (§8.1, §8.2)."""
    base: dict[str, Any] = {
        "subject": "Accounts of Exemple SA",
        "body": "",
        "language": "fr",
        "urgency": Urgency.ROUTINE,
        "handling": Handling(Tlp.CLEAR),
    }
    to = (AuthorityId.parse("DE-BKA"), AuthorityId.parse("IT-ANAC"))
    return [
        ("the envelope vectors' request (attachment, deadline, case)", message_content()),
        ("minimal information", MessageContent(kind=Kind.INFORMATION, **base)),
        (
            "bulletin with every restriction",
            MessageContent(
                kind=Kind.BULLETIN,
                **{**base, "handling": Handling(Tlp.AMBER_STRICT, frozenset(Restriction))},
            ),
        ),
        ("answer", MessageContent(kind=Kind.ANSWER, in_reply_to=_REPLY, **base)),
        (
            "status acknowledged with an expected date",
            MessageContent(
                kind=Kind.STATUS,
                in_reply_to=_REPLY,
                status=StatusUpdate(StatusState.ACKNOWLEDGED, expected=NOW + 86400),
                **base,
            ),
        ),
        (
            "status declined with a reason",
            MessageContent(
                kind=Kind.STATUS,
                in_reply_to=_REPLY,
                status=StatusUpdate(
                    StatusState.DECLINED, reason="Outside our competence.\nSee art. 46(21)."
                ),
                **base,
            ),
        ),
        (
            "status closed",
            MessageContent(
                kind=Kind.STATUS,
                in_reply_to=_REPLY,
                status=StatusUpdate(StatusState.CLOSED),
                **base,
            ),
        ),
        (
            "status in progress with an expected date",
            MessageContent(
                kind=Kind.STATUS,
                in_reply_to=_REPLY,
                status=StatusUpdate(StatusState.IN_PROGRESS, expected=NOW + 2 * 86400),
                **base,
            ),
        ),
        (
            "status withdrawn with a reason",
            MessageContent(
                kind=Kind.STATUS,
                in_reply_to=_REPLY,
                status=StatusUpdate(StatusState.WITHDRAWN, reason="The suspect was arrested."),
                **base,
            ),
        ),
        (
            "status extended with a new deadline",
            MessageContent(
                kind=Kind.STATUS,
                in_reply_to=_REPLY,
                status=StatusUpdate(StatusState.EXTENDED, deadline=NOW + 14 * 86400),
                **base,
            ),
        ),
        (
            "consent request",
            MessageContent(
                kind=Kind.CONSENT_REQUEST, consent=Consent(_REPLY, to, purpose="Joint team"), **base
            ),
        ),
        (
            "consent decision: granted",
            MessageContent(
                kind=Kind.CONSENT_DECISION,
                in_reply_to=_REPLY,
                consent=Consent(_REPLY, to[:1], decision=ConsentDecision.GRANTED),
                **base,
            ),
        ),
        (
            "consent decision: refused with a reason",
            MessageContent(
                kind=Kind.CONSENT_DECISION,
                in_reply_to=_REPLY,
                consent=Consent(_REPLY, to, decision=ConsentDecision.REFUSED, reason="Not yet."),
                **base,
            ),
        ),
        (
            "body with control characters and bidi marks (body is not a text field)",
            MessageContent(kind=Kind.INFORMATION, **{**base, "body": "a\x00b\x1b[31m\u202ec"}),
        ),
        (
            "subject with ZWNJ, ZWJ, LRM, RLM and ALM (allowed in text)",
            MessageContent(
                kind=Kind.INFORMATION,
                **{
                    **base,
                    "subject": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
                    " \u200d\u200e\u200f\u061c",
                },
            ),
        ),
        (
            "language 'zz' (the shape of ISO 639-1, not checked against a list)",
            MessageContent(kind=Kind.INFORMATION, **{**base, "language": "zz"}),
        ),
    ]


def build_message() -> Json:
    items = []
    for name, content in valid_messages():
        data = content.encode()
        assert MessageContent.decode(data) == content
        items.append({"name": name, "content": h(data), "kind": content.kind.value})
    return {
        "description": (
            "Valid message contents (PROTOCOL.md §8), one per kind and per-kind rule: "
            "MessageContent.decode(content) must accept each and re-encode it to the same "
            "bytes."
        ),
        "messages": items,
    }
