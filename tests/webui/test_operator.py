"""The operator's pages over raw HTTP against a real node: an operator signs in and starts
on the node's status; the investigator's pages refuse it, and the operator's pages refuse
investigators and supervisors, with the API's own refusal as a page; each form (sync,
add an operator, publish a prekey) goes through the local API's route, with its token
checked; the users (last use, password set, never a secret), the node's keys, the
backups recorded and the warning when the newest is too old or there is none; the audit
page; the names ``[webui] allowed_hosts`` adds to the Host check.
One browser test: an operator signs in with a password and reads its pages (axe-checked).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path

import pytest

from globe_io.webui.i18n import Formats
from globe_node.backup import STALE_AFTER, BackupRecord, create_backup, remember
from globe_node.config import WebUiSettings
from globe_node.users import set_password
from tests.node.network import Net, RunningNode
from tests.webui.browser import accessibility_violations, base_url
from tests.webui.client import Answer, UiClient
from tests.webui.conftest import Pair, user
from tests.webui.test_passwords import PASSWORD, refused_with, with_password

pytestmark = pytest.mark.slow

#: Every page of the operator's: (method, path).
OPERATOR_PAGES = [
    ("GET", "/ui/operator"),
    ("POST", "/ui/operator/sync"),
    ("GET", "/ui/operator/users"),
    ("POST", "/ui/operator/users"),
    ("GET", "/ui/operator/keys"),
    ("POST", "/ui/operator/keys/rotate"),
    ("GET", "/ui/operator/backups"),
    ("GET", "/ui/operator/audit"),
]
#: Pages of the investigator's, read and written.
INVESTIGATOR_PAGES = [
    ("GET", "/ui/requests"),
    ("GET", "/ui/inbox"),
    ("GET", "/ui/outbox"),
    ("GET", "/ui/cases"),
    ("GET", "/ui/compose"),
    ("POST", "/ui/compose"),
]
NOT_AN_OPERATOR = "the {role} role has no operator's screens: the node's operators run it"
NOT_AN_INVESTIGATOR = (
    "the operator role has no investigator's screens: its pages are under /ui/operator"
)


async def operator_client(rn: RunningNode) -> tuple[UiClient, str]:
    """A browser signed in as a new operator ``olga``, and olga's token."""
    token = await user(rn, "olga", "operator")
    c = UiClient(rn)
    answer = await c.sign_in(token)
    assert (answer.status, answer.headers["Location"]) == (303, "/ui/")
    return c, token


async def call(c: UiClient, method: str, path: str, csrf: str) -> Answer:
    if method == "GET":
        return await c.get(path)
    return await c.post(path, {"csrf": csrf, "name": "oscar", "subject": "s"})


# --- who has which pages ---------------------------------------------------------------------


async def test_an_operator_starts_on_the_nodes_status(pair: Pair) -> None:
    c, _ = await operator_client(pair.fr)
    async with c:
        home = await c.get("/ui/")
        assert (home.status, home.headers["Location"]) == (303, "/ui/operator")
        page = await c.get("/ui/operator")
        assert page.status == 200
        assert "<h1>Node status</h1>" in page.text
        assert 'data-membership="active">Active</dd>' in page.text
        assert 'data-hub="reachable"' in page.text
        assert f"<code>{pair.net.hub_url}</code>" in page.text
        assert 'data-stale="false"' in page.text
        assert "Signed in as olga" in page.plain
        # its sections are the operator's, none of the investigator's
        links = re.findall(r'<nav class="sections".*?</nav>', page.text, re.S)[0]
        assert re.findall(r'href="([^"]+)"', links) == [
            "/ui/operator", "/ui/operator/users", "/ui/operator/keys", "/ui/operator/backups",
            "/ui/operator/audit",
        ]  # fmt: skip
        assert 'href="/ui/operator" aria-current="page"' in links


@pytest.mark.parametrize(("method", "path"), INVESTIGATOR_PAGES)
async def test_the_investigators_pages_refuse_an_operator(
    pair: Pair, method: str, path: str
) -> None:
    c, _ = await operator_client(pair.fr)
    async with c:
        csrf = await c.token("/ui/operator")
        answer = await call(c, method, path, csrf)
        refused_with(answer, 403, "forbidden", NOT_AN_INVESTIGATOR)
        assert "Not allowed for your role" in answer.plain
        assert 'href="/ui/operator/users"' in answer.text  # its own sections around it
    status, outbox = await pair.fr.api("GET", "/api/outbox")
    assert (status, outbox["messages"]) == (200, [])  # nothing was sent


