"""The schemas of the hub's answers, derived from the typed results of :mod:`globe_io.hubapi`.

Each answer's keys, which of them are required and its closed sets of values come from
the result class the handlers serialise (:func:`result_schema`); this module adds what a
type cannot say: bounds, patterns, references to the wire's values and descriptions.
"""

from __future__ import annotations

import typing
from typing import Any, Final

from globe_io.errors import RateLimited
from globe_io.hubapi import (
    BATCH_MAX_ITEMS,
    KEY_ROLES,
    AckRefusal,
    AckResult,
    ActionResult,
    ApplicationCreated,
    ApplicationDetail,
    ApplicationList,
    ApplicationState,
    ApplicationStatus,
    ApplicationSummary,
    AuditRecord,
    AuditRecords,
    BlobStored,
    ContactPoint,
    Health,
    KeyUpdateCreated,
    KeyUpdateDetail,
    KeyUpdateList,
    KeyUpdateState,
    KeyUpdateStatus,
    KeyUpdateSummary,
    LogPage,
    MailboxItem,
    MailboxPage,
    MatchReason,
    MemberProfile,
    MemberSummary,
    Prekeys,
    PrekeyStored,
    ProfilePublished,
    Proposal,
    ProposalList,
    Readiness,
    SearchResults,
    Submission,
    Submissions,
)
from globe_io.wire import WireField, WireResult, wire_fields
from hub.apidoc.build import (
    KEM_CHALLENGE_BYTES,
    ApiLimits,
    JsonObject,
    b64,
    closed_object,
    integer,
    schema_ref,
)
from hub.applications import LIST_MAX
from hub.routing import ENVELOPE, NON_DELIVERY, RECEIPT
from hub.service import MAX_PREKEYS
from protocol.countries import LANGUAGES
from protocol.directory import MemberStatus
from protocol.errors import StorageError
from protocol.keyupdate import MAX_KEY_UPDATE_SIZE
from protocol.membership import (
    AUTHORITY_KINDS,
    MAX_ACTION_SIZE,
    MAX_APPLICATION_SIZE,
    MAX_ENTRY_SIZE,
    Action,
)
from protocol.prekeys import MAX_PREKEY_SIZE
from protocol.profile import (
    CONTACT_ROLES,
    MAX_CONTACT_LANGUAGES,
    MAX_CONTACTS,
    MAX_LABEL,
    MAX_NOTE,
    OFFENCE_AREAS,
)
from protocol.signed import SignedObject

__all__ = ["COMPONENTS", "field_schema", "result", "result_schema", "result_schemas"]

#: The component that documents each typed result (:mod:`globe_io.hubapi`), by class.
COMPONENTS: Final[dict[type, str]] = {
    Health: "Health",
    Readiness: "Readiness",
    SignedObject: "SignedObject",
    ApplicationCreated: "ApplicationCreated",
    ApplicationStatus: "ApplicationStatus",
    ApplicationState: "ApplicationState",
    ApplicationSummary: "AdminApplicationSummary",
    ApplicationDetail: "AdminApplication",
    ApplicationList: "AdminApplicationList",
    KeyUpdateCreated: "KeyUpdateCreated",
    KeyUpdateStatus: "KeyUpdateStatus",
    KeyUpdateState: "KeyUpdateState",
    KeyUpdateSummary: "AdminKeyUpdateSummary",
    KeyUpdateDetail: "AdminKeyUpdate",
    KeyUpdateList: "AdminKeyUpdateList",
    ActionResult: "ActionResult",
    Proposal: "Proposal",
    ProposalList: "ProposalList",
    LogPage: "LogPage",
    MemberSummary: "MemberSummary",
    ContactPoint: "ContactPoint",
    MemberProfile: "MemberProfile",
    MatchReason: "MatchReason",
    SearchResults: "SearchResults",
    ProfilePublished: "ProfilePublished",
    PrekeyStored: "PrekeyPut",
    Prekeys: "Prekeys",
    AuditRecord: "AuditRecord",
    AuditRecords: "AuditRecords",
    MailboxItem: "MailboxItem",
    MailboxPage: "MailboxPage",
    AckResult: "AckResult",
    BlobStored: "BlobStored",
    Submission: "Submission",
    Submissions: "Submissions",
}


