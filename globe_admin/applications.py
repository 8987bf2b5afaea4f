"""The admission workflow: ``applications``, ``show``, ``approve``, ``reject``
(docs/OPERATIONS.md §6).

Applications are verified here against the pinned genesis, never taken on the hub's word,
and a draft admission is signed only if it is exactly the one recomputed from the
application (:func:`protocol.membership.check_admission_draft`).
"""

from __future__ import annotations

import time
from typing import Any

import click

from globe_admin.session import (
    Admin,
    app_id,
    check_shown,
    outcome,
    reason,
    resolve_app,
    sign_and_submit,
    workflow_command,
)
from globe_io import cli
from globe_io.errors import CommandError
from globe_io.hubapi import APPLICATION_STATES, PENDING, ActionResult, ApplicationDetail
from globe_io.hubclient import HubClient
from protocol.errors import GlobeError
from protocol.genesis import Genesis
from protocol.membership import Action, Application, check_admission_draft

__all__ = [
    "APPLICATION_STATES",
    "application_record",
    "applications",
    "approve",
    "draft_verdict",
    "reject",
    "show",
    "sign_admission",
]


@workflow_command("applications", short_help="list membership applications")
@click.option(
    "--status", type=click.Choice(APPLICATION_STATES), help="only applications in this state"
)
async def applications(_admin: Admin, hub: HubClient, *, status: str | None) -> cli.Result:
    """List applications (optionally by status)."""
    found = await hub.admin_applications(status)
    lines = [
        f"{cli.safe(a.id)}  {cli.safe(a.authority):<12} {cli.safe(a.status):<12} "
        f"{cli.iso(a.created):<20}  {cli.safe(a.name)}"
        for a in found.applications
    ]
    return found.to_json(), lines or ["no applications"]


def draft_verdict(app: Application, info: ApplicationDetail, genesis: Genesis) -> dict[str, Any]:
    """Whether the hub's draft admission certifies exactly this application, now: ``present``,
    ``matches`` and ``detail``, with the draft certificate's ``serial``, ``not_before`` and
    ``not_after`` when it matches (``globe-admin show`` and the console both show it)."""
    draft: dict[str, Any] = {"present": info.draft is not None, "matches": False}
    if info.draft is None:
        draft["detail"] = "no draft yet: the applicant has not proven its key-agreement key"
        return draft
    try:
        action = check_admission_draft(app, info.draft, genesis, now=int(time.time()))
    except GlobeError as exc:
        draft["detail"] = exc.detail
        return draft
    assert action.certificate is not None  # noqa: S101 - an admit carries one
    return draft | {
        "matches": True,
        "detail": "the draft admission certifies exactly this application",
        "serial": action.certificate.serial,
        "not_before": action.certificate.not_before,
        "not_after": action.certificate.not_after,
    }


def _application_lines(data: dict[str, Any], app: Application, reason_: object) -> list[str]:
    draft = data["draft"]
    lines = [
        f"application  {data['id']}",
        f"authority    {app.authority} ({app.name})",
        f"kinds        {', '.join(app.kinds)}",
        f"languages    {', '.join(app.languages)}",
        f"contact      {app.contact}".replace("\n", "\n             "),
        f"legal basis  {app.legal_basis}".replace("\n", "\n             "),
        f"endpoint     {app.endpoint or '-'}",
        f"created      {cli.iso(app.created)}",
        f"identity key {app.identity_key.key_id}",
        f"transport    {app.transport_key.key_id}",
        f"ka key       {app.ka_key.key_id}",
        f"fingerprint  {data['fingerprint']}",
        f"status       {data['status']}"
        + (f" ({cli.safe(reason_)})" if isinstance(reason_, str) else ""),
    ]
    if draft["matches"]:
        lines.append(
            f"draft        matches the application (serial {draft['serial']}, valid "
            f"{cli.iso(draft['not_before'])} to {cli.iso(draft['not_after'])})"
        )
    else:
        lines.append(f"draft        DOES NOT MATCH: {draft['detail']}")
    return lines


def application_record(
    app: str, info: ApplicationDetail, application: Application, genesis: Genesis
) -> dict[str, Any]:
    """What an admin checks of an application it verified against the pinned ``genesis``:
    its fields, the authority fingerprint computed here (the one the applicant's node
    prints), the hub's status and the verdict on the hub's draft admission."""
    return {
        "id": app,
        "authority": str(application.authority),
        "name": application.name,
        "country": application.authority.country,
        "kinds": list(application.kinds),
        "languages": list(application.languages),
        "contact": application.contact,
        "legal_basis": application.legal_basis,
        "endpoint": application.endpoint,
        "created": application.created,
        "identity_key": str(application.identity_key.key_id),
        "transport_key": str(application.transport_key.key_id),
        "ka_key": str(application.ka_key.key_id),
        "fingerprint": application.fingerprint(),
        "status": cli.safe(info.status),
        "reason": info.reason,
        "draft": draft_verdict(application, info, genesis),
    }


@workflow_command("show", short_help="show and check one application")
@click.argument("app", metavar="APP", callback=app_id)
async def show(admin: Admin, hub: HubClient, *, app: str) -> cli.Result:
    """Show an application (its id, or a unique prefix of it), verified locally, and whether
    its draft admission matches it."""
    app = await resolve_app(hub, app)
    info = await hub.admin_application(app)
    application = Application.decode(info.application, admin.genesis)
    data = application_record(app, info, application, admin.genesis)
    return data, _application_lines(data, application, info.reason)


async def sign_admission(
    admin: Admin, hub: HubClient, app: str, *, shown: str | None = None
) -> tuple[Application, ActionResult]:
    """Verify application ``app`` and the hub's draft admission against the pinned genesis,
    then sign the draft and hand the signature to the hub.

    ``shown``: the SHA-256 of the draft a page showed the admin; a draft that is not that
    one is refused (:class:`~globe_admin.session.ChangedSinceShown`) and nothing is signed.
    """
    info = await hub.admin_application(app)
    application = Application.decode(info.application, admin.genesis)
    if info.status != PENDING or info.draft is None:
        raise CommandError(f"application {app} is {cli.safe(info.status)}, not pending approval")
    check_admission_draft(application, info.draft, admin.genesis, now=int(time.time()))
    check_shown(info.draft, shown)
    return application, await sign_and_submit(admin, hub, info.draft)


@workflow_command(
    "approve",
    help="Verify the application and its draft admission against the pinned genesis, then "
    "sign the draft. The member is admitted when K distinct admins have signed.",
    short_help="sign the admission of an application",
)
@click.argument("app", metavar="APP", callback=app_id)
async def approve(admin: Admin, hub: HubClient, *, app: str) -> cli.Result:
    """Sign the draft admission of an application (its id, or a unique prefix of it), after
    checking it locally."""
    app = await resolve_app(hub, app)
    application, result = await sign_admission(admin, hub, app)
    data = {"application": app, "fingerprint": application.fingerprint(), **result.to_json()}
    return data, outcome(result, Action.ADMIT, application.authority)


@workflow_command("reject", short_help="reject an application")
@click.argument("app", metavar="APP", callback=app_id)
@click.option("--reason", "why", required=True, callback=reason, help="why (the applicant sees it)")
async def reject(_admin: Admin, hub: HubClient, *, app: str, why: str) -> cli.Result:
    """Reject an application (its id, or a unique prefix of it), with a reason the applicant
    can read."""
    app = await resolve_app(hub, app)
    result = await hub.admin_reject(app, why)
    return result.to_json(), [f"application {app} ({cli.safe(result.authority)}) rejected"]
