"""The console's signing forms: approve an application, co-sign a suspension,
reinstatement or revocation, reject an application.

Each form carries the admin's passphrase (unless it is pre-supplied) and the SHA-256 of
the exact action its page showed.  The handler opens the admin key for this one piece of
work (:meth:`~globe_admin.console.workstation.Workstation.with_key`), and with it the
command line's own code reads the item again from the hub, verifies it against the
pinned genesis (and the log verified from it), refuses anything but the action shown,
signs, and submits (:func:`globe_admin.applications.sign_admission`,
:func:`globe_admin.members.cosign_proposal`); then it reads the hub again for the next
page, and lets the key go.  A wrong passphrase is refused before anything is sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from globe_admin.applications import sign_admission
from globe_admin.console.app import PREFIX, Console, console_of
from globe_admin.console.pages import field
from globe_admin.console.reading import Reading, read_hub
from globe_admin.members import cosign_proposal, read_log, signers
from globe_admin.session import Admin, ChangedSinceShown, check_reason
from globe_io.hubapi import ActionResult, ApplicationState
from globe_io.hubclient import HubClient
from protocol.errors import GlobeError

__all__ = ["SIGNING"]

log = logging.getLogger("globe.admin.console")

_DIGEST: Final = re.compile(r"[0-9a-f]{64}\Z")


def _shown(form: Mapping[str, object]) -> str:
    """The SHA-256 of the action the form's page showed (the form is refused without it)."""
    shown = field(form, "sha256")
    if shown is None or not _DIGEST.match(shown):
        raise ChangedSinceShown("the form does not name the action its page showed: reload it")
    return shown


async def _reread(console: Console, hub: HubClient, also: str | None) -> Reading | None:
    """A new reading after a signature or a rejection (the key is still open); ``None`` if
    the hub did not answer it (what was done stays done; the next page shows the rest)."""
    try:
        return await read_hub(hub, now=console.clock(), also=also)
    except GlobeError as exc:
        log.warning("reading the hub after a signature failed: %s", exc.detail)
        return None


async def _outcome(request: web.Request, console: Console, reading: Reading | None,
                   result: ActionResult, **context: Any) -> web.Response:  # fmt: skip
    """The page after a signature, saying what the console verified itself: the log entry
    the quorum appended (the log verified from the genesis), or who has signed so far
    (the signatures of the open proposal, verified)."""
    if reading is not None:
        console.reading = reading
    ws = console.workstation
    entry: dict[str, Any] | None = None
    names: list[str] | None = None
    if result.appended and result.seq is not None:
        try:
            async with ws.public_hub() as hub:
                _state, rows, _cp, _rel = await read_log(ws.genesis, hub)
        except GlobeError as exc:  # the signature is done: say what could not be checked
            log.warning("reading the log after a signature failed: %s", exc.detail)
            rows = []
        found = rows[result.seq - 1] if 0 < result.seq <= len(rows) else None
        if found is not None and (found["action"], found["authority"]) == (
            result.action, result.authority,
        ):  # fmt: skip
            entry = found
    elif reading is not None:
        names = next((signers(ws.genesis, p.signed) for p in reading.proposals
                      if p.proposal == result.proposal), None)  # fmt: skip
    count = len(names) if names is not None else result.signatures
    needed = max(ws.genesis.threshold - count, 0)
    return console.page(request, "outcome.html", result=result, entry=entry, names=names,
                        count=count, needed=needed, **context)  # fmt: skip


async def approve(request: web.Request) -> web.StreamResponse:
    """Sign the admission of an application, exactly as its page showed it."""
    console = console_of(request)
    app = request.match_info["id"]
    form = await request.post()
    shown = _shown(form)

    async def work(admin: Admin, hub: HubClient) -> tuple[str, ActionResult, Reading | None]:
        application, result = await sign_admission(admin, hub, app, shown=shown)
        return str(application.authority), result, await _reread(console, hub, app)

    authority, result, reading = await console.workstation.with_key(field(form, "passphrase"), work)
    return await _outcome(request, console, reading, result, authority=authority,
                          action="admit", back=f"{PREFIX}/applications/{app}")  # fmt: skip


async def cosign(request: web.Request) -> web.StreamResponse:
    """Add this admin's signature to an open suspension, reinstatement or revocation,
    exactly as the proposals page showed it."""
    console = console_of(request)
    proposal = request.match_info["id"]
    form = await request.post()
    shown = _shown(form)

    async def work(admin: Admin, hub: HubClient) -> tuple[str, str, ActionResult, Reading | None]:
        action, result = await cosign_proposal(admin, hub, proposal, shown=shown)
        reread = await _reread(console, hub, None)
        return str(action.authority), action.action.value, result, reread

    authority, action, result, reading = await console.workstation.with_key(
        field(form, "passphrase"), work
    )
    return await _outcome(request, console, reading, result, authority=authority,
                          action=action, back=f"{PREFIX}/proposals")  # fmt: skip


async def reject(request: web.Request) -> web.StreamResponse:
    """Reject an application, with a reason the applicant reads (no quorum is needed)."""
    console = console_of(request)
    app = request.match_info["id"]
    form = await request.post()
    why = check_reason(field(form, "reason") or "", "the reason")

    async def work(_admin: Admin, hub: HubClient) -> tuple[ApplicationState, Reading | None]:
        return await hub.admin_reject(app, why), await _reread(console, hub, app)

    state, reading = await console.workstation.with_key(field(form, "passphrase"), work)
    if reading is not None:
        console.reading = reading
    return console.page(request, "rejected.html", rejected=state, reason=why,
                        back=f"{PREFIX}/applications/{app}")  # fmt: skip


#: (method, path, handler, name) of the signing forms, under the console's prefix.
SIGNING: Final = (
    ("POST", "/applications/{id:[0-9a-f]{32}}/approve", approve, "approve"),
    ("POST", "/applications/{id:[0-9a-f]{32}}/reject", reject, "reject"),
    ("POST", "/proposals/{id:[0-9a-f]{64}}/sign", cosign, "cosign"),
)
