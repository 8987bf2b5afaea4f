"""Key updates: ``key-updates``, ``show-keys``, ``approve-keys``, ``reject-keys``
(docs/PROTOCOL.md §6.8; docs/OPERATIONS.md, "Key updates").

A member asks for new keys with a key-update request; the hub checks its proofs and
drafts the ``update-keys`` that certifies them.  Here the request is verified again
against the whole log, verified from the pinned genesis, and the draft is signed only if
it is exactly the one recomputed from the request and that log
(:func:`protocol.keyupdate.check_key_update_draft`).  Before approving, compare the new
authority fingerprint with the member by telephone or in person: it is the one check
that the new keys are the authority's (R1).
"""

from __future__ import annotations

import time
from typing import Any

import click

from globe_admin.members import verified_log
from globe_admin.session import Admin, app_id, outcome, reason, workflow_command
from globe_io import cli
from globe_io.errors import CommandError
from globe_io.hubapi import APPLICATION_STATES, PENDING, KeyUpdateDetail
from globe_io.hubclient import HubClient
from protocol import labels
from protocol.directory import DirectoryState
from protocol.errors import GlobeError
from protocol.keyupdate import KeyUpdateRequest, check_key_update_draft
from protocol.membership import Action
from protocol.signed import SignedObject

__all__ = ["approve_keys", "key_updates", "reject_keys", "show_keys"]

_MAX_SHOWN = 5


async def _resolve(hub: HubClient, ref: str) -> str:
    """The id of the one key update whose id is ``ref`` or starts with it."""
    if len(ref) == 32:
        return ref
    found = sorted(k.id for k in (await hub.admin_key_updates(None)).key_updates
                   if k.id.startswith(ref))  # fmt: skip
    if not found:
        raise CommandError(f"no key update id starts with {ref}")
    if len(found) > 1:
        shown = ", ".join(found[:_MAX_SHOWN]) + (", ..." if len(found) > _MAX_SHOWN else "")
        raise CommandError(f"key update id prefix {ref} is ambiguous: {shown}")
    return found[0]


def _draft_verdict(
    request: KeyUpdateRequest, info: KeyUpdateDetail, state: DirectoryState
) -> dict[str, Any]:
    """Whether the hub's draft ``update-keys`` certifies exactly this request."""
    draft: dict[str, Any] = {"present": info.draft is not None, "matches": False}
    if info.draft is None:
        draft["detail"] = "no draft yet: the member has not proven its new key-agreement key"
        return draft
    try:
        action = check_key_update_draft(request, info.draft, state, now=int(time.time()))
    except GlobeError as exc:
        draft["detail"] = exc.detail
        return draft
    assert action.certificate is not None  # noqa: S101 - an update-keys carries one
    return draft | {
        "matches": True,
        "detail": "the draft update-keys certifies exactly the keys the member asked for",
        "serial": action.certificate.serial,
        "not_before": action.certificate.not_before,
        "not_after": action.certificate.not_after,
    }


async def _verified(
    admin: Admin, hub: HubClient, ref: str
) -> tuple[str, KeyUpdateDetail, KeyUpdateRequest, DirectoryState]:
    """The key update ``ref`` names, its request verified against the verified log."""
    ku_id = await _resolve(hub, ref)
    info = await hub.admin_key_update(ku_id)
    state, _rows, _cp, _rel = await verified_log(admin, hub)
    try:
        request = KeyUpdateRequest.decode(info.request, state)
    except GlobeError as exc:
        raise CommandError(
            f"key update {ku_id} does not verify against the log: {exc.detail}"
        ) from None
    return ku_id, info, request, state


@workflow_command("key-updates", short_help="list members' key-update requests")
@click.option(
    "--status", type=click.Choice(APPLICATION_STATES), help="only key updates in this state"
)
async def key_updates(_admin: Admin, hub: HubClient, *, status: str | None) -> cli.Result:
    """List key-update requests (optionally by status)."""
    found = await hub.admin_key_updates(status)
    lines = [
        f"{cli.safe(k.id)}  {cli.safe(k.authority):<12} {cli.safe(k.status):<12} "
        f"{cli.iso(k.created):<20}  {', '.join(cli.safe(r) for r in k.replaced)}"
        for k in found.key_updates
    ]
    return found.to_json(), lines or ["no key updates"]