@pytest.mark.parametrize("role", ["investigator", "supervisor"])
async def test_the_operators_pages_refuse_investigators_and_supervisors(
    pair: Pair, role: str
) -> None:
    token = await user(pair.fr, "ines", role)
    async with UiClient(pair.fr) as c:
        await c.sign_in(token)
        csrf = await c.token("/ui/requests")
        for method, path in OPERATOR_PAGES:
            answer = await call(c, method, path, csrf)
            refused_with(answer, 403, "forbidden", NOT_AN_OPERATOR.format(role=role))
        requests = await c.get("/ui/requests")
        assert "/ui/operator" not in requests.text  # no link to them either
    entries, _ = await pair.fr.n.audit.entries()
    assert [e["action"] for e in entries if e["user"] == "ines"] == ["ui-sign-in"]


@pytest.mark.parametrize(("method", "path"), [p for p in OPERATOR_PAGES if p[0] == "POST"])
async def test_the_operators_forms_need_the_sessions_token(
    pair: Pair, method: str, path: str
) -> None:
    c, _ = await operator_client(pair.fr)
    async with c:
        for csrf, origin in (
            ("forged", "same"),
            (await c.token("/ui/operator"), "http://evil.example"),
        ):
            answer = await c.post(path, {"csrf": csrf, "name": "oscar"}, origin=origin)
            assert (answer.status, answer.problem) == (403, "csrf-rejected")
    entries, _ = await pair.fr.n.audit.entries()
    assert [e["action"] for e in entries if e["user"] == "olga"] == ["ui-sign-in"]


# --- the forms -------------------------------------------------------------------------------


async def test_an_operator_adds_an_operator_whose_token_is_shown_once(pair: Pair) -> None:
    fr = pair.fr
    c, _ = await operator_client(fr)
    async with c:
        page = await c.get("/ui/operator/users")
        assert page.status == 200
        assert "globe-node users" in page.plain
        added = await c.post("/ui/operator/users", {"csrf": page.csrf, "name": "oscar"})
        assert added.status == 201
        assert 'data-added="oscar"' in added.text
        token = re.findall(r'<code class="secret" id="new-token">([^<]+)</code>', added.text)[0]
        status, _ = await fr.api("GET", "/api/status", token=token)
        assert status == 200
        again = await c.post("/ui/operator/users", {"csrf": page.csrf, "name": "oscar"})
        refused_with(again, 409, "state-conflict", "user oscar exists")
        assert 'value="oscar"' in again.text  # the form keeps what was typed
        bad = await c.post("/ui/operator/users", {"csrf": page.csrf, "name": "no spaces"})
        assert (bad.status, bad.problem) == (400, "usage")
        assert "new-token" not in bad.text
    entries, _ = await fr.n.audit.entries()
    assert [(e["user"], e["action"], e["subject"]) for e in entries][-1] == (
        "olga", "add-user", "oscar (operator)"
    )  # fmt: skip


async def test_an_operator_publishes_a_prekey_and_syncs(pair: Pair) -> None:
    fr = pair.fr
    c, _ = await operator_client(fr)
    async with c:
        keys = await c.get("/ui/operator/keys")
        assert keys.status == 200
        assert "globe-node keys update" in keys.plain
        rotated = await c.post("/ui/operator/keys/rotate", {"csrf": keys.csrf})
        assert rotated.status == 200
        kid = re.findall(r'data-prekey="([^"]+)"', rotated.text)[0]
        assert f"New signed prekey published: {kid}" in rotated.plain
        synced = await c.post("/ui/operator/sync", {"csrf": keys.csrf})
        assert synced.status == 200
        assert re.search(r'data-synced="\d+"', synced.text)
        assert "items pulled from the mailbox." in synced.plain
        audit = await c.get("/ui/operator/audit")
        assert audit.status == 200
        assert 'data-verified="true"' in audit.text
        rows = re.findall(r'<tr data-seq="(\d+)">', audit.text)
        assert rows == sorted(rows, key=int, reverse=True)  # newest first
        assert f'<code>rotate-prekey</code></td><td lang="en" dir="ltr">{kid}' in audit.text
    entries, _ = await fr.n.audit.entries()
    assert [(e["user"], e["action"], e["subject"]) for e in entries][-1] == (
        "olga", "rotate-prekey", kid
    )  # fmt: skip


# --- users, keys, backups ---------------------------------------------------------------------