def field_schema(field: WireField) -> JsonObject:
    """A field's schema from its declaration alone: a closed set of strings, a result,
    or an array of results (:class:`TypeError` for any other type: declare it)."""
    if field.choices is not None:
        if len(field.choices) == 1:
            return {"type": "string", "const": field.choices[0]}
        return {"type": "string", "enum": list(field.choices)}
    return _type_schema(field.name, field.hint)


def _type_schema(name: str, hint: Any) -> JsonObject:
    if hint in COMPONENTS:
        return schema_ref(COMPONENTS[hint])
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
        return {"type": "array", "items": _type_schema(name, typing.get_args(hint)[0])}
    raise TypeError(f"declare the schema of {name!r}: its type says too little")


def result_schema(cls: type[WireResult], description: str, props: JsonObject) -> JsonObject:
    """The closed object ``cls.to_json()`` writes: one property per field, in field order.

    A key's schema comes from ``props`` (bounds, patterns, references and
    descriptions the type cannot state), else from the field's declaration
    (:func:`field_schema`).  Every key is required but those the class omits
    when ``None``.  A key in ``props`` the class does not write is an error, so
    the document cannot drift from the classes the hub answers with.
    """
    fields = wire_fields(cls)
    unknown = set(props) - {f.name for f in fields}
    if unknown:
        raise TypeError(f"{cls.__name__} writes no {sorted(unknown)}")
    return closed_object(
        description,
        {f.name: props[f.name] if f.name in props else field_schema(f) for f in fields},
        optional=tuple(f.name for f in fields if f.omit_none),
    )


def result(cls: type[WireResult], description: str, props: JsonObject) -> JsonObject:
    """``{component name: schema}`` of a typed result that is a component."""
    return {COMPONENTS[cls]: result_schema(cls, description, props)}


