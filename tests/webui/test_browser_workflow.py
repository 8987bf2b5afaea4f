"""The issue's scenario in headless Chromium, against a real hub and two real nodes: an
investigator of France's PNF signs in, finds a counterpart in Brazil by competence (the
country typed in French), sends an urgent request with an attachment; Brazil's
investigator, whose browser speaks French, sees it with its deadline, acknowledges it
with an expected date and answers; the sender's page shows the states and the receipt
change without being reloaded.  Each page passes axe-core's WCAG 2 A/AA rules, no page
breaks its Content-Security-Policy, and each step leaves a screenshot.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.node.helpers import inbox_ids
from tests.support.waiting import eventually
from tests.webui.browser import accessibility_violations, base_url, sign_in
from tests.webui.conftest import Pair

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n% a ledger of payments to a shell company\n%%EOF\n"
WAIT_MS = 20_000


def console_errors(page) -> list[str]:
    """Every error the page logs (a CSP violation is one): filled as they happen."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


async def test_a_request_goes_out_is_acknowledged_and_answered_while_the_sender_watches(
    pair: Pair, browser, shots
) -> None:
    fr_ctx = await browser.new_context(locale="en-GB")
    br_ctx = await browser.new_context(locale="fr-FR", accept_downloads=True)
    sender, receiver = await fr_ctx.new_page(), await br_ctx.new_page()
    sender_errors, receiver_errors = console_errors(sender), console_errors(receiver)

    # --- France: sign in, find Brazil by competence, send an urgent request -------------
    await sign_in(sender, base_url(pair.fr), pair.fr.token)
    await shots.take(sender, "fr-requests")
    assert await accessibility_violations(sender) == []
    await sender.goto(base_url(pair.fr) + "/ui/compose")
    await sender.select_option("#d-kind", "anti-corruption")
    await sender.fill("#d-country", "Brésil")
    await sender.click("#directory button[type=submit]")
    assert await sender.text_content("label[for='to-BR-PF']") == (
        "BR-PF · Policia Federal · Brazil · Anti-corruption law enforcement"
    )
    assert await sender.locator("#recipients input[name=to]").count() == 1  # not itself
    await sender.check("#to-BR-PF")
    await sender.select_option("#kind", "request")
    await sender.select_option("#urgency", "urgent")
    await sender.check("#r-intelligence-only")
    await sender.fill("#subject", "Accounts of Orion Holdings")
    await sender.fill("#body", "Please confirm the holders of the accounts listed in the ledger.")
    await sender.set_input_files(
        "#files", files=[{"name": "ledger.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    staged = sender.locator(".staged li[data-upload]")
    await staged.wait_for(timeout=WAIT_MS)
    assert "SHA-256 " in (await staged.text_content() or "")
    await shots.take(sender, "fr-compose")
    assert await accessibility_violations(sender) == []
    await sender.click("#send")
    await sender.wait_for_url(re.compile(r".*/ui/messages/[0-9a-f]{32}$"))
    mid = sender.url.rsplit("/", 1)[1]
    assert await sender.get_attribute("#handling li", "data-restriction") == "intelligence-only"
    assert await sender.locator("#recipients [data-recipient='BR-PF']").count() == 1
    assert await sender.locator("#requests [data-state='sent']").count() == 1
    await shots.take(sender, "fr-sent")
    assert await accessibility_violations(sender) == []
    await sender.evaluate("window.__notReloaded = true")

    # --- Brazil, in French: the request in the inbox with its deadline ------------------
    await eventually(lambda: _holds(pair, mid), what="the request reached Brazil")
    await sign_in(receiver, base_url(pair.br), pair.br.token)
    assert await receiver.get_attribute("html", "lang") == "fr"
    await receiver.goto(base_url(pair.br) + "/ui/inbox")
    row = receiver.locator(f"#inbox tr[data-id='{mid}']")
    cells = [c.strip() for c in await row.locator("td").all_text_contents()]
    assert cells[0] == "Demande"
    assert cells[1] == "FR-PNF France"
    assert cells[2] == "Accounts of Orion Holdings Nouveau"
    assert cells[3] == "Urgent"
    assert re.fullmatch(r"dans [78] heures", cells[4]), cells[4]
    assert cells[5] == "TLP:AMBER"
    assert cells[6] == "Reçu"
    await shots.take(receiver, "br-inbox")
    assert await accessibility_violations(receiver) == []
    await row.locator("a").click()
    await receiver.wait_for_url(re.compile(f".*/ui/messages/{mid}$"))
    banner = await receiver.text_content("#handling")
    assert "Renseignement uniquement" in (banner or "")
    async with receiver.expect_download() as download:
        await receiver.click("#attachments a")
    saved = await (await download.value).path()
    assert saved is not None
    assert saved.read_bytes() == PDF
    await shots.take(receiver, "br-message")
    assert await accessibility_violations(receiver) == []

    # --- acknowledge with an expected date, then answer ---------------------------------
    expected = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    await receiver.fill("#expected", expected.strftime("%Y-%m-%dT%H:%M"))
    await receiver.click("#acknowledge button")
    await receiver.wait_for_selector("#requests [data-state='acknowledged']")
    await shots.take(receiver, "br-acknowledged")

    # France's page, never reloaded, follows each step
    await sender.wait_for_selector("#recipients [data-delivery='delivered']", timeout=WAIT_MS)
    await sender.wait_for_selector("#requests [data-state='acknowledged']", timeout=WAIT_MS)
    shown = await sender.get_attribute("#requests time.expected", "datetime")
    assert shown == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
    await shots.take(sender, "fr-acknowledged")

    await receiver.fill("#answer-body", "The holders are listed in the attached register.")
    await receiver.click("#answer button[type=submit]")
    await receiver.wait_for_selector("#requests [data-state='answered']")
    await shots.take(receiver, "br-answered")
    await sender.wait_for_selector("#requests [data-state='answered']", timeout=WAIT_MS)
    assert await sender.evaluate("window.__notReloaded") is True
    await shots.take(sender, "fr-answered")
    assert await accessibility_violations(sender) == []

    # --- the dashboard: nothing left open on either side ---------------------------------
    await sender.goto(base_url(pair.fr) + "/ui/requests")
    assert await sender.text_content("[data-count='theirs']") == "0"
    answered = "#t-stats [data-counterpart='BR-PF'][data-direction='sent'] [data-stat='answered']"
    assert await sender.text_content(answered) == "1"  # the response times, with Brazil's
    assert await accessibility_violations(sender) == []
    assert sender_errors == []
    assert receiver_errors == []
    await fr_ctx.close()
    await br_ctx.close()


async def _holds(pair: Pair, mid: str) -> bool:
    return mid in await inbox_ids(pair.br)