@workflow_command("show-keys", short_help="show and check one key update")
@click.argument("ref", metavar="ID", callback=app_id)
async def show_keys(admin: Admin, hub: HubClient, *, ref: str) -> cli.Result:
    """Show a key-update request (its id, or a unique prefix of it), verified against the
    whole log, the keys it replaces, and whether its draft update-keys matches it."""
    ku_id, info, request, state = await _verified(admin, hub, ref)
    member = state.member(request.authority)
    current = member.certificate
    data: dict[str, Any] = {
        "id": ku_id,
        "authority": str(request.authority),
        "name": current.name,
        "member_status": member.status.value,
        "replaced": list(request.replaced),
        "created": request.created,
        "current": {
            "identity_key": str(current.identity_key.key_id),
            "transport_key": str(current.transport_key.key_id),
            "ka_key": str(current.ka_key().key_id),
            "fingerprint": current.fingerprint(),
        },
        "new": {
            "identity_key": str(request.identity_key.key_id),
            "transport_key": str(request.transport_key.key_id),
            "ka_key": str(request.ka_key.key_id),
            "fingerprint": request.fingerprint(),
        },
        "status": cli.safe(info.status),
        "reason": info.reason,
        "draft": _draft_verdict(request, info, state),
    }
    lines = [
        f"key update   {ku_id}",
        f"authority    {request.authority} ({current.name}), {member.status.value}",
        f"replaces     {', '.join(request.replaced)}",
        f"created      {cli.iso(request.created)}",
        f"identity key {data['current']['identity_key']} -> {data['new']['identity_key']}",
        f"transport    {data['current']['transport_key']} -> {data['new']['transport_key']}",
        f"ka key       {data['current']['ka_key']} -> {data['new']['ka_key']}",
        f"fingerprint  {request.fingerprint()}  (compare it with the member out of band)",
        f"status       {data['status']}"
        + (f" ({cli.safe(info.reason)})" if info.reason is not None else ""),
    ]
    draft = data["draft"]
    if draft["matches"]:
        lines.append(f"draft        matches the request (serial {draft['serial']})")
    else:
        lines.append(f"draft        DOES NOT MATCH: {draft['detail']}")
    return data, lines


@workflow_command(
    "approve-keys",
    help="Verify the key-update request and its draft update-keys against the whole log, "
    "verified from the pinned genesis, then sign the draft.  The new keys are certified when "
    "K distinct admins have signed.  Compare the new fingerprint (show-keys) with the member "
    "out of band first.",
    short_help="sign the update-keys of a key-update request",
)
@click.argument("ref", metavar="ID", callback=app_id)
async def approve_keys(admin: Admin, hub: HubClient, *, ref: str) -> cli.Result:
    """Sign the draft update-keys of a key-update request (its id, or a unique prefix)."""
    ku_id, info, request, state = await _verified(admin, hub, ref)
    if info.status != PENDING or info.draft is None:
        raise CommandError(f"key update {ku_id} is {cli.safe(info.status)}, not pending approval")
    check_key_update_draft(request, info.draft, state, now=int(time.time()))
    container = SignedObject(info.draft, ()).with_signature(labels.MEMBERSHIP_ACTION, admin.key)
    result = await hub.admin_submit_action(container.encode())
    data = {"key_update": ku_id, "fingerprint": request.fingerprint(), **result.to_json()}
    return data, outcome(result, Action.UPDATE_KEYS, request.authority)


@workflow_command("reject-keys", short_help="reject a key-update request")
@click.argument("ref", metavar="ID", callback=app_id)
@click.option("--reason", "why", required=True, callback=reason, help="why (the member sees it)")
async def reject_keys(_admin: Admin, hub: HubClient, *, ref: str, why: str) -> cli.Result:
    """Reject a key-update request (its id, or a unique prefix of it), with a reason."""
    ku_id = await _resolve(hub, ref)
    result = await hub.admin_reject_key_update(ku_id, why)
    return result.to_json(), [f"key update {ku_id} ({cli.safe(result.authority)}) rejected"]
