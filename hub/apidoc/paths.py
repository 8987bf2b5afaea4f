"""The hub API's operations: operations, directory, applications, prekeys and admin routes."""

from __future__ import annotations

from globe_io.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
)
from globe_io.hubapi import (
    APPLICATION_STATES,
    PROPOSAL_STATES,
)
from hub.actions import ACTION_CONTAINER_MAX
from hub.apidoc.build import (
    ONCE,
    ApiLimits,
    JsonObject,
    int_param,
    json_content,
    ok_response,
    operation,
    query_param,
    schema_ref,
    text_param,
)
from hub.apidoc.messages import message_paths, stream_and_blob_paths
from hub.service import MAX_PREKEYS
from hub.web import (
    ADMIN_STATUS,
    AUDIT_MAX,
    AUDIT_PAGE,
    CURSOR_MAX,
    SEARCH_COUNTRY,
    SEARCH_KIND,
    SEARCH_LANGUAGE,
    SEARCH_OFFENCE,
    SEARCH_TEXT,
)
from protocol.errors import (
    AuthError,
    BadSignature,
    DecodeError,
    DecryptionFailed,
    InvalidIdentifier,
    LogError,
    MalformedError,
    MemberNotActive,
    NotCertified,
    ReplayError,
    SizeLimitExceeded,
    StaleError,
    UnknownMember,
)
from protocol.keyupdate import MAX_KEY_UPDATE_SIZE
from protocol.membership import (
    MAX_ACTION_SIZE,
    MAX_APPLICATION_SIZE,
)
from protocol.prekeys import MAX_PREKEY_LIFETIME, MAX_PREKEY_SIZE
from protocol.profile import MAX_PROFILE_CONTAINER, MAX_PROFILE_SIZE
from protocol.requestauth import HEADER

__all__ = ["paths"]


