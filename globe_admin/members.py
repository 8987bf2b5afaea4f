"""Members and the log: ``suspend``, ``reinstate``, ``revoke``, ``proposals``, ``log`` and
``audit`` (docs/OPERATIONS.md §6).

The whole log is verified from the pinned genesis before a suspension, reinstatement or
revocation names its ``prev``; an open proposal for the same action is co-signed rather
than a second one made.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import orjson

from globe_admin.session import (
    Admin,
    admin_name,
    authority_id,
    check_shown,
    outcome,
    reason,
    sign_and_submit,
    workflow_command,
)
from globe_io import cli
from globe_io.errors import CommandError, NotFound
from globe_io.hubapi import OPEN, PROPOSAL_STATES, ActionResult, AuditRecord
from globe_io.hubclient import HubClient
from protocol import labels
from protocol.directory import TRANSITIONS, DirectoryState, HeadRelation, Member, MemberStatus
from protocol.errors import GlobeError, RollbackDetected
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId
from protocol.membership import Action, Checkpoint, MembershipAction, make_action
from protocol.profile import ProfileEntry
from protocol.signed import SignedObject, verify_quorum

__all__ = [
    "MEMBER_ACTIONS",
    "PROPOSAL_STATES",
    "audit",
    "check_member_proposal",
    "cosign_proposal",
    "log",
    "proposals",
    "read_log",
    "signers",
    "signing_admins",
    "verified_log",
]

_AUDIT_PAGE = 1000


def signing_admins(genesis: Genesis, signed: SignedObject) -> frozenset[KeyId]:
    """The admin keys of ``genesis`` whose signatures on the membership action ``signed``
    verify (an admin counts once; a signature that does not verify, none)."""
    return verify_quorum(signed, labels.MEMBERSHIP_ACTION, genesis.admin_keys, 0)


def signers(genesis: Genesis, signed: SignedObject) -> list[str]:
    """The names of the admins whose signatures on ``signed`` verify (:func:`signing_admins`)."""
    return sorted(admin_name(genesis, k) for k in signing_admins(genesis, signed))


async def read_log(
    genesis: Genesis, hub: HubClient
) -> tuple[DirectoryState, list[dict[str, Any]], Checkpoint, HeadRelation]:
    """Fetch the checkpoint and the whole log; verify both from the pinned ``genesis``.

    The state, one row per entry (``seq``, ``time``, ``action``, ``authority``, the names
    of the ``signers``, ``reason``, ``hash``), the hub's checkpoint and how it relates to
    the log.  The log is public: no admin key is needed."""
    checkpoint = Checkpoint.decode(await hub.checkpoint(), genesis)
    state = DirectoryState(genesis)  # what verify_log does, keeping each entry
    rows: list[dict[str, Any]] = []
    for raw in await hub.log_entries():
        entry = state.apply(raw)
        if isinstance(entry, ProfileEntry):  # signed by the member itself (PROTOCOL.md §6.7)
            name, authority = "profile", str(entry.profile.authority)
            names, why = [authority], None
        else:
            action = entry.action
            name, authority, why = action.action.value, str(action.authority), action.reason
            names = signers(genesis, action.signed)
        rows.append(
            {
                "seq": entry.seq,
                "time": entry.time,
                "action": name,
                "authority": authority,
                "signers": names,
                "reason": why,
                "hash": entry.hash.hex(),
            }
        )
    relation = state.check_checkpoint(checkpoint)
    if relation is HeadRelation.PEER_AHEAD:
        raise RollbackDetected(
            f"the hub's checkpoint names {checkpoint.seq} entries but it served {state.seq}"
        )
    return state, rows, checkpoint, relation


async def verified_log(
    admin: Admin, hub: HubClient
) -> tuple[DirectoryState, list[dict[str, Any]], Checkpoint, HeadRelation]:
    """:func:`read_log` from ``admin``'s pinned genesis."""
    return await read_log(admin.genesis, hub)


# --- suspend, reinstate, revoke -----------------------------------------------------------------


async def _open_proposal(
    admin: Admin, hub: HubClient, action: Action, authority: AuthorityId, prev: bytes
) -> tuple[SignedObject, MembershipAction] | None:
    """The open proposal of this very action (same ``prev``) with the most signatures."""
    chosen: tuple[SignedObject, MembershipAction] | None = None
    best = -1
    for p in (await hub.admin_proposals(OPEN)).proposals:
        if p.authority != str(authority) or p.action != action.value:
            continue
        signed = p.signed
        try:
            proposed = MembershipAction.from_signed(signed, admin.genesis)
        except GlobeError:
            continue
        if proposed.action is action and proposed.authority == authority and proposed.prev == prev:
            count = len(signing_admins(admin.genesis, signed))
            if count > best:
                chosen, best = (signed, proposed), count
    return chosen