def result_schemas(limits: ApiLimits) -> JsonObject:
    """The components that document the hub's answers, one per typed result."""
    actions = [a.value for a in Action]
    statuses = [s.value for s in MemberStatus]
    app_summary_props: JsonObject = {
        "id": schema_ref("ApplicationId"),
        "authority": schema_ref("AuthorityId"),
        "name": {"type": "string", "maxLength": 200, "description": "The authority's name."},
        "country": schema_ref("Country"),
        "kinds": {
            "type": "array",
            "items": {"type": "string", "enum": sorted(AUTHORITY_KINDS)},
            "minItems": 1,
            "maxItems": len(AUTHORITY_KINDS),
            "uniqueItems": True,
        },
        "languages": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z]{2}$"},
            "minItems": 1,
            "maxItems": 16,
            "uniqueItems": True,
        },
        "reason": {
            "type": ["string", "null"],
            "description": "The rejection reason, once rejected.",
        },
        "created": schema_ref("Timestamp"),
        "fingerprint": schema_ref("Fingerprint"),
    }
    return {
        **result(
            ApplicationCreated,
            "An accepted application and its proof-of-possession challenge for the "
            "key-agreement key (PROTOCOL.md §6.2).",
            {
                "id": schema_ref("ApplicationId"),
                "authority": schema_ref("AuthorityId"),
                "challenge": b64(
                    "HPKE ciphertext sealed to the application's `ka_key` with info "
                    "`globe/v1/kem-pop || 0x00 || application digest`; open it and send the "
                    "32-byte secret to `POST /v1/applications/{app_id}/proof`.",
                    size=KEM_CHALLENGE_BYTES,
                ),
            },
        ),
        **result(
            ApplicationStatus,
            "Public status of an application.",
            {
                "id": schema_ref("ApplicationId"),
                "authority": schema_ref("AuthorityId"),
                "reason": {
                    "type": ["string", "null"],
                    "description": "The rejection reason, once rejected.",
                },
            },
        ),
        **result(
            ApplicationState,
            "An application after a transition (proof accepted, or rejected).",
            {"id": schema_ref("ApplicationId"), "authority": schema_ref("AuthorityId")},
        ),
        **result(
            ApplicationSummary, "An application as the admins see it in a list.", app_summary_props
        ),
        **result(
            ApplicationDetail,
            "Everything an admin needs to check an application before signing its admission.",
            {
                **app_summary_props,
                "application": b64(
                    "The exact application container bytes (a SignedObject, §6.2).",
                    max_bytes=MAX_APPLICATION_SIZE,
                ),
                "contact": {"type": "string", "maxLength": 1000},
                "draft": {
                    **b64(
                        "Once possession is proven: the exact payload bytes of the draft "
                        "`admit` action the hub prepared (with the certificate).  Admins sign "
                        "these bytes under `globe/v1/membership-action` and submit the "
                        "container to `POST /v1/admin/actions`; null before the proof.",
                        max_bytes=MAX_ACTION_SIZE,
                    ),
                    "type": ["string", "null"],
                },
            },
        ),
        **result(
            ApplicationList,
            f"Applications, newest first (at most {LIST_MAX}).",
            {
                "applications": {
                    "type": "array",
                    "items": schema_ref(COMPONENTS[ApplicationSummary]),
                    "maxItems": LIST_MAX,
                }
            },
        ),
        **key_update_schemas(),
        **result(
            ActionResult,
            "The state of a membership action after adding signatures.",
            {
                "proposal": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "The action digest (§5.3) in hex.",
                },
                "action": {"type": "string", "enum": actions},
                "authority": schema_ref("AuthorityId"),
                "signatures": integer("Distinct admin signatures that verify so far."),
                "threshold": integer("Signatures the genesis requires.", minimum=1),
                "seq": integer("The log position, once appended.", minimum=1),
            },
        ),
        **result(
            Proposal,
            "A membership action collecting admin signatures.",
            {
                "proposal": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "authority": schema_ref("AuthorityId"),
                "action": {"type": "string", "enum": actions},
                "seq": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "The log position once appended, else null.",
                },
                "created": schema_ref("Timestamp"),
            },
        ),
        **result(
            ProposalList,
            f"Proposals, newest first (at most {LIST_MAX}).",
            {"proposals": {"type": "array", "items": schema_ref("Proposal"), "maxItems": LIST_MAX}},
        ),
        **result(
            LogPage,
            "A page of the membership log (PROTOCOL.md §6.4), verified by the client.",
            {
                "entries": {
                    "type": "array",
                    "items": b64(
                        "The exact bytes of one log entry (canonical JSON).",
                        max_bytes=MAX_ENTRY_SIZE,
                    ),
                    "description": "Entries with `seq` greater than `since`, in order.",
                },
                "next": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": (
                        "If more entries follow, the `seq` of the last one here: pass it as "
                        "`since`.  Null at the end of the log."
                    ),
                },
            },
        ),
        **result(
            MemberSummary,
            "A directory entry.",
            {
                "authority": schema_ref("AuthorityId"),
                "name": {"type": "string", "maxLength": 200},
                "country": schema_ref("Country"),
                "kinds": app_summary_props["kinds"],
                "languages": app_summary_props["languages"],
                "status": {"type": "string", "enum": statuses},
                "identity_key": schema_ref("KeyId"),
                "fingerprint": schema_ref("Fingerprint"),
                "not_after": schema_ref("Timestamp"),
                "endpoint": {
                    "type": "string",
                    "maxLength": 2048,
                    "description": "The member's direct endpoint, if certified.",
                },
                "reason": {
                    "type": "string",
                    "description": "Why the member is suspended or revoked (inactive only).",
                },
                "profile": {
                    **schema_ref("MemberProfile"),
                    "description": "The member's current profile, if it published one.",
                },
                "reasons": {
                    "type": "array",
                    "items": schema_ref("MatchReason"),
                    "description": "Why the member matched the search.",
                },
            },
        ),
        **result(
            SearchResults,
            "Members matching every filter, best first (ranked by `country`, then `q`), then "
            "by authority id.",
            {},
        ),
        **profile_schemas(),
        **result(
            PrekeyStored,
            "The stored prekey.",
            {
                "authority": schema_ref("AuthorityId"),
                "key_id": schema_ref("KeyId"),
                "not_after": schema_ref("Timestamp"),
            },
        ),
        **result(
            Prekeys,
            "A member's current signed prekeys, newest first.",
            {
                "authority": schema_ref("AuthorityId"),
                "prekeys": {
                    "type": "array",
                    "items": b64(
                        "The exact signed-prekey container bytes (§6.6); verify them with the "
                        "member's certified identity key.",
                        max_bytes=MAX_PREKEY_SIZE,
                    ),
                    "maxItems": MAX_PREKEYS,
                },
            },
        ),
        **result(
            AuditRecord,
            "One audit record.",
            {
                "id": integer("Record id, increasing.", minimum=1),
                "time": schema_ref("Timestamp"),
                "actor": {"type": "string", "maxLength": 80},
                "action": {"type": "string", "maxLength": 40},
                "subject": {"type": "string", "maxLength": 80},
                "detail": {"type": "object", "description": "Action-specific details."},
            },
        ),
        **result(
            AuditRecords,
            "Audit records with id greater than `since`, oldest first.",
            {},
        ),
        **result(
            MailboxItem,
            "One item waiting for the member.",
            {
                "cursor": integer(
                    "The item's position: increasing in the order items were stored; pass "
                    "the last one seen as `after` to continue.",
                    minimum=1,
                ),
                "kind": {
                    "type": "string",
                    "enum": [ENVELOPE, RECEIPT, NON_DELIVERY],
                    "description": (
                        f"`{ENVELOPE}`: an envelope addressed to the member, released only "
                        "by its signed receipt.  Notices, dropped by cursor once read: "
                        f"`{RECEIPT}` (a recipient's receipt for an envelope the member sent, "
                        f"with the hub's `delivered` evidence) and `{NON_DELIVERY}` (the "
                        "hub's `non-delivery` evidence: a recipient did not acknowledge before "
                        "expiry)."
                    ),
                },
                "data": b64(
                    f"`{ENVELOPE}`: the exact envelope bytes as accepted.  `{RECEIPT}`: "
                    'canonical JSON `{"evidence": b64(evidence container), "receipt": '
                    f"b64(receipt container)}}`.  `{NON_DELIVERY}`: the evidence container "
                    "(canonical JSON).",
                    max_bytes=limits.max_envelope,
                ),
            },
        ),
        **result(
            MailboxPage,
            "Items after `after`, oldest first.",
            {
                "items": {
                    "type": "array",
                    "items": schema_ref("MailboxItem"),
                    "maxItems": limits.mailbox_page,
                },
                "cursor": integer(
                    "The cursor of the last item here, or `after` if there is none: pass it "
                    "as `after` for the next page."
                ),
            },
        ),
        **result(
            AckResult,
            "What the acknowledgement did.",
            {
                "released": {
                    "type": "array",
                    "items": schema_ref("MessageId"),
                    "description": "Ids of the envelopes released, in the order of the receipts.",
                },
                "refused": {
                    "type": "array",
                    "items": result_schema(
                        AckRefusal,
                        "A receipt that released nothing.",
                        {
                            "type": {
                                "type": "string",
                                "format": "uri",
                                "description": "A problem type (see `Problem`).",
                            },
                            "detail": {"type": "string"},
                        },
                    ),
                    "description": "One entry per receipt that released nothing.",
                },
                "notices": integer("Notices dropped."),
            },
        ),
        **submission_schemas(),
        **result(
            BlobStored,
            "A stored attachment blob.",
            {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "size": integer("Bytes stored.", maximum=limits.max_blob),
                "sha256": b64("SHA-256 of the ciphertext.", size=32),
            },
        ),
        **result(Health, "Liveness.", {}),
        **result(
            Readiness,
            "Readiness: the database answers and the directory is verified.",
            {"seq": integer("Length of the verified membership log.")},
        ),
    }


