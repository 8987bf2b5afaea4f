"""The local API's routes for those who run the node, on a live network: ``GET
/api/accounts``, ``GET /api/keys`` and ``GET /api/backups``.

* Operators see every user with its role, teams, creation, last use and whether a web
  UI password is set, and never a token or a hash; investigators keep ``GET /api/users``
  as it was (names, roles, teams), and neither side reaches the other's list.
* The keys answer is the node's own: the fingerprint the directory certifies, its key
  ids, the current signed prekey; through a key update it shows the next keys asked
  for, then certified (the current ones no longer are), then the switch.
* A backup made while the daemon works is listed with the archive's size and SHA-256,
  and the database it was made from, and the one in the archive, are intact.
* Each route refuses investigators and supervisors (403) and a missing token (401).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from globe_node.backup import restore_backup
from globe_node.users import set_password
from protocol.errors import PROBLEM_BASE
from tests.node.helpers import Ran, db_rows, delivered, info
from tests.node.network import Net, RunningNode, add_user
from tests.node.test_key_update import approve, keys_update
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

ACTOR = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test's password
OPERATOR_ROUTES = ("/api/accounts", "/api/keys", "/api/backups")


async def unauthenticated(rn: RunningNode, path: str) -> tuple[int, str]:
    """``GET path`` without a token: (status, problem slug)."""
    url = f"http://127.0.0.1:{rn.config.api_port}{path}"
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        body = orjson.loads(await r.read())
        return r.status, body["type"].removeprefix(PROBLEM_BASE)


async def refused(rn: RunningNode, path: str, token: str) -> tuple[int, str, str]:
    status, body = await rn.api("GET", path, token=token)
    return status, body["type"].removeprefix(PROBLEM_BASE), body["detail"]


async def test_only_operators_reach_the_routes_for_running_the_node(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    sup = await add_user(fr.n, "sup", "supervisor")
    ops = await add_user(fr.n, "ops", "operator")
    for path in OPERATOR_ROUTES:
        assert await unauthenticated(fr, path) == (401, "unauthenticated")
        assert await refused(fr, path, fr.token) == (
            403, "forbidden", "the investigator role may not do this"
        )  # fmt: skip
        assert await refused(fr, path, sup) == (
            403, "forbidden", "the supervisor role may not do this"
        )  # fmt: skip
        assert (await fr.api("GET", path, token=ops))[0] == 200
    # the colleagues' list stays the investigators' (to assign cases), not the operators'
    assert await refused(fr, "/api/users", ops) == (
        403, "forbidden", "the operator role may not do this"
    )  # fmt: skip


# --- users -----------------------------------------------------------------------------------


async def test_operators_review_every_user_and_nothing_secret(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    ops = await add_user(fr.n, "ops", "operator")
    await add_user(fr.n, "bob", "investigator", "aml", "fraud")
    await set_password(fr.n.sessions, "bob", PASSWORD, now=fr.n.now())
    before = int(time.time())
    assert (await fr.api("GET", "/api/status"))[0] == 200  # alice's first use
    status, body = await fr.api("GET", "/api/accounts", token=ops)
    assert status == 200
    rows = db_rows(
        fr.config.db_path,
        "SELECT name, role, created, last_used, password_hash IS NOT NULL FROM users ORDER BY name",
    )
    teams = {"bob": ["aml", "fraud"]}
    assert body == {
        "users": [
            {"name": name, "role": role, "teams": teams.get(name, []), "created": created,
             "last_used": used, "password": bool(password)}
            for name, role, created, used, password in rows
        ]
    }  # fmt: skip
    users = {u["name"]: u for u in body["users"]}
    assert sorted(users) == ["alice", "bob", "ops"]
    assert (users["bob"]["password"], users["alice"]["password"]) == (True, False)
    assert users["bob"]["last_used"] is None
    assert before <= users["alice"]["last_used"] <= int(time.time())
    raw = orjson.dumps(body)
    for secret in (fr.token.encode(), ops.encode(), b"$argon2id$", b"token"):
        assert secret not in raw
    # investigators keep their answer: names, roles and teams only
    status, colleagues = await fr.api("GET", "/api/users")
    assert status == 200
    assert colleagues["users"] == [
        {k: u[k] for k in ("name", "role", "teams", "created")} for u in body["users"]
    ]


# --- keys ------------------------------------------------------------------------------------


async def keys_of(rn: RunningNode, token: str) -> dict[str, Any]:
    status, body = await rn.api("GET", "/api/keys", token=token)
    assert status == 200, body
    return dict(body)


def current_prekey(rn: RunningNode) -> dict[str, Any]:
    """The stored prekey the node gives senders now: the valid one that ends last (the one
    stored last of two ending in the same second)."""
    now = int(time.time())
    rows = db_rows(
        rn.config.db_path,
        "SELECT key_id, published, not_before, not_after, signed FROM prekeys ORDER BY rowid",
    )
    valid = [r[:4] for r in rows if r[4] and r[2] <= now < r[3]]
    kid, published, start, end = max(reversed(valid), key=lambda r: r[3])
    return {"id": kid, "published": bool(published), "valid_from": start, "expires": end}


async def test_the_keys_answer_follows_a_key_update_to_the_switch(net: Net) -> None:
    # The sync loop waits an hour: the test moves the node through the update itself.
    fr = await net.member("FR-PNF", "Parquet national financier", sync_interval=3600.0)
    ops = await add_user(fr.n, "ops", "operator")
    old = fr.n.keys
    certificate = fr.n.directory.state.members[fr.me].certificate
    before = await keys_of(fr, ops)
    assert before == {
        "authority": "FR-PNF", "fingerprint": certificate.fingerprint(),
        "identity_key": str(old.identity.key_id), "transport_key": str(old.transport.key_id),
        "ka_key": str(old.ka.key_id), "certified": True, "prekey": current_prekey(fr),
        "update": None,
    }  # fmt: skip
    assert before["fingerprint"] == old.fingerprint(fr.me)
    assert before["prekey"]["published"] is True

    asked = (await keys_update(fr, "--keep", "transport")).json()
    await fr.n.rotation.check()  # takes up the next keys (the loop would, within the hour)
    nxt = fr.n.keys.next
    assert nxt is not None
    requested = await keys_of(fr, ops)
    assert requested == {
        **before,
        "update": {
            "requested": nxt.created, "state": "requested", "fingerprint": asked["fingerprint"],
            "identity_key": str(nxt.identity.key_id), "transport_key": str(old.transport.key_id),
            "ka_key": str(nxt.ka.key_id),
        },
    }  # fmt: skip

    await approve(net, asked["id"])
    await fr.n.directory.sync()
    certified = (await fr.n.rotation.view()).to_json()  # before the node looks again
    assert (certified["certified"], certified["update"]["state"]) == (False, "certified")
    assert certified["fingerprint"] == before["fingerprint"]

    assert await fr.n.rotation.check()  # the switch
    after = await keys_of(fr, ops)
    assert after["fingerprint"] == asked["fingerprint"]
    assert (after["identity_key"], after["ka_key"], after["certified"], after["update"]) == (
        str(nxt.identity.key_id), str(nxt.ka.key_id), True, None,
    )  # fmt: skip
    # the prekey the new identity key signed at the switch replaces the old one
    assert after["prekey"] == current_prekey(fr)
    assert after["prekey"]["id"] != before["prekey"]["id"]


# --- backups ---------------------------------------------------------------------------------


async def test_a_backup_made_while_the_daemon_works_is_listed_and_harms_nothing(
    net: Net, run: Callable[..., Ran], tmp_path: Path
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ops = await add_user(fr.n, "ops", "operator")
    assert await fr.api("GET", "/api/backups", token=ops) == (
        200, {"backups": [], "newest_age_s": None, "stale_after_s": 604800, "stale": True},
    )  # fmt: skip

    async def keep_sending() -> list[str]:
        return [str(await fr.n.send([br.me], info(f"during the backup {i}"))) for i in range(8)]

    archive = tmp_path / "fr-pnf-2026-12-01.tar.gz"
    sending = asyncio.create_task(keep_sending())
    ran = await asyncio.to_thread(run, "backup", "--dir", fr.config.directory, "--out",
                                  archive, "--json")  # fmt: skip
    sent = await sending
    made = ran.json()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    status, listed = await fr.api("GET", "/api/backups", token=ops)
    assert status == 200
    assert listed["backups"] == [
        {"created": made["created"], "file": "fr-pnf-2026-12-01.tar.gz",
         "size": archive.stat().st_size, "sha256": digest, "authority": "FR-PNF"}
    ]  # fmt: skip
    assert 0 <= listed["newest_age_s"] <= int(time.time()) - made["created"]
    assert listed["stale"] is False
    # the daemon went on: everything sent during the backup is committed and delivered,
    # the database and its copy in the archive are intact, the audit chain verifies

    async def all_delivered() -> bool:
        return all([await delivered(fr, mid, br) for mid in sent])

    await eventually(all_delivered, what="every message sent during the backup delivered")
    assert db_rows(fr.config.db_path, "PRAGMA integrity_check") == [("ok",)]
    restored = restore_backup(archive, tmp_path / "restored")
    snapshot = Path(restored["directory"]) / "node.db"
    assert db_rows(snapshot, "PRAGMA integrity_check") == [("ok",)]
    status, audit = await fr.api("GET", "/api/audit", token=ops)
    assert (status, audit["verified"]) == (200, True)
    assert [(e["user"], e["subject"]) for e in audit["entries"] if e["action"] == "backup"] == [
        (ACTOR, f"{archive.name} ({archive.stat().st_size} bytes, sha256 {digest})")
    ]
    conn = sqlite3.connect(snapshot)
    try:
        assert conn.execute("SELECT count(*) FROM meta WHERE key = 'backups'").fetchone() == (0,)
    finally:
        conn.close()