def _allowed(state: DirectoryState, action: Action, authority: AuthorityId) -> Member:
    """The member ``action`` applies to, if the verified log allows that action on it now."""
    member = state.member(authority)
    if (member.status, action) not in TRANSITIONS:
        raise CommandError(f"cannot {action.value} {authority}: it is {member.status.value}")
    return member


def check_member_proposal(state: DirectoryState, proposed: MembershipAction) -> Member:
    """Refuse to co-sign a suspension, reinstatement or revocation that the verified log
    ``state`` does not allow now: another action, a transition the member's status does
    not allow, or a ``prev`` that is not the member's latest action (it could never be
    appended).  The member it applies to."""
    if proposed.action not in (Action.SUSPEND, Action.REINSTATE, Action.REVOKE):
        raise CommandError(
            f"an action {proposed.action.value} is signed with its own command (approve, "
            "approve-keys, amend), not co-signed as a proposal"
        )
    member = _allowed(state, proposed.action, proposed.authority)
    if proposed.prev != member.last_action:
        raise CommandError(
            f"the proposal does not follow the latest action on {proposed.authority} in the "
            "verified log: it can never be appended"
        )
    return member


async def cosign_proposal(
    admin: Admin, hub: HubClient, proposal: str, *, shown: str | None = None
) -> tuple[MembershipAction, ActionResult]:
    """Add ``admin``'s signature to the open suspension, reinstatement or revocation
    ``proposal`` (its id), after checking it against the whole log verified from the pinned
    genesis (:func:`check_member_proposal`); ``shown``, the SHA-256 of the action a page
    showed (:func:`~globe_admin.session.check_shown`)."""
    state, _rows, _cp, _rel = await verified_log(admin, hub)
    found = [p for p in (await hub.admin_proposals(OPEN)).proposals if p.proposal == proposal]
    if not found:
        raise NotFound(f"no open proposal {proposal}")
    proposed = MembershipAction.from_signed(found[0].signed, admin.genesis)
    check_member_proposal(state, proposed)
    check_shown(proposed.signed.payload, shown)
    return proposed, await sign_and_submit(admin, hub, proposed.signed.payload)


async def _member_action(
    admin: Admin, hub: HubClient, action: Action, authority: AuthorityId, why: str
) -> cli.Result:
    """Sign ``action`` on ``authority``: co-sign the open proposal, or propose it."""
    state, _rows, _cp, _rel = await verified_log(admin, hub)
    member = _allowed(state, action, authority)
    prev = member.last_action
    chosen = await _open_proposal(admin, hub, action, authority, prev)
    if chosen is not None:
        proposed = chosen[1]
        result = await sign_and_submit(admin, hub, chosen[0].payload)
    else:
        proposed = make_action(
            genesis=admin.genesis,
            action=action,
            authority=authority,
            prev=prev,
            issued=int(time.time()),
            reason=why,
            signers=[admin.key],
        )
        result = await hub.admin_submit_action(proposed.signed.encode())
    data = {
        **result.to_json(),
        "co_signed": chosen is not None,
        "reason": proposed.reason,
        "prev": prev.hex(),
    }
    lines = []
    if chosen is not None:
        lines.append(
            f"co-signed the open {action.value} proposal for {authority} "
            f"(reason: {proposed.reason})"
        )
    return data, lines + outcome(result, action, authority)


def _member_command(action: Action) -> cli.GlobeCommand:
    @workflow_command(
        action.value,
        help=f"Verify the whole log from the pinned genesis, then sign a {action.value} action "
        "on AUTHORITY (or co-sign the open proposal for the same action).",
        short_help=f"{action.value} a member (admin quorum)",
    )
    @click.argument("authority", metavar="AUTHORITY", callback=authority_id)
    @click.option(
        "--reason", "why", required=True, callback=reason, help="why (recorded in the log)"
    )
    async def command(
        admin: Admin, hub: HubClient, *, authority: AuthorityId, why: str
    ) -> cli.Result:
        return await _member_action(admin, hub, action, authority, why)

    return command


