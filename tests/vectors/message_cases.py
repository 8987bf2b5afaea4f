"""Every refusal of a message content's fields and per-kind rules (§8), and the contents that
must be accepted."""

from __future__ import annotations

from typing import Any

import orjson

from protocol.messages import (
    MessageContent,
)
from tests.vectors.content import _REPLY
from tests.vectors.vectorlib import (
    NOW,
    Accepts,
    Cases,
    Json,
    b64,
    message_content,
    padded,
)


def message_cases(cases: Cases, accepts: Accepts) -> None:
    good: Json = orjson.loads(message_content().encode())
    att = good["attachments"][0]
    info = {k: v for k, v in good.items() if k not in ("deadline",)}
    reply = str(_REPLY)

    def enc(value: Json) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

    def add(name: str, error: str, value: Json | bytes, rule: str) -> None:
        data = value if isinstance(value, bytes) else enc(value)
        cases.add(
            name,
            "message",
            error,
            lambda: MessageContent.decode(data),
            rule=rule,
            **padded("content", data),
        )

    def ok(name: str, value: Json, rule: str) -> None:
        data = enc(value)
        accepts.add(
            name,
            "message",
            lambda: MessageContent.decode(data),
            rule=rule,
            **padded("content", data),
        )

    def attachment(**changes: Any) -> Json:
        return {**good, "attachments": [{**att, **changes}]}

    kinds = "§8.2: per-kind rules"
    fields = "§8.1: fields, in read order"
    add("answer without in_reply_to", "MalformedError", {**info, "kind": "answer"}, kinds)
    add("information with a deadline", "MalformedError", {**good, "kind": "information"}, kinds)
    add("message version 2", "UnsupportedVersion", {**good, "v": 2}, fields)
    add("message with an unknown field", "UnknownField", {**good, "priority": 1}, fields)
    text = "§2.4: text fields (human text)"
    add("subject with a newline", "MalformedError", {**good, "subject": "Bank\nrecords"}, text)
    add(
        "subject with a right-to-left override",
        "MalformedError",
        {**good, "subject": "Bank records \u202efdp.exe"},
        text,
    )
    handling = "§8.1, §8.3: handling"
    add(
        "restrictions not sorted",
        "MalformedError",
        {
            **good,
            "handling": {
                "restrictions": ["no-onward-dissemination", "intelligence-only"],
                "tlp": "AMBER",
            },
        },
        handling,
    )
    add(
        "unknown TLP level",
        "MalformedError",
        {**good, "handling": {"restrictions": [], "tlp": "WHITE"}},
        handling,
    )
    for name, error, value, rule in [
        ("message of another type", "MalformedError", {**good, "type": "note"}, fields),
        ("message of an unknown kind", "MalformedError", {**good, "kind": "memo"}, fields),
        ("empty subject", "MalformedError", {**good, "subject": ""}, fields),
        ("subject of 301 characters", "MalformedError", {**good, "subject": "s" * 301}, fields),
        (
            "subject with a zero-width space",
            "MalformedError",
            {**good, "subject": "Bank\u200brecords"},
            text,
        ),
        ("subject with a tab", "MalformedError", {**good, "subject": "Bank\trecords"}, text),
        ("body that is not a string", "MalformedError", {**good, "body": 1}, fields),
        ("language in upper case", "MalformedError", {**good, "language": "EN"}, fields),
        ("language of 3 letters", "MalformedError", {**good, "language": "eng"}, fields),
        ("language with a digit", "MalformedError", {**good, "language": "e1"}, fields),
        ("unknown urgency", "MalformedError", {**good, "urgency": "low"}, fields),
        (
            "without handling",
            "MalformedError",
            {k: v for k, v in good.items() if k != "handling"},
            fields,
        ),
        (
            "handling with an unknown field",
            "UnknownField",
            {**good, "handling": {**good["handling"], "until": 1}},
            handling,
        ),
        (
            "unknown restriction",
            "MalformedError",
            {**good, "handling": {"restrictions": ["secret"], "tlp": "AMBER"}},
            handling,
        ),
        (
            "three restrictions",
            "MalformedError",
            {**good, "handling": {"restrictions": ["a", "b", "c"], "tlp": "AMBER"}},
            handling,
        ),
        (
            "a restriction twice",
            "MalformedError",
            {**good, "handling": {"restrictions": ["intelligence-only"] * 2, "tlp": "AMBER"}},
            handling,
        ),
        (
            "TLP level in lower case",
            "MalformedError",
            {**good, "handling": {"restrictions": [], "tlp": "amber"}},
            handling,
        ),
        ("case starting with a dot", "MalformedError", {**good, "case": ".hidden"}, fields),
        ("case of 65 characters", "MalformedError", {**good, "case": "C" * 65}, fields),
        ("case with a space", "MalformedError", {**good, "case": "FR PNF"}, fields),
        (
            "in_reply_to in upper-case hex",
            "InvalidIdentifier",
            {**good, "in_reply_to": reply.upper()},
            fields,
        ),
        (
            "in_reply_to of 33 characters",
            "MalformedError",
            {**good, "in_reply_to": reply + "0"},
            fields,
        ),
        ("deadline as a string", "MalformedError", {**good, "deadline": "tomorrow"}, fields),
        ("deadline -1", "MalformedError", {**good, "deadline": -1}, fields),
    ]:
        add(name, error, value, rule)
    manifest = "§8.4: the attachment manifest, in read order"
    name_rule = "§8.4: attachment names"
    media = "§8.4: attachment media types"
    for name, error, value, rule in [
        ("an empty attachments array", "MalformedError", {**good, "attachments": []}, manifest),
        ("65 attachments", "MalformedError", {**good, "attachments": [att] * 65}, manifest),
        ("attachment with an unknown field", "UnknownField", attachment(mode=420), manifest),
        ("attachment named '.'", "MalformedError", attachment(name="."), name_rule),
        ("attachment named '..'", "MalformedError", attachment(name=".."), name_rule),
        ("attachment name with a slash", "MalformedError", attachment(name="a/b.pdf"), name_rule),
        (
            "attachment name with a backslash",
            "MalformedError",
            attachment(name="a\\b.pdf"),
            name_rule,
        ),
        (
            "attachment name with a BEL character",
            "MalformedError",
            attachment(name="a\x07.pdf"),
            name_rule,
        ),
        ("attachment name with DEL", "MalformedError", attachment(name="a\x7f.pdf"), name_rule),
        (
            "attachment name with a right-to-left override",
            "MalformedError",
            attachment(name="invoice\u202efdp.exe"),
            name_rule,
        ),
        (
            "attachment name with a zero-width space",
            "MalformedError",
            attachment(name="a\u200b.pdf"),
            name_rule,
        ),
        (
            "attachment name of 256 characters",
            "MalformedError",
            attachment(name="n" * 256),
            name_rule,
        ),
        ("empty attachment name", "MalformedError", attachment(name=""), name_rule),
        (
            "media type in upper case",
            "MalformedError",
            attachment(media_type="Application/PDF"),
            media,
        ),
        (
            "media type without a subtype",
            "MalformedError",
            attachment(media_type="application"),
            media,
        ),
        (
            "media type with a parameter",
            "MalformedError",
            attachment(media_type="text/plain; charset=utf-8"),
            media,
        ),
        (
            "media type with an empty subtype",
            "MalformedError",
            attachment(media_type="text/"),
            media,
        ),
        ("attachment size -1", "MalformedError", attachment(size=-1), manifest),
        (
            "attachment sha256 of 31 bytes",
            "MalformedError",
            attachment(sha256=b64(bytes(31))),
            manifest,
        ),
        ("attachment key of 33 bytes", "MalformedError", attachment(key=b64(bytes(33))), manifest),
        (
            "attachment blob id in upper-case hex",
            "InvalidIdentifier",
            attachment(blob=att["blob"].upper()),
            manifest,
        ),
        (
            "attachment blob id of 33 characters",
            "MalformedError",
            attachment(blob=att["blob"] + "0"),
            manifest,
        ),
    ]:
        add(name, error, value, rule)
    status = {"state": "acknowledged", "expected": NOW}
    st = {**info, "kind": "status", "in_reply_to": reply}
    for name, error, value in [
        ("request carrying a status", "MalformedError", {**good, "status": status}),
        ("status without a status object", "MalformedError", st),
        (
            "status acknowledged without an expected date",
            "MalformedError",
            {**st, "status": {"state": "acknowledged"}},
        ),
        (
            "status declined without a reason",
            "MalformedError",
            {**st, "status": {"state": "declined"}},
        ),
        ("status of an unknown state", "MalformedError", {**st, "status": {"state": "lost"}}),
        ("status with an unknown field", "UnknownField", {**st, "status": {**status, "by": 1}}),
        (
            "status reason with a carriage return",
            "MalformedError",
            {**st, "status": {"state": "declined", "reason": "No\rway"}},
        ),
        (
            "status without in_reply_to",
            "MalformedError",
            {k: v for k, v in {**st, "status": status}.items() if k != "in_reply_to"},
        ),
        (
            "status withdrawn without a reason",
            "MalformedError",
            {**st, "status": {"state": "withdrawn"}},
        ),
        (
            "status extended without a deadline",
            "MalformedError",
            {**st, "status": {"state": "extended"}},
        ),
        (
            "status closed with a deadline",
            "MalformedError",
            {**st, "status": {"state": "closed", "deadline": NOW}},
        ),
        (
            "status acknowledged with a deadline",
            "MalformedError",
            {**st, "status": {**status, "deadline": NOW}},
        ),
        (
            "status closed with an expected date",
            "MalformedError",
            {**st, "status": {"state": "closed", "expected": NOW}},
        ),
        (
            "status extended with an expected date",
            "MalformedError",
            {**st, "status": {"state": "extended", "deadline": NOW, "expected": NOW}},
        ),
    ]:
        add(name, error, value, kinds if error == "MalformedError" else fields)
    add(
        "status deadline as a string",
        "MalformedError",
        {**st, "status": {"state": "extended", "deadline": "next week"}},
        fields,
    )
    base_req = {**info, "kind": "consent-request"}
    consent = {"message": reply, "to": ["DE-BKA", "IT-ANAC"], "purpose": "Joint team"}
    dec = {**info, "kind": "consent-decision", "in_reply_to": reply}
    granted = {"message": reply, "to": ["DE-BKA"], "decision": "granted"}
    cfields = "§8.1: consent fields, in read order; to's ids after the other fields"
    for name, error, value, rule in [
        (
            "consent request without a purpose",
            "MalformedError",
            {**base_req, "consent": {k: v for k, v in consent.items() if k != "purpose"}},
            kinds,
        ),
        (
            "consent request with a decision",
            "MalformedError",
            {**base_req, "consent": {**consent, "decision": "granted"}},
            kinds,
        ),
        ("consent request without a consent object", "MalformedError", base_req, kinds),
        (
            "consent decision without a decision",
            "MalformedError",
            {**dec, "consent": {k: v for k, v in granted.items() if k != "decision"}},
            kinds,
        ),
        (
            "consent decision refused without a reason",
            "MalformedError",
            {**dec, "consent": {**granted, "decision": "refused"}},
            kinds,
        ),
        (
            "consent decision without in_reply_to",
            "MalformedError",
            {**{k: v for k, v in dec.items() if k != "in_reply_to"}, "consent": granted},
            kinds,
        ),
        (
            "information carrying a consent",
            "MalformedError",
            {**info, "kind": "information", "consent": granted},
            kinds,
        ),
        (
            "consent to not sorted",
            "MalformedError",
            {**base_req, "consent": {**consent, "to": ["IT-ANAC", "DE-BKA"]}},
            cfields,
        ),
        (
            "consent to empty",
            "MalformedError",
            {**base_req, "consent": {**consent, "to": []}},
            cfields,
        ),
        (
            "consent to naming an authority twice",
            "MalformedError",
            {**base_req, "consent": {**consent, "to": ["DE-BKA", "DE-BKA"]}},
            cfields,
        ),
        (
            "consent to with 65 authorities",
            "MalformedError",
            {**base_req, "consent": {**consent, "to": [f"BE-R{i:03d}" for i in range(65)]}},
            cfields,
        ),
        (
            "consent to with an invalid authority id",
            "InvalidIdentifier",
            {**base_req, "consent": {**consent, "to": ["de-bka"]}},
            cfields,
        ),
        (
            "consent about an invalid message id",
            "InvalidIdentifier",
            {**base_req, "consent": {**consent, "message": reply.upper()}},
            cfields,
        ),
        (
            "consent decision 'maybe'",
            "MalformedError",
            {**dec, "consent": {**granted, "decision": "maybe"}},
            cfields,
        ),
        (
            "consent with an unknown field",
            "UnknownField",
            {**base_req, "consent": {**consent, "until": 1}},
            cfields,
        ),
        (
            "consent to with an invalid id and an unknown field",
            "UnknownField",
            {**base_req, "consent": {**consent, "to": ["de-bka"], "until": 1}},
            "§1.6, §8.1: consent.to's ids are parsed after the consent object's unknown fields",
        ),
    ]:
        add(name, error, value, rule)
    origin = {"content": b64(b"{}"), "header": b64(b"{}"), "signature": b64(bytes(64))}
    fwd = {**info, "kind": "information"}
    ffields = "§8.1: forwarded fields, in read order"
    for name, error, value, rule in [
        (
            "request carrying a forward",
            "MalformedError",
            {**good, "forwarded": {"origin": origin}},
            kinds,
        ),
        (
            "forward whose origin content is empty",
            "MalformedError",
            {**fwd, "forwarded": {"origin": {**origin, "content": ""}}},
            ffields,
        ),
        (
            "forward whose origin header is empty",
            "MalformedError",
            {**fwd, "forwarded": {"origin": {**origin, "header": ""}}},
            ffields,
        ),
        (
            "forward whose origin signature is 63 bytes",
            "MalformedError",
            {**fwd, "forwarded": {"origin": {**origin, "signature": b64(bytes(63))}}},
            ffields,
        ),
        (
            "forward with an empty consents array",
            "MalformedError",
            {**fwd, "forwarded": {"consents": [], "origin": origin}},
            ffields,
        ),
        (
            "forward whose origin has an unknown field",
            "UnknownField",
            {**fwd, "forwarded": {"origin": {**origin, "note": "x"}}},
            ffields,
        ),
        (
            "forward with an unknown field",
            "UnknownField",
            {**fwd, "forwarded": {"origin": origin, "hops": 1}},
            ffields,
        ),
        ("forward without an origin", "MalformedError", {**fwd, "forwarded": {}}, ffields),
    ]:
        add(name, error, value, rule)
    text_good = enc(good)
    cases.add(
        "message content above 1,048,508 bytes",
        "message",
        "SizeLimitExceeded",
        lambda: MessageContent.decode(text_good + b" " * (1_048_509 - len(text_good))),
        rule="§2.7: size caps (message content 1,048,508)",
        **padded("content", text_good + b" " * (1_048_509 - len(text_good))),
    )
    add(
        "message not canonical (space after a colon)",
        "NonCanonical",
        text_good.replace(b'"v":1', b'"v": 1'),
        "§2.2: the one canonical form",
    )
    add(
        "message with a repeated key",
        "DuplicateKey",
        text_good.replace(b'"v":1', b'"v":1,"v":1'),
        "§2.3: a repeated key",
    )
    add(
        "message with a subject of null",
        "MalformedError",
        {**good, "subject": None},
        "§2.3: structures: values outside the subset are judged by the field readers",
    )
    order = "§1.6, §8.2: the per-kind rules run after every field was read"
    add(
        "answer without in_reply_to, with an unknown field",
        "UnknownField",
        {**info, "kind": "answer", "priority": 1},
        order,
    )
    add(
        "information with a deadline and an unknown restriction",
        "MalformedError",
        {**good, "kind": "information", "handling": {"restrictions": ["secret"], "tlp": "AMBER"}},
        order,
    )
    add(
        "handling with an unknown restriction and an unknown field",
        "UnknownField",
        {**good, "handling": {"restrictions": ["secret"], "tlp": "AMBER", "until": 1}},
        "§1.6, §8.1: restrictions are parsed after the handling object's unknown fields",
    )
    for name, value, rule in [
        ("attachment named '...'", attachment(name="..."), name_rule),
        (
            "attachment name with ZWJ and non-ASCII letters",
            attachment(name="résumé\u200d final.pdf"),
            name_rule,
        ),
        ("attachment name of 255 characters", attachment(name="n" * 255), name_rule),
        ("media type with +, . and - ", attachment(media_type="application/vnd.api+json"), media),
        ("case of 64 characters", {**good, "case": "C" * 64}, fields),
        (
            "consent to naming the authority it answers (Open question 4)",
            {**dec, "consent": {**granted, "to": ["FR-PNF"]}},
            cfields,
        ),
        ("64 attachments", {**good, "attachments": [att] * 64}, manifest),
    ]:
        ok(name, value, rule)