def key_update_schemas() -> JsonObject:
    """The components of the key-update answers (PROTOCOL.md §6.8)."""
    replaced = {
        "type": "array",
        "items": {"type": "string", "enum": list(KEY_ROLES)},
        "minItems": 1,
        "maxItems": len(KEY_ROLES),
        "uniqueItems": True,
        "description": "The roles whose key the request replaces, in this order.",
    }
    ids = {"id": schema_ref("KeyUpdateId"), "authority": schema_ref("AuthorityId")}
    reason = {"type": ["string", "null"], "description": "The rejection reason, once rejected."}
    summary: JsonObject = {
        **ids,
        "replaced": replaced,
        "reason": reason,
        "created": schema_ref("Timestamp"),
        "fingerprint": {
            **schema_ref("Fingerprint"),
            "description": "The authority fingerprint of the keys asked for (§3.4).",
        },
    }
    return {
        **result(
            KeyUpdateCreated,
            "An accepted key-update request and its proof-of-possession challenge for the new "
            "key-agreement key (PROTOCOL.md §6.8).",
            {
                **ids,
                "replaced": replaced,
                "fingerprint": summary["fingerprint"],
                "challenge": b64(
                    "HPKE ciphertext sealed to the request's `ka_key` with info "
                    "`globe/v1/kem-pop || 0x00 || request digest`; open it and send the "
                    "32-byte secret to `POST /v1/key-updates/{ku_id}/proof`.",
                    size=KEM_CHALLENGE_BYTES,
                ),
            },
        ),
        **result(
            KeyUpdateStatus, "Public status of a key-update request.", {**ids, "reason": reason}
        ),
        **result(
            KeyUpdateState,
            "A key-update request after a transition (proof accepted, or rejected).",
            ids,
        ),
        **result(KeyUpdateSummary, "A key-update request as the admins see it in a list.", summary),
        **result(
            KeyUpdateDetail,
            "Everything an admin needs to check a key update before signing it.",
            {
                **summary,
                "request": b64(
                    "The exact request container bytes (a SignedObject, §6.8).",
                    max_bytes=MAX_KEY_UPDATE_SIZE,
                ),
                "draft": {
                    **b64(
                        "Once possession is proven: the exact payload bytes of the draft "
                        "`update-keys` the hub prepared (its certificate names the request's "
                        "digest).  Admins sign these bytes under `globe/v1/membership-action` "
                        "and submit the container to `POST /v1/admin/actions`; null before "
                        "the proof.",
                        max_bytes=MAX_ACTION_SIZE,
                    ),
                    "type": ["string", "null"],
                },
            },
        ),
        **result(
            KeyUpdateList,
            f"Key-update requests, newest first (at most {LIST_MAX}).",
            {
                "key_updates": {
                    "type": "array",
                    "items": schema_ref(COMPONENTS[KeyUpdateSummary]),
                    "maxItems": LIST_MAX,
                }
            },
        ),
    }