#: ``suspend``, ``reinstate`` and ``revoke``: one command each, the same rule.
MEMBER_ACTIONS = tuple(
    _member_command(a) for a in (Action.SUSPEND, Action.REINSTATE, Action.REVOKE)
)


# --- proposals, log, audit ----------------------------------------------------------------------


@workflow_command("proposals", short_help="list actions collecting signatures")
@click.option("--status", type=click.Choice(PROPOSAL_STATES), help="only proposals in this state")
async def proposals(admin: Admin, hub: HubClient, *, status: str | None) -> cli.Result:
    """List membership actions collecting signatures."""
    found = await hub.admin_proposals(status)
    lines = [
        f"{cli.safe(p.proposal)[:16]}  {cli.safe(p.action):<11} {cli.safe(p.authority):<12} "
        f"{cli.safe(p.status):<10} {len(p.signed.signatures)} of {admin.genesis.threshold}  "
        f"{cli.iso(p.created)}" + (f"  entry {p.seq}" if p.seq is not None else "")
        for p in found.proposals
    ]
    return found.to_json(), lines or ["no proposals"]


@workflow_command("log", short_help="verify and print the membership log")
async def log(admin: Admin, hub: HubClient) -> cli.Result:
    """Fetch the whole membership log, verify it and the hub's checkpoint, and print it."""
    state, rows, cp, relation = await verified_log(admin, hub)
    counts = {s.value: 0 for s in MemberStatus}
    for m in state.members.values():
        counts[m.status.value] += 1
    data = {
        "network_id": str(admin.genesis.network_id),
        "genesis_fingerprint": admin.genesis.fingerprint(),
        "entries": rows,
        "head": {"seq": state.seq, "hash": state.head.hex(), "time": state.time},
        "checkpoint": {"seq": cp.seq, "head": cp.head.hex(), "time": cp.time},
        "members": counts,
    }
    lines = [
        f"{r['seq']:>6}  {cli.iso(r['time'])}  {r['action']:<11} {r['authority']:<12} "
        f"signed by {', '.join(r['signers'])}"
        + (f"  ({r['reason']})" if r["reason"] is not None else "")
        for r in rows
    ]
    lines.append(
        f"head: entry {state.seq}, hash {state.head.hex()}; verified from genesis "
        f"{admin.genesis.network_id}; hub checkpoint at entry {cp.seq} "
        f"({cli.iso(cp.time)}) {'matches' if relation is HeadRelation.SAME else 'is a prefix'}"
    )
    return data, lines


def _export(admin: Admin, records: list[dict[str, Any]], out: Path) -> str:
    """Write the audit records as a JSON export (mode 0600); its absolute path."""
    export = {
        "type": "globe-hub-audit-export",
        "network_id": str(admin.genesis.network_id),
        "genesis_fingerprint": admin.genesis.fingerprint(),
        "hub_url": admin.hub_url,
        "exported": int(time.time()),
        "exported_by": admin.name,
        "records": records,
    }
    body = orjson.dumps(export, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    cli.write_file(out, body + b"\n", mode=0o600, overwrite=True)
    return str(out.absolute())


@workflow_command("audit", short_help="print the hub's audit trail")
@click.option("--since", type=cli.COUNT, default=0, metavar="N", help="records after id N")
@click.option(
    "--out",
    type=cli.PATH,
    metavar="FILE",
    help="also write a JSON export to FILE",
)
async def audit(admin: Admin, hub: HubClient, *, since: int, out: Path | None) -> cli.Result:
    """Print the hub's audit trail; --out also writes it as a JSON export."""
    records: list[AuditRecord] = []
    while True:
        batch = (await hub.admin_audit(since, _AUDIT_PAGE)).records
        records.extend(batch)
        if len(batch) < _AUDIT_PAGE or batch[-1].id <= since:
            break
        since = batch[-1].id
    lines = [
        f"{r.id:>6}  {cli.iso(r.time):<20}  {cli.safe(r.actor):<16} {cli.safe(r.action):<20} "
        f"{cli.safe(r.subject):<12} "
        f"{cli.safe(orjson.dumps(r.detail, option=orjson.OPT_SORT_KEYS).decode())}"
        for r in records
    ]
    data: dict[str, Any] = {"records": [r.to_json() for r in records]}
    if out is not None:
        data["out"] = _export(admin, data["records"], out)
        lines.append(f"{len(records)} records written to {out}")
    return data, lines or ["no audit records"]