async def test_the_users_page_lists_every_user_and_no_secret(pair: Pair) -> None:
    fr = pair.fr
    c, olga = await operator_client(fr)
    await user(fr, "bob", "investigator", "aml", "fraud")
    await set_password(fr.n.sessions, "bob", "a long enough web UI password", now=fr.n.now())
    async with c:
        page = await c.get("/ui/operator/users")
        assert page.status == 200
        assert "<h1>Users</h1>" in page.text
        rows = dict(re.findall(r'<tr data-user="([^"]+)">(.*?)</tr>', page.text, re.S))
        assert sorted(rows) == ["alice", "bob", "olga"]
        bob = rows["bob"]
        assert 'data-role="investigator">Investigator</td>' in bob
        assert "<bdi>aml</bdi>, <bdi>fraud</bdi>" in bob
        assert 'data-last-used="">never</td>' in bob
        assert 'data-password="true">Set</td>' in bob
        olga_row = rows["olga"]
        assert 'data-role="operator">Operator</td>' in olga_row
        assert "none (the intake)" in olga_row
        assert 'data-password="false">None: signs in with its token</td>' in olga_row
        used = int(re.findall(r'data-last-used="(\d+)"', olga_row)[0])
        assert abs(used - int(time.time())) < 120  # signing in is a use
        for secret in (olga, fr.token, "$argon2id$"):
            assert secret not in page.text
        assert "globe-node users" in page.plain
        # an operator added on this page is listed at once, with its token shown once
        added = await c.post("/ui/operator/users", {"csrf": page.csrf, "name": "oscar"})
        assert added.status == 201
        assert '<tr data-user="oscar">' in added.text
        # in French, the words are the catalogue's
        french = await c.post("/ui/language", {"csrf": page.csrf, "language": "fr",
                                               "next": "/ui/operator/users"})  # fmt: skip
        assert french.status == 303
        page = await c.get("/ui/operator/users")
        assert "<h1>Utilisateurs</h1>" in page.text
        assert 'data-role="investigator">Enquêteur</td>' in page.text


async def test_the_keys_page_shows_the_nodes_keys_and_its_prekey(pair: Pair) -> None:
    fr = pair.fr
    c, _ = await operator_client(fr)
    certificate = fr.n.directory.state.members[fr.me].certificate
    async with c:
        page = await c.get("/ui/operator/keys")
        assert page.status == 200
        assert f'data-fingerprint="current">{certificate.fingerprint()}</code>' in page.text
        assert 'data-fingerprint="next"' not in page.text
        assert f'data-key="identity_key">{fr.n.keys.identity.key_id}</code>' in page.text
        assert f'data-key="ka_key">{fr.n.keys.ka.key_id}</code>' in page.text
        assert 'data-certified="true">These keys are the ones the directory certifies.' in (
            page.plain
        )
        assert 'data-update="none">No key update is pending.' in page.plain
        assert 'data-published="true">Published' in page.text
        current = re.findall(r'data-current-prekey="([^"]+)"', page.text)
        rotated = await c.post("/ui/operator/keys/rotate", {"csrf": page.csrf})
        assert rotated.status == 200
        kid = re.findall(r'data-prekey="([^"]+)"', rotated.text)[0]
        # the page read after the rotation shows the new prekey as the current one
        assert re.findall(r'data-current-prekey="([^"]+)"', rotated.text) == [kid]
        assert [kid] != current


def backed_up(directory: Path, out: Path) -> BackupRecord:
    """A real backup of the running node (what ``globe-node backup`` writes)."""
    data = create_backup(directory, out)
    return BackupRecord(data["created"], out.name, data["archive_bytes"], data["sha256"],
                        data["authority"])  # fmt: skip


