"""Users of a node over their life: ``globe-node users add|teams|rotate|remove|list``.

* A token removed or rotated while the daemon runs is refused on the very next
  request, on every route of :data:`globe_node.api.ROUTES`; a rotated user's new
  token works at once.
* ``last_used`` is null until the first authenticated request, then moves at most
  once a minute.
* Every change is in the audit chain, by ``cli:<OS user>``, and the chain verifies.
* Removing an assignee unassigns its cases; the last operator is never removed;
  unknown users and bad names are one-line refusals, exit status 1.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from globe_node import db
from globe_node.api import ROUTES
from globe_node.users import LAST_USED_STEP, authenticate
from tests.node.helpers import Ran, db_rows, problem, raw, refused
from tests.node.network import Net, RunningNode

ACTOR = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
NAME_RULE = "1-64 of letters, digits and . _ @ - (starting alphanumeric)"


def concrete(path: str) -> str:
    """A route pattern with its placeholders filled (the routes are refused before any
    parameter is looked at)."""
    path = path.replace("{n:[0-9]{1,3}}", "1")
    return re.sub(r"\{[a-z]+\}", lambda m: "BR-PF" if m.group() == "{authority}" else "0" * 32,
                  path)  # fmt: skip


async def cli(run: Callable[..., Ran], *args: str | Path) -> Ran:
    """``globe-node ARGS`` in a worker thread (the daemon serves on this loop)."""
    return await asyncio.to_thread(run, *args)


async def cli_json(run: Callable[..., Ran], *args: str | Path) -> Any:
    return (await cli(run, *args, "--json")).json()


async def refused_everywhere(rn: RunningNode, token: str) -> None:
    for route in ROUTES:
        answer = await raw(rn, route.method, concrete(route.path), token=token)
        assert problem(answer) == (401, "unauthenticated", "unknown token"), route.path


async def audit_rows(rn: RunningNode) -> list[tuple[str, str, str]]:
    async with rn.n.sessions() as s:
        rows = (await s.execute(select(db.AuditRow).order_by(db.AuditRow.seq))).scalars()
        return [(r.user, r.action, r.subject) for r in rows]


async def listed(run: Callable[..., Ran], directory: Path) -> dict[str, dict[str, Any]]:
    users = (await cli_json(run, "users", "list", "--dir", directory))["users"]
    return {u["name"]: u for u in users}


@pytest.mark.slow
async def test_removed_and_rotated_tokens_are_refused_on_every_route_at_once(
    net: Net, run: Callable[..., Ran]
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    d = fr.config.directory
    gone = await cli_json(run, "users", "add", "gone", "--role", "investigator", "--dir", d)
    rot = await cli_json(run, "users", "add", "rot", "--role", "supervisor", "--dir", d)
    for user in (gone, rot):
        assert (await raw(fr, "GET", "/api/inbox", token=user["token"]))[0] == 200

    ran = await cli(run, "users", "remove", "gone", "--dir", d)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == "user gone (investigator) removed; its token is refused from now on\n"
    await refused_everywhere(fr, gone["token"])

    rotated = await cli_json(run, "users", "rotate", "rot", "--dir", d)
    assert set(rotated) == {"name", "role", "token"}
    assert (rotated["name"], rotated["role"]) == ("rot", "supervisor")
    assert rotated["token"] != rot["token"]
    await refused_everywhere(fr, rot["token"])
    for path in ("/api/status", "/api/inbox", "/api/audit"):
        assert (await raw(fr, "GET", path, token=rotated["token"]))[0] == 200, path
    # only hashes are stored, the new one in place of the old
    assert db_rows(fr.config.db_path, "SELECT token_hash FROM users WHERE name = 'rot'") == [
        (hashlib.sha256(rotated["token"].encode()).digest(),)
    ]
    assert db_rows(fr.config.db_path, "SELECT name FROM users WHERE name = 'gone'") == []
    # the users' changes are in the chain, by the command's OS user; the chain verifies
    assert await audit_rows(fr) == [
        (ACTOR, "add-user", "gone (investigator)"),
        (ACTOR, "add-user", "rot (supervisor)"),
        (ACTOR, "remove-user", "gone (investigator)"),
        (ACTOR, "rotate-token", "rot (supervisor)"),
    ]
    status, audit = await raw(fr, "GET", "/api/audit", token=rotated["token"])
    assert (status, audit["verified"]) == (200, True)


@pytest.mark.slow
async def test_last_used_is_recorded_at_most_once_a_minute(
    net: Net, run: Callable[..., Ran]
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    d = fr.config.directory
    added = await cli_json(run, "users", "add", "bob", "--role", "investigator", "--dir", d)
    token = added["token"]
    bob = (await listed(run, d))["bob"]
    assert set(bob) == {"name", "role", "teams", "created", "last_used", "password"}
    assert (bob["last_used"], bob["password"]) == (None, False)
    before = int(time.time())
    assert (await raw(fr, "GET", "/api/status", token=token))[0] == 200
    first = (await listed(run, d))["bob"]["last_used"]
    assert before <= first <= int(time.time())
    # within the step nothing is written; from the step on, the time moves
    header = f"Bearer {token}"
    await authenticate(fr.n.store, header, now=first + LAST_USED_STEP - 1)
    assert (await listed(run, d))["bob"]["last_used"] == first
    await authenticate(fr.n.store, header, now=first + LAST_USED_STEP)
    assert (await listed(run, d))["bob"]["last_used"] == first + LAST_USED_STEP
    # a refused token records nothing
    await refused_everywhere(fr, "A" * 43)
    assert (await listed(run, d))["bob"]["last_used"] == first + LAST_USED_STEP
    ran = await cli(run, "users", "list", "--dir", d)
    line = next(x for x in ran.out.splitlines() if x.startswith("bob "))
    used = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first + LAST_USED_STEP))
    assert line.split()[3:5] == ["used", used]


@pytest.mark.slow
async def test_removing_an_assignee_unassigns_its_cases_and_audits_each(
    net: Net, run: Callable[..., Ran]
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    d = fr.config.directory
    await cli_json(run, "users", "add", "carol", "--role", "investigator", "--dir", d)
    for ref in ("FR-2026-2", "FR-2026-1"):
        status, _ = await fr.api("POST", "/api/cases", {"case": ref, "assignee": "carol"})
        assert status == 201
    status, _ = await fr.api("POST", "/api/cases", {"case": "FR-2026-3"})
    assert status == 201
    ran = await cli(run, "users", "remove", "carol", "--dir", d)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "user carol (investigator) removed; its token is refused from now on",
        "no longer assigned to carol (still in their teams): FR-2026-1, FR-2026-2",
    ]
    assert db_rows(fr.config.db_path, "SELECT ref, assignee FROM cases ORDER BY ref") == [
        ("FR-2026-1", None), ("FR-2026-2", None), ("FR-2026-3", None)
    ]  # fmt: skip
    assert (await audit_rows(fr))[-3:] == [
        (ACTOR, "remove-user", "carol (investigator)"),
        (ACTOR, "case-assign", "FR-2026-1 assignee (none): carol removed"),
        (ACTOR, "case-assign", "FR-2026-2 assignee (none): carol removed"),
    ]


def test_teams_rotate_and_list_on_the_node_directory(node: Path, run: Callable[..., Ran]) -> None:
    """Without a daemon: teams set exactly, the operator's rotation updates DIR/api.token,
    and every change is audited."""
    ran = run("users", "add", "dave", "--role", "investigator", "--team", "red", "--dir", node)
    assert ran.code == 0, ran.err
    assert run("users", "teams", "dave", "--team", "blue", "--team", "aml", "--dir", node,
               "--json").json() == {"name": "dave", "teams": ["aml", "blue"]}  # fmt: skip
    ran = run("users", "teams", "dave", "--dir", node)
    assert (ran.code, ran.out) == (0, "user dave: teams none (works the intake)\n")
    old = (node / "api.token").read_text().strip()
    ran = run("users", "rotate", "operator", "--dir", node)
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[:3] == [
        "token of user operator (operator) replaced; the old one is refused from now on",
        f"{node / 'api.token'} held the old token: it now holds the new one",
        "new token (shown only this once):",
    ]
    assert (node / "api.token").read_text() == lines[3] + "\n"
    assert lines[3] != old
    assert (node / "api.token").stat().st_mode & 0o777 == 0o600
    # another user's rotation leaves api.token alone
    dave = run("users", "rotate", "dave", "--dir", node, "--json").json()["token"]
    assert (node / "api.token").read_text() == lines[3] + "\n"
    assert db_rows(node / "node.db", "SELECT token_hash FROM users WHERE name = 'dave'") == [
        (hashlib.sha256(dave.encode()).digest(),)
    ]
    users = run("users", "list", "--dir", node, "--json").json()["users"]
    assert [(u["name"], u["role"], u["teams"], u["last_used"]) for u in users] == [
        ("dave", "investigator", [], None), ("operator", "operator", [], None)
    ]  # fmt: skip
    assert db_rows(node / "node.db", "SELECT user, action, subject FROM audit ORDER BY seq") == [
        (ACTOR, "add-user", "dave (investigator) teams red"),
        (ACTOR, "set-teams", "dave: aml blue"),
        (ACTOR, "set-teams", "dave: (none)"),
        (ACTOR, "rotate-token", "operator (operator)"),
        (ACTOR, "rotate-token", "dave (investigator)"),
    ]


def test_refusals_are_one_line(node: Path, run: Callable[..., Ran]) -> None:
    last = (
        "user operator is the node's last operator: add another operator first"
        " (globe-node users add NAME --role operator)"
    )
    refused(run("users", "remove", "operator", "--dir", node), last)
    for command in ("remove", "rotate", "teams"):
        refused(run("users", command, "bob", "--dir", node), "no user 'bob'")
        refused(
            run("users", command, "no spaces", "--dir", node),
            f"user name 'no spaces': {NAME_RULE}",
        )
    refused(
        run("users", "teams", "operator", "--team", "a b", "--dir", node),
        "a team name is 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)",
    )
    # with a second operator either may go, but not both
    assert run("users", "add", "ops2", "--role", "operator", "--dir", node).code == 0
    ran = run("users", "remove", "operator", "--dir", node, "--json")
    assert ran.json() == {"name": "operator", "role": "operator", "unassigned": []}
    refused(run("users", "remove", "ops2", "--dir", node), last.replace("operator is", "ops2 is"))
    assert db_rows(node / "node.db", "SELECT name, role FROM users") == [("ops2", "operator")]
    # refusals wrote nothing to the audit chain
    assert db_rows(node / "node.db", "SELECT action, subject FROM audit ORDER BY seq") == [
        ("add-user", "ops2 (operator)"), ("remove-user", "operator (operator)")
    ]  # fmt: skip