def paths(limits: ApiLimits) -> JsonObject:
    """Every route's operations (the message routes from :mod:`hub.apidoc.messages`)."""
    app_id = {
        "name": "app_id",
        "in": "path",
        "required": True,
        "description": (
            f"The application id; anything but 32 lower-case hex digits is a 404 `{NotFound.slug}`."
        ),
        "schema": schema_ref("ApplicationId"),
    }
    ku_id = {
        "name": "ku_id",
        "in": "path",
        "required": True,
        "description": (
            "The key-update id (the first half of the request's digest, in hex); anything but "
            f"32 lower-case hex digits is a 404 `{NotFound.slug}`."
        ),
        "schema": schema_ref("KeyUpdateId"),
    }
    signed_body = "Signed-object container (exact canonical bytes; see the `SignedObject` schema)."
    auth_401 = f"`{AuthError.slug}` or `{StaleError.slug}`: the `{HEADER}` header was refused."
    replay_409 = f"`{ReplayError.slug}`: the request nonce was already used."
    too_large = f"`{PayloadTooLarge.slug}`: the body exceeds `max_body` ({limits.max_body} bytes)."
    admin_status = text_param(
        ADMIN_STATUS, "Only items with this status (unknown values match nothing)."
    )

    def admin_get(
        operation_id: str,
        summary: str,
        description: str,
        ok: JsonObject,
        *,
        parameters: list[JsonObject] | None = None,
        extra: dict[int, str | None] | None = None,
    ) -> JsonObject:
        errors: dict[int, str | None] = {
            401: auth_401,
            409: replay_409,
            413: too_large,
            503: None,
            **(extra or {}),
        }
        return operation(
            operation_id,
            "admin",
            summary,
            description + "  Signed with an admin key; the signed body is usually empty.",
            {"200": ok},
            errors=errors,
            parameters=parameters,
            signed=True,
        )

    return {
        "/metrics": {
            "get": operation(
                "metrics",
                "operations",
                "Prometheus metrics",
                "Counters (accepted, duplicates, receipts, expired, refused by problem type), "
                "gauges (mailbox items and bytes, log length) and histograms (accept latency, "
                "group-commit batch size, request time by route) in the Prometheus text format. "
                "Restrict access at the reverse proxy.",
                {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                errors={},
            )
        },
        "/healthz": {
            "get": operation(
                "healthz",
                "operations",
                "Liveness",
                "The process answers.",
                {"200": ok_response("Alive.", schema_ref("Health"))},
                errors={},
            )
        },
        "/readyz": {
            "get": operation(
                "readyz",
                "operations",
                "Readiness",
                "The database answers and the directory is loaded; entries another hub "
                "process appended are verified first.",
                {"200": ok_response("Ready.", schema_ref("Readiness"))},
                errors={
                    409: f"`{LogError.slug}` and its subtypes: a stored entry fails verification.",
                    503: None,
                },
            )
        },
        "/v1/openapi.json": {
            "get": operation(
                "getOpenApi",
                "operations",
                "This document",
                "The OpenAPI 3.1 description of this API.",
                {"200": ok_response("The document.", schema_ref("OpenApiDocument"))},
                errors={},
            )
        },
        "/v1/directory/genesis": {
            "get": operation(
                "getGenesis",
                "directory",
                "The genesis",
                "The genesis container this hub serves (PROTOCOL.md §6.1).  Nodes pin their "
                "own copy, obtained out of band, and compare.",
                {
                    "200": ok_response(
                        "The genesis: exact container bytes.", schema_ref("SignedObject")
                    )
                },
                errors={},
            )
        },
        "/v1/directory/log": {
            "get": operation(
                "getLog",
                "directory",
                "Membership log entries",
                "Log entries after `since`, as exact bytes, read from the database.",
                {"200": ok_response("A page of entries.", schema_ref("LogPage"))},
                errors={400: None, 503: None},
                parameters=[
                    int_param(
                        "since",
                        "Return entries with a greater `seq`.",
                        default=0,
                        lo=0,
                        hi=CURSOR_MAX,
                    ),
                    int_param(
                        "limit",
                        "Page size (at most `page_size`).",
                        default=limits.page_size,
                        lo=1,
                        hi=limits.page_size,
                    ),
                ],
            )
        },
        "/v1/directory/checkpoint": {
            "get": operation(
                "getCheckpoint",
                "directory",
                "A signed checkpoint",
                "A fresh checkpoint of the log head signed by the hub key (PROTOCOL.md §6.4).",
                {"200": ok_response("The checkpoint container.", schema_ref("SignedObject"))},
                errors={},
            )
        },
        "/v1/directory/search": {
            "get": operation(
                "searchDirectory",
                "directory",
                "Search the directory",
                "Members matching every given filter, over the verified directory, ranked (a "
                "code before a whole name, a whole name before a beginning, a beginning before "
                "a part; `country` first, then `q`; then by authority id), each with the "
                "reasons it matched.",
                {"200": ok_response("The matches.", schema_ref("SearchResults"))},
                errors={400: None},
                parameters=[
                    text_param(
                        SEARCH_COUNTRY,
                        "A country: its ISO 3166-1 alpha-2 code (any case), or its name, the "
                        "beginning or a part of its name, in Arabic, English, French or Spanish "
                        "(case, accents and Arabic letter variants ignored).  Ranks the results.",
                    ),
                    text_param(SEARCH_KIND, "Competence (authority kind), exact."),
                    text_param(
                        SEARCH_OFFENCE, "Offence area of the member's profile (§6.7), exact."
                    ),
                    text_param(SEARCH_LANGUAGE, "ISO 639-1 code (two lower-case letters), exact."),
                    text_param(
                        SEARCH_TEXT,
                        "The authority id, the name, or the country as `country` takes it; "
                        "whole, beginning or part, folded as `country` is.  Ranks the results.",
                    ),
                    query_param(
                        "inactive",
                        "`1` includes suspended and revoked members; any other value does not.  "
                        + ONCE,
                        {"type": "string", "examples": ["1"]},
                    ),
                    int_param(
                        "limit",
                        "Maximum results (at most `page_size`).",
                        default=limits.page_size,
                        lo=1,
                        hi=limits.page_size,
                    ),
                ],
            )
        },
        "/v1/applications": {
            "post": operation(
                "submitApplication",
                "applications",
                "Apply for membership",
                "Submit an application (PROTOCOL.md §6.2) signed by both the identity and the "
                "transport key.  The answer carries a challenge proving possession of the "
                "key-agreement key.",
                {
                    "201": ok_response(
                        "Accepted; answer the challenge.", schema_ref("ApplicationCreated")
                    )
                },
                errors={
                    400: f"Not a valid application (`{DecodeError.slug}` family, ...).",
                    401: f"`{BadSignature.slug}`: the two signatures are not both there and valid.",
                    409: f"`{Conflict.slug}`: already a member, an application for the authority "
                    "or one of its keys is open, or a key is the hub's, an admin's or a member's.",
                    413: f"`{PayloadTooLarge.slug}`, or `{SizeLimitExceeded.slug}` over "
                    f"{MAX_APPLICATION_SIZE} bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": f"The application. {signed_body}",
                    "content": json_content(schema_ref("SignedObject")),
                },
            )
        },
        "/v1/key-updates": {
            "post": operation(
                "submitKeyUpdate",
                "key-updates",
                "Ask for new keys",
                "Submit a key-update request (PROTOCOL.md §6.8): the member's new identity, "
                "transport and key-agreement keys (a kept key unchanged), signed by its "
                "current identity key and by the new identity and transport keys.  The answer "
                "carries a challenge proving possession of the key-agreement key; the admins' "
                "quorum then certifies the keys with an `update-keys`.",
                {
                    "201": ok_response(
                        "Accepted; answer the challenge.", schema_ref("KeyUpdateCreated")
                    )
                },
                errors={
                    400: f"Not a valid key-update request (`{DecodeError.slug}` family, "
                    f"`{MalformedError.slug}`: it replaces no key, or a suspended member keeps "
                    "one).",
                    401: f"`{BadSignature.slug}`: not exactly the current identity key's and "
                    "the new signing keys' valid signatures.",
                    403: f"`{UnknownMember.slug}`: not a member; `{MemberNotActive.slug}`: "
                    "revoked.",
                    409: f"`{LogError.slug}`: a key is the hub's, an admin's, or certified "
                    f"before (R4); or `{Conflict.slug}`: a key update of the authority is "
                    "open, a key is named by another open request or application, or this "
                    "request was submitted before.",
                    413: f"`{PayloadTooLarge.slug}`, or `{SizeLimitExceeded.slug}` over "
                    f"{MAX_KEY_UPDATE_SIZE} bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": f"The request. {signed_body}",
                    "content": json_content(schema_ref("SignedObject")),
                },
            )
        },
        "/v1/key-updates/{ku_id}": {
            "get": operation(
                "getKeyUpdateStatus",
                "key-updates",
                "Key-update status",
                "Public status of a key-update request.",
                {"200": ok_response("The status.", schema_ref("KeyUpdateStatus"))},
                errors={404: None, 503: None},
                parameters=[ku_id],
            )
        },
        "/v1/key-updates/{ku_id}/proof": {
            "post": operation(
                "answerKeyUpdateChallenge",
                "key-updates",
                "Prove possession of the new key-agreement key",
                "Answer the KEM challenge.  On success the request awaits the admins.",
                {"200": ok_response("Possession proven.", schema_ref("KeyUpdateState"))},
                errors={
                    400: f"`{MalformedError.slug}` body, or `{DecryptionFailed.slug}`: the "
                    "answer does not open the challenge.",
                    403: f"`{UnknownMember.slug}` or `{MemberNotActive.slug}`: the request no "
                    "longer applies to the directory.",
                    404: None,
                    409: f"`{Conflict.slug}`: the request does not await a proof; "
                    f"`{LogError.slug}`: one of its keys was certified since.",
                    413: too_large,
                    503: None,
                },
                parameters=[ku_id],
                body={
                    "required": True,
                    "content": json_content(schema_ref("Proof")),
                },
            )
        },
        "/v1/applications/{app_id}": {
            "get": operation(
                "getApplicationStatus",
                "applications",
                "Application status",
                "Public status of an application.",
                {"200": ok_response("The status.", schema_ref("ApplicationStatus"))},
                errors={404: None, 503: None},
                parameters=[app_id],
            )
        },
        "/v1/applications/{app_id}/proof": {
            "post": operation(
                "answerChallenge",
                "applications",
                "Prove possession of the key-agreement key",
                "Answer the KEM challenge.  On success the application awaits the admins.",
                {"200": ok_response("Possession proven.", schema_ref("ApplicationState"))},
                errors={
                    400: f"`{MalformedError.slug}` body, or `{DecryptionFailed.slug}`: the "
                    "answer does not open the challenge.",
                    404: None,
                    409: f"`{Conflict.slug}`: the application does not await a proof.",
                    413: too_large,
                    503: None,
                },
                parameters=[app_id],
                body={
                    "required": True,
                    "content": json_content(schema_ref("Proof")),
                },
            )
        },
        "/v1/prekeys": {
            "put": operation(
                "putPrekey",
                "prekeys",
                "Publish a signed prekey",
                "An active member publishes a prekey signed by its identity key "
                f"(PROTOCOL.md §6.6), authenticating the request with its transport key.  At "
                f"most {MAX_PREKEYS} unexpired prekeys per member; expired ones are dropped.",
                {"201": ok_response("Stored.", schema_ref("PrekeyPut"))},
                errors={
                    400: "Not a valid prekey of the authenticated member, or already expired.",
                    401: f"{auth_401}  Or `{BadSignature.slug}`: the prekey is not signed by "
                    "the member's identity key.",
                    403: f"`{MemberNotActive.slug}`: suspended or revoked meanwhile.",
                    409: f"{replay_409}  Or `{Conflict.slug}`: already published, or "
                    f"{MAX_PREKEYS} unexpired prekeys already.",
                    413: f"{too_large}  Or `{SizeLimitExceeded.slug}` over {MAX_PREKEY_SIZE} "
                    "bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": (
                        f"The signed prekey. {signed_body}  Its validity is at most "
                        f"{MAX_PREKEY_LIFETIME // 86400} days."
                    ),
                    "content": json_content(schema_ref("SignedObject")),
                },
                signed=True,
            )
        },
        "/v1/profile": {
            "put": operation(
                "putProfile",
                "directory",
                "Publish the member's profile",
                "An active member publishes its profile (PROTOCOL.md §6.7): offence areas, time "
                "zone, contact points.  The profile is signed by the member's current identity "
                "key; the request by its transport key.  The hub checks it as every node will "
                "and appends it to the membership log.",
                {"201": ok_response("Appended.", schema_ref("ProfilePublished"))},
                errors={
                    400: "Not a valid profile, or a profile of another authority.",
                    401: f"{auth_401}  Or `{BadSignature.slug}`: the profile's signature does "
                    "not verify.",
                    403: f"`{NotCertified.slug}`: not signed by the member's current identity "
                    f"key; `{MemberNotActive.slug}`: suspended or revoked meanwhile.",
                    409: f"{replay_409}  Or `{ReplayError.slug}`: its `seq` does not follow the "
                    f"current profile's; or `{Conflict.slug}`: the log moved on.",
                    413: f"{too_large}  Or `{SizeLimitExceeded.slug}`: container over "
                    f"{MAX_PROFILE_CONTAINER} or payload over {MAX_PROFILE_SIZE} bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": f"The profile. {signed_body}",
                    "content": json_content(schema_ref("SignedObject")),
                },
                signed=True,
            )
        },
        "/v1/prekeys/{authority}": {
            "get": operation(
                "getPrekeys",
                "prekeys",
                "A member's prekeys",
                "The member's prekeys valid now (or within the clock skew), newest first.  "
                "Verify each with the member's certified identity key; if there is none, "
                "senders may wrap to the certified key-agreement key.",
                {"200": ok_response("The prekeys.", schema_ref("Prekeys"))},
                errors={
                    400: f"`{InvalidIdentifier.slug}`: not an authority id.",
                    403: f"`{UnknownMember.slug}`: not in the directory.",
                    404: "The id holds a `/` (no such route).",
                    503: None,
                },
                parameters=[
                    {
                        "name": "authority",
                        "in": "path",
                        "required": True,
                        "schema": schema_ref("AuthorityId"),
                    }
                ],
            )
        },
        **message_paths(auth_401, replay_409, limits),
        **stream_and_blob_paths(auth_401, limits),
        "/v1/admin/applications": {
            "get": admin_get(
                "adminListApplications",
                "List applications",
                "Applications, newest first, optionally filtered by status "
                f"({', '.join(f'`{s}`' for s in APPLICATION_STATES)}).",
                ok_response("The applications.", schema_ref("AdminApplicationList")),
                parameters=[admin_status],
                extra={400: None},
            )
        },
        "/v1/admin/applications/{app_id}": {
            "get": admin_get(
                "adminGetApplication",
                "One application",
                "An application with its draft admission.",
                ok_response("The application.", schema_ref("AdminApplication")),
                parameters=[app_id],
                extra={404: None},
            )
        },
        "/v1/admin/applications/{app_id}/reject": {
            "post": operation(
                "adminRejectApplication",
                "admin",
                "Reject an application",
                "An admin refuses an open application (no quorum is needed to say no).",
                {"200": ok_response("Rejected.", schema_ref("ApplicationState"))},
                errors={
                    400: f"`{MalformedError.slug}`: not a rejection, or a blank reason.",
                    401: auth_401,
                    404: None,
                    409: f"{replay_409}  Or `{Conflict.slug}`: the application is not open.",
                    413: too_large,
                    503: None,
                },
                parameters=[app_id],
                body={"required": True, "content": json_content(schema_ref("Rejection"))},
                signed=True,
            )
        },
        "/v1/admin/key-updates": {
            "get": admin_get(
                "adminListKeyUpdates",
                "List key updates",
                "Key-update requests, newest first, optionally filtered by status "
                f"({', '.join(f'`{s}`' for s in APPLICATION_STATES)}).",
                ok_response("The key updates.", schema_ref("AdminKeyUpdateList")),
                parameters=[admin_status],
                extra={400: None},
            )
        },
        "/v1/admin/key-updates/{ku_id}": {
            "get": admin_get(
                "adminGetKeyUpdate",
                "One key update",
                "A key-update request with its draft `update-keys` (drafted anew when the "
                "member's latest action changed since).",
                ok_response("The key update.", schema_ref("AdminKeyUpdate")),
                parameters=[ku_id],
                extra={404: None},
            )
        },
        "/v1/admin/key-updates/{ku_id}/reject": {
            "post": operation(
                "adminRejectKeyUpdate",
                "admin",
                "Reject a key update",
                "An admin refuses an open key-update request (no quorum is needed to say no).",
                {"200": ok_response("Rejected.", schema_ref("KeyUpdateState"))},
                errors={
                    400: f"`{MalformedError.slug}`: not a rejection, or a blank reason.",
                    401: auth_401,
                    404: None,
                    409: f"{replay_409}  Or `{Conflict.slug}`: the request is not open.",
                    413: too_large,
                    503: None,
                },
                parameters=[ku_id],
                body={"required": True, "content": json_content(schema_ref("Rejection"))},
                signed=True,
            )
        },
        "/v1/admin/actions": {
            "post": operation(
                "adminSubmitAction",
                "admin",
                "Sign a membership action",
                "Add admin signatures to a membership action (PROTOCOL.md §6.3).  Signatures "
                "are merged with those collected before; once the genesis quorum verifies, the "
                "action is appended to the log.  An `admit` must sign exactly the draft the "
                "hub prepared for a pending application, and an `update-keys` naming a "
                "key-update request the draft prepared for it.",
                {
                    "200": ok_response(
                        "Signatures recorded (and appended at quorum).", schema_ref("ActionResult")
                    )
                },
                errors={
                    400: "Not a valid membership action.",
                    401: f"{auth_401}  Or `{BadSignature.slug}`: a signature in the container "
                    "is not a valid admin signature.",
                    409: f"{replay_409}  Or `{LogError.slug}`: the action does not apply to the "
                    f"directory; or `{Conflict.slug}`: no matching pending application or key "
                    "update, the proposal is closed, or the log moved on.",
                    413: f"{too_large}  Or `{SizeLimitExceeded.slug}`: container over "
                    f"{ACTION_CONTAINER_MAX} or payload over {MAX_ACTION_SIZE} bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": f"The action. {signed_body}",
                    "content": json_content(schema_ref("SignedObject")),
                },
                signed=True,
            )
        },
        "/v1/admin/proposals": {
            "get": admin_get(
                "adminListProposals",
                "List proposals",
                "Membership actions collecting signatures, newest first, optionally filtered "
                f"by status ({', '.join(f'`{s}`' for s in PROPOSAL_STATES)}).",
                ok_response("The proposals.", schema_ref("ProposalList")),
                parameters=[admin_status],
                extra={400: None},
            )
        },
        "/v1/admin/audit": {
            "get": admin_get(
                "adminAudit",
                "Audit trail",
                "Audit records of applications and admin actions, oldest first.",
                ok_response("The records.", schema_ref("AuditRecords")),
                parameters=[
                    int_param(
                        "since", "Return records with a greater id.", default=0, lo=0, hi=CURSOR_MAX
                    ),
                    int_param("limit", "Maximum records.", default=AUDIT_PAGE, lo=1, hi=AUDIT_MAX),
                ],
                extra={400: None},
            )
        },
    }
