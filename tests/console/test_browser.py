"""The required scenario in headless Chromium, against a real hub of three admins with a
quorum of two: an authority applies; alice opens her console, finds the application,
checks its fingerprint against the one the applicant's node printed and approves it with
her passphrase; bob opens his own console, reads the hub with his passphrase, sees
alice's signature and that one more is needed, and completes the quorum; the member is
admitted (the hub's state and the log verified from the genesis say so).  Bob's console
in Arabic runs right to left.  Each page passes axe-core's WCAG 2 A/AA rules, no page
breaks its Content-Security-Policy, and each step leaves a screenshot under
test-artefacts/console/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from globe_io.hubapi import APPROVED
from globe_node.cli.common import node_fingerprint
from globe_node.keys import NodeKeys
from tests.admin.desk import Desk
from tests.admin.runner import PASSPHRASE
from tests.console.conftest import ConsoleFactory
from tests.webui.browser import ROOT, Shots, accessibility_violations
from tests.webui.test_browser_workflow import console_errors

pytestmark = pytest.mark.slow

ARTEFACTS = ROOT / "test-artefacts" / "console"


class ConsoleShots(Shots):
    """The web UI tests' numbered screenshots, under ``test-artefacts/console/<test>/``."""

    def __init__(self, test: str) -> None:  # not Shots.__init__: it picks the web UI's folder
        self.dir = ARTEFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test)
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> ConsoleShots:
    return ConsoleShots(request.node.name)


async def checked(page: Any, shots: ConsoleShots, step: str) -> Path:
    """A screenshot of the page, once it passes the accessibility check."""
    assert await accessibility_violations(page) == [], step
    return await shots.take(page, step)


async def test_two_admins_admit_an_authority_from_their_consoles(
    desk: Desk, open_console: ConsoleFactory, browser, shots: ConsoleShots
) -> None:
    member = await desk.apply("FR-PNF")
    spoken_fingerprint = node_fingerprint(
        member.authority, NodeKeys(member.identity, member.transport, member.ka, bytes(32))
    )
    alice_console = await open_console(0)
    bob_console = await open_console(1)  # before alice signs: bob must read the hub again

    # --- alice: the queue, the application, its fingerprint, her signature ---------------
    alice = await (await browser.new_context(locale="en-GB")).new_page()
    alice_errors = console_errors(alice)
    await alice.goto(alice_console.link)
    await alice.wait_for_url(re.compile(r".*/console/applications$"))
    assert "secret" not in alice.url
    assert await alice.text_content("#who") == "Admin alice of globe-desk"
    row = alice.locator(f"#applications tr[data-id='{member.app_id}']")
    assert await row.locator("[data-verdict]").get_attribute("data-verdict") == "ready"
    await checked(alice, shots, "alice-queue")
    await row.locator("a").click()
    await alice.wait_for_url(re.compile(f".*/console/applications/{member.app_id}$"))
    assert await alice.text_content("#fingerprint") == spoken_fingerprint
    assert await alice.get_attribute("#draft", "data-draft") == "matches"
    await alice.click("details summary")
    canonical = await alice.text_content("#canonical")
    assert canonical is not None
    assert canonical.startswith('{"action":"admit","authority":"FR-PNF"')
    await checked(alice, shots, "alice-application")
    await alice.fill("#approve-passphrase", "not my passphrase")
    await alice.click("#approve button[type=submit]")
    await alice.wait_for_selector("[data-problem='wrong-passphrase']")
    await checked(alice, shots, "alice-wrong-passphrase")
    assert await desk.proposals() == []
    await alice.go_back()
    await alice.fill("#approve-passphrase", PASSPHRASE)
    await alice.click("#approve button[type=submit]")
    await alice.wait_for_selector("#outcome[data-outcome='signed']")
    assert await alice.text_content("#outcome") == (
        "Admission of FR-PNF: signed by alice; 1 of 2 signatures."
    )
    assert await alice.text_content("#needed") == "Still needed: 1"
    await checked(alice, shots, "alice-signed")

    # --- bob: reads the hub, sees alice's signature, completes the quorum ------------------
    bob = await (await browser.new_context(locale="en-GB")).new_page()
    bob_errors = console_errors(bob)
    await bob.goto(bob_console.link)
    await bob.wait_for_url(re.compile(r".*/console/applications$"))
    await bob.click("nav.sections a[href='/console/proposals']")
    await bob.wait_for_url(re.compile(r".*/console/proposals$"))
    assert await bob.locator("#proposals").count() == 0  # his reading predates alice's signature
    await bob.fill("#read-passphrase", PASSPHRASE)
    await bob.click("#read button[type=submit]")
    await bob.wait_for_selector("#proposals")
    card = bob.locator("#proposals li[data-action='admit']")
    assert await card.locator(".signers").text_content() == "alice"
    assert await card.locator(".needed").get_attribute("data-needed") == "1"
    await checked(bob, shots, "bob-proposals")
    await card.locator("a").click()  # the application, to check the fingerprint himself
    await bob.wait_for_url(re.compile(f".*/console/applications/{member.app_id}$"))
    assert await bob.text_content("#fingerprint") == spoken_fingerprint
    assert await bob.text_content("#signers") == "Signed by: alice"
    await bob.go_back()
    await card.locator("input[name=passphrase]").fill(PASSPHRASE)
    await card.locator("button[type=submit]").click()
    await bob.wait_for_selector("#outcome[data-outcome='appended']")
    assert await bob.text_content("#outcome") == (
        "Admission of FR-PNF: appended to the membership log at entry 1, signed by alice, bob."
    )
    await checked(bob, shots, "bob-quorum")

    # --- the hub's state and the log verified from the genesis ---------------------------
    info = await desk.client(desk.admins[0]).admin_application(member.app_id)
    assert info.status == APPROVED
    state = await desk.directory()
    assert [str(a) for a in state.members] == ["FR-PNF"]
    assert state.member(member.authority).certificate.fingerprint() == spoken_fingerprint
    await bob.click("nav.sections a[href='/console/log']")
    await bob.wait_for_selector("#log tr[data-seq='1']")
    assert await bob.text_content("#log tr[data-seq='1'] td.signers") == "alice, bob"
    assert await bob.text_content("#head-hash") == state.head.hex()
    await checked(bob, shots, "bob-log")
    for section, ready in (("members", "#by-kind"), ("network", "#genesis")):
        await bob.click(f"nav.sections a[href='/console/{section}']")
        await bob.wait_for_selector(ready)
        await checked(bob, shots, f"bob-{section}")

    # --- the Arabic console: right to left, mirrored ------------------------------------------
    await bob.select_option("#language", "ar")
    await bob.click("form[action='/console/language'] button")
    await bob.wait_for_url(re.compile(r".*/console/network$"))
    assert await bob.get_attribute("html", "dir") == "rtl"
    assert await bob.get_attribute("html", "lang") == "ar"
    assert await bob.text_content("h1") == "الشبكة"
    brand = await bob.locator("#brand").bounding_box()
    nav = await bob.locator("nav.sections").bounding_box()
    assert brand is not None
    assert nav is not None
    assert brand["x"] > nav["x"]  # mirrored: the console's name first, on the right
    await checked(bob, shots, "bob-network-ar")
    await bob.goto(bob_console.base + f"/console/applications/{member.app_id}")
    assert await bob.get_attribute("html", "dir") == "rtl"
    assert await bob.text_content("#fingerprint") == spoken_fingerprint
    await checked(bob, shots, "bob-application-ar")
    # no page broke its Content-Security-Policy; the one refusal is the wrong passphrase's
    assert alice_errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    assert bob_errors == []