async def test_the_status_page_warns_until_a_recent_backup_is_recorded(
    pair: Pair, tmp_path: Path
) -> None:
    fr = pair.fr
    c, _ = await operator_client(fr)
    async with c:
        status = await c.get("/ui/operator")
        assert 'data-backup="none"' in status.text
        assert "No backup of this node is recorded." in status.plain
        assert "Make one on the node itself: globe-node backup" in status.plain
        listed = await c.get("/ui/operator/backups")
        assert (listed.status, 'data-backup="none"' in listed.text) == (200, True)
        assert 'id="backups"' not in listed.text  # no table without a backup

        # a backup eight days old: too old
        old = BackupRecord(fr.n.now() - STALE_AFTER - 86400, "fr-pnf-old.tar.gz", 4096,
                           "ab" * 32, "FR-PNF")  # fmt: skip
        await remember(fr.n.audit, old, by="cli:test")
        status = await c.get("/ui/operator")
        assert 'data-backup="stale"' in status.text
        assert (
            "The newest backup is more than 7 days old: it was made on "
            f"{Formats('en', fr.n.now).when(old.created)}."
        ) in status.plain

        # a backup made now, while the daemon runs: no warning, listed first
        archive = tmp_path / "fr-pnf-now.tar.gz"
        new = await asyncio.to_thread(backed_up, fr.config.directory, archive)
        assert new.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
        await remember(fr.n.audit, new, by="cli:test")
        status = await c.get("/ui/operator")
        assert 'data-backup="recent"' in status.text
        assert "Newest backup: " in status.plain
        assert 'class="warning"' not in status.text
        listed = await c.get("/ui/operator/backups")
        rows = re.findall(r'<tr data-file="([^"]+)">', listed.text)
        assert rows == ["fr-pnf-now.tar.gz", "fr-pnf-old.tar.gz"]
        assert f'data-sha256="{new.sha256}">{new.sha256}</code>' in listed.text
        assert f'data-size="{archive.stat().st_size}"' in listed.text
        assert "records the last 10 here" in listed.plain


# --- allowed hosts ---------------------------------------------------------------------------


async def test_allowed_hosts_let_a_proxys_names_through_and_nothing_else(tmp_path) -> None:
    net = Net(tmp_path)
    await net.start_hub()
    try:
        fr = await net.member(
            "FR-PNF", "PNF", webui=WebUiSettings(allowed_hosts=("globe.example.org:443",))
        )
        async with UiClient(fr) as c:
            for host in ("globe.example.org", "GLOBE.example.org:443"):
                assert (await c.get("/ui/sign-in", Host=host)).status == 200
            for host in ("globe.example.org:8443", "other.example.org", "example.org:443"):
                refused = await c.get("/ui/sign-in", Host=host)
                assert (refused.status, refused.problem) == (421, "misdirected-host")
            # the proxy ended TLS, and is not trusted: the browser's https origin passes
            form = await c.get("/ui/sign-in", Host="globe.example.org")
            c.origin = "https://globe.example.org"
            answer = await c.post(
                "/ui/sign-in", {"csrf": form.csrf, "token": fr.token}, Host="globe.example.org"
            )
            assert (answer.status, answer.headers["Location"]) == (303, "/ui/")
            c.origin = "https://evil.example"
            evil = await c.post("/ui/sign-out", {"csrf": "x"}, Host="globe.example.org")
            assert (evil.status, evil.problem) == (403, "csrf-rejected")
            c.origin = "https://globe.example.org"
            other = await c.post("/ui/sign-out", {"csrf": "x"}, Host="127.0.0.1:1")
            assert (other.status, other.problem) == (421, "misdirected-host")
    finally:
        await net.close()


# --- in a browser ------------------------------------------------------------------------------


async def test_an_operator_signs_in_with_a_password_and_reads_the_status(
    pair: Pair, browser, shots
) -> None:
    fr = pair.fr
    await user(fr, "olga", "operator")
    await with_password(fr, "olga")
    page = await (await browser.new_context(locale="en-GB")).new_page()
    await page.goto(base_url(fr) + "/ui/sign-in")
    await shots.take(page, "sign-in")
    assert await accessibility_violations(page) == []
    await page.fill("#user", "olga")
    await page.fill("#password", PASSWORD)
    await page.click("form[action='/ui/sign-in/password'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/ui/operator$"))
    assert await page.text_content("h1") == "Node status"
    assert await page.get_attribute("[data-membership]", "data-membership") == "active"
    await shots.take(page, "status")
    assert await accessibility_violations(page) == []
    await page.click("form[action='/ui/operator/sync'] button")
    await page.wait_for_selector("[data-synced]")
    pages = (
        ("/users", "Users"),
        ("/keys", "Keys"),
        ("/backups", "Backups"),
        ("/audit", "Audit log"),
    )
    for path, heading in pages:
        await page.click(f"nav.sections a[href='/ui/operator{path}']")
        await page.wait_for_url(re.compile(f".*/ui/operator{path}$"))
        assert await page.text_content("h1") == heading
        await shots.take(page, path.strip("/"))
        assert await accessibility_violations(page) == []
    response = await page.goto(base_url(fr) + "/ui/inbox")
    assert response is not None
    assert response.status == 403
    assert await page.get_attribute(".problem", "data-problem") == "forbidden"
    await shots.take(page, "inbox-refused")