def profile_schemas() -> JsonObject:
    """The components of a member's profile (PROTOCOL.md §6.7) and of search reasons."""
    language = {"type": "string", "pattern": "^[a-z]{2}$"}
    return {
        **result(
            ContactPoint,
            "A contact point: a role or desk, never a person; `email` and `phone` only if the "
            "member publishes them.",
            {
                "role": {"type": "string", "enum": list(CONTACT_ROLES)},
                "label": {"type": "string", "maxLength": MAX_LABEL},
                "hours": {"type": "string", "maxLength": MAX_LABEL},
                "languages": {
                    "type": "array",
                    "items": language,
                    "maxItems": MAX_CONTACT_LANGUAGES,
                    "uniqueItems": True,
                },
                "email": {"type": "string", "maxLength": 254},
                "phone": {"type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$"},
            },
        ),
        **result(
            MemberProfile,
            "A member's current profile, verified from the log (PROTOCOL.md §6.7).",
            {
                "seq": integer("The profile's own sequence number.", minimum=1),
                "published": schema_ref("Timestamp"),
                "offences": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(OFFENCE_AREAS)},
                    "maxItems": len(OFFENCE_AREAS),
                    "uniqueItems": True,
                },
                "time_zone": {"type": "string", "maxLength": 64},
                "contacts": {
                    "type": "array",
                    "items": schema_ref("ContactPoint"),
                    "maxItems": MAX_CONTACTS,
                },
                "note": {"type": "string", "maxLength": MAX_NOTE},
            },
        ),
        **result(
            MatchReason,
            "Why a member matched: the field, the value that matched (for a country name, in "
            "`language`) and how (`code`, `exact`, `prefix`, `substring`, or `filter`).",
            {
                "value": {"type": "string", "description": "What matched, as the entry has it."},
                "language": {"type": "string", "enum": list(LANGUAGES)},
            },
        ),
        **result(
            ProfilePublished,
            "The profile, appended to the membership log.",
            {
                "authority": schema_ref("AuthorityId"),
                "seq": integer("The profile's sequence number.", minimum=1),
                "entry": integer("Its log entry.", minimum=1),
                "time": schema_ref("Timestamp"),
            },
        ),
    }


