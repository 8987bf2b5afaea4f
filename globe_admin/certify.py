"""``amend``: change what the admins certify about a member, by quorum (docs/OPERATIONS.md §6).

The certified fields of a directory entry — name, competences (``kinds``), working
languages and endpoint — change only through a quorum-signed action (PROTOCOL.md §6.7).
The action is an ``update-keys`` that keeps every key: a new certificate with a new
serial, valid from now until the current certificate's end, naming the changed fields.
The whole log is verified from the pinned genesis first; an open proposal that
certifies exactly the same entry is co-signed rather than a second one made.
"""

from __future__ import annotations

import secrets
import time

import click

from globe_admin.members import verified_log
from globe_admin.session import Admin, authority_id, reason, workflow_command
from globe_io import cli
from globe_io.errors import CommandError
from globe_io.hubapi import OPEN
from globe_io.hubclient import HubClient
from protocol import labels
from protocol.directory import TRANSITIONS
from protocol.errors import GlobeError
from protocol.genesis import check_url
from protocol.ids import AuthorityId
from protocol.membership import AUTHORITY_KINDS, Action, Certificate, MembershipAction, make_action
from protocol.signed import SignedObject

__all__ = ["amend"]


def _list(text: str | None, allowed: frozenset[str] | None, what: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    values = sorted({v.strip() for v in text.split(",") if v.strip()})
    if not values or (allowed is not None and not set(values) <= allowed):
        hint = f" from {', '.join(sorted(allowed))}" if allowed is not None else ""
        raise CommandError(f"--{what}: a comma-separated list{hint}")
    return tuple(values)


def _certified_alike(a: Certificate, b: Certificate) -> bool:
    """Whether two certificates certify the same entry (serial and validity aside)."""
    return (a.name, a.kinds, a.languages, a.endpoint, a.fingerprint()) == (
        b.name, b.kinds, b.languages, b.endpoint, b.fingerprint(),
    )  # fmt: skip


async def _open_amendment(
    admin: Admin, hub: HubClient, authority: AuthorityId, prev: bytes, wanted: Certificate
) -> SignedObject | None:
    """An open ``update-keys`` proposal after ``prev`` that certifies ``wanted``'s entry."""
    for p in (await hub.admin_proposals(OPEN)).proposals:
        if p.authority != str(authority) or p.action != Action.UPDATE_KEYS.value:
            continue
        try:
            proposed = MembershipAction.from_signed(p.signed, admin.genesis)
        except GlobeError:
            continue
        cert = proposed.certificate
        if proposed.prev == prev and cert is not None and _certified_alike(cert, wanted):
            return p.signed
    return None


@workflow_command(
    "amend",
    help="Verify the whole log from the pinned genesis, then sign a new certificate for "
    "AUTHORITY with the same keys and the fields given changed (or co-sign the open proposal "
    "for the same change).  Competences, languages, name and endpoint are certified: they "
    "change only with the admins' quorum.",
    short_help="change a member's certified entry (admin quorum)",
)
@click.argument("authority", metavar="AUTHORITY", callback=authority_id)
@click.option("--kinds", metavar="K,K", help=f"competences: {', '.join(sorted(AUTHORITY_KINDS))}")
@click.option("--languages", metavar="L,L", help="working languages (ISO 639-1)")
@click.option("--name", metavar="NAME", help="the authority's name")
@click.option("--endpoint", metavar="URL", help="the direct endpoint; '' removes it")
@click.option("--reason", "why", required=True, callback=reason, help="why (recorded in the log)")
async def amend(
    admin: Admin,
    hub: HubClient,
    *,
    authority: AuthorityId,
    kinds: str | None,
    languages: str | None,
    name: str | None,
    endpoint: str | None,
    why: str,
) -> cli.Result:
    """Sign an amendment of a member's certified entry (admin quorum)."""
    state, _rows, _cp, _rel = await verified_log(admin, hub)
    member = state.member(authority)
    if (member.status, Action.UPDATE_KEYS) not in TRANSITIONS:
        raise CommandError(f"cannot amend {authority}: it is {member.status.value}")
    cur = member.certificate
    now = int(time.time())
    if cur.not_after <= now:
        raise CommandError(f"the certificate of {authority} has expired: admit it anew")
    new_endpoint = cur.endpoint
    if endpoint is not None:
        new_endpoint = check_url(endpoint, "--endpoint") if endpoint else None
    wanted = Certificate(
        authority, secrets.token_hex(16), cur.name if name is None else name,
        _list(kinds, AUTHORITY_KINDS, "kinds") or cur.kinds,
        _list(languages, None, "languages") or cur.languages, new_endpoint, cur.identity_key,
        cur.transport_key, cur.ka_key_raw, now, cur.not_after, None,
    )  # fmt: skip
    if _certified_alike(wanted, cur):
        raise CommandError(f"the certificate of {authority} already says this: nothing to amend")
    prev = member.last_action
    chosen = await _open_amendment(admin, hub, authority, prev, wanted)
    if chosen is not None:
        container = SignedObject(chosen.payload, ()).with_signature(
            labels.MEMBERSHIP_ACTION, admin.key
        )
    else:
        container = make_action(
            genesis=admin.genesis, action=Action.UPDATE_KEYS, authority=authority, prev=prev,
            issued=now, reason=why, certificate=wanted, signers=[admin.key],
        ).signed  # fmt: skip
    result = await hub.admin_submit_action(container.encode())
    data = {**result.to_json(), "co_signed": chosen is not None, "prev": prev.hex()}
    lines = [f"co-signed the open amendment of {authority}"] if chosen is not None else []
    if result.appended:
        lines.append(f"{authority} amended at log entry {result.seq}")
    else:
        n, k = result.signatures, result.threshold
        lines.append(
            f"{authority}: amendment signature {n} of {k}; {k - n} more admin(s) must sign"
        )
    return data, lines