def submission_schemas() -> JsonObject:
    """The components of the answer to ``POST /v1/messages/batch`` (PROTOCOL.md §10.6)."""
    submission = result_schema(
        Submission,
        "One envelope's outcome, as `POST /v1/messages` would answer it alone: accepted "
        "(`status` 201 or 200, with `evidence` and nothing else) or refused (`status` 400 or "
        "more, with `type` and `detail`, and `evidence` and `retry_after` when they apply).",
        {
            "status": {
                "type": "integer",
                "minimum": 200,
                "maximum": 599,
                "description": (
                    "201: accepted now.  200: these exact bytes were accepted before.  Any "
                    "other: the HTTP status of the single route's refusal."
                ),
            },
            "evidence": b64(
                "Accepted: the hub's `accepted` evidence container (canonical JSON, "
                "PROTOCOL.md §9; for a resubmission the original, byte for byte).  Refused: "
                "the hub's `rejected` evidence container (§9.2), exactly when the single "
                "route's problem would carry it (a final refusal of a genuine envelope of the "
                "authenticated member)."
            ),
            "type": {
                "type": "string",
                "format": "uri",
                "description": "The refusal's problem type (see `Problem`).",
            },
            "detail": {"type": "string", "description": "Free text; not part of the contract."},
            "retry_after": integer(
                "Seconds to wait before submitting this envelope again: on a "
                f"`{RateLimited.slug}` refusal its wait, on a `{StorageError.slug}` refusal 1.",
                minimum=1,
            ),
        },
    )
    # Accepted: the evidence alone; refused: a problem's type and detail.
    submission["if"] = {"properties": {"status": {"enum": [200, 201]}}}
    submission["then"] = {"required": ["evidence"], "maxProperties": 2}
    submission["else"] = {
        "properties": {"status": {"minimum": 400}},
        "required": ["type", "detail"],
    }
    return {
        COMPONENTS[Submission]: submission,
        **result(
            Submissions,
            "One result per envelope of the request, in request order.",
            {
                "results": {
                    "type": "array",
                    "items": schema_ref(COMPONENTS[Submission]),
                    "minItems": 1,
                    "maxItems": BATCH_MAX_ITEMS,
                },
            },
        ),
    }
