"""The UI in Chromium beyond the main scenario: the Arabic pages right to left with the
layout mirrored, and the refusals a person can meet in a browser (an operator on an
investigator's page, a tampered form, a form posted by another site, another team's case, a session
whose token was rotated).  The accessibility check itself is shown to catch a fault.
"""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from globe_node.users import rotate_token
from tests.support.servers import serve_app
from tests.webui.browser import accessibility_violations, base_url, sign_in
from tests.webui.conftest import Pair, user

pytestmark = pytest.mark.slow


async def test_the_arabic_pages_run_right_to_left_with_the_layout_mirrored(
    pair: Pair, browser, shots
) -> None:
    page = await (await browser.new_context(locale="en-GB")).new_page()
    await sign_in(page, base_url(pair.fr), pair.fr.token)
    assert await page.get_attribute("html", "dir") == "ltr"
    brand_en = await page.locator("#brand").bounding_box()
    nav_en = await page.locator("nav.sections").bounding_box()
    assert brand_en is not None
    assert nav_en is not None
    assert brand_en["x"] < nav_en["x"]  # left to right: the name first, on the left
    await shots.take(page, "en")
    await page.select_option("#language", "ar")
    await page.click("form[action='/ui/language'] button")
    await page.wait_for_url(re.compile(r".*/ui/requests$"))
    assert await page.get_attribute("html", "dir") == "rtl"
    assert await page.get_attribute("html", "lang") == "ar"
    assert await page.text_content("h1") == "الطلبات"
    brand = await page.locator("#brand").bounding_box()
    nav = await page.locator("nav.sections").bounding_box()
    assert brand is not None
    assert nav is not None
    assert brand["x"] > nav["x"]  # mirrored: the name first, on the right
    viewport = page.viewport_size
    assert viewport is not None
    assert brand["x"] + brand["width"] > viewport["width"] - 40  # against the right edge
    await shots.take(page, "ar")
    assert await accessibility_violations(page) == []
    # the choice is the user's: a new browser signs in to Arabic pages
    other = await (await browser.new_context(locale="en-GB")).new_page()
    await sign_in(other, base_url(pair.fr), pair.fr.token)
    assert await other.get_attribute("html", "dir") == "rtl"


async def test_refusals_in_the_browser(pair: Pair, browser, shots) -> None:
    fr = pair.fr
    operator = await user(fr, "olga", "operator")
    anna = await user(fr, "anna", "investigator", "team-a")
    boris = await user(fr, "boris", "investigator", "team-b")
    assert (await fr.api("POST", "/api/cases", {"case": "A-1", "team": "team-a"},
                         token=anna))[0] == 201  # fmt: skip
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()

    # an operator has no investigator's screens
    await page.goto(base_url(fr) + "/ui/sign-in")
    await page.fill("#token", operator)
    await page.click("form[action='/ui/sign-in'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/ui/operator$"))
    await page.goto(base_url(fr) + "/ui/inbox")
    await page.wait_for_selector("[data-problem='forbidden']")
    await shots.take(page, "operator")

    # another team's case does not exist
    await sign_in(page, base_url(fr), boris)
    response = await page.goto(base_url(fr) + "/ui/cases/A-1")
    assert response is not None
    assert response.status == 404
    assert await page.get_attribute(".problem", "data-problem") == "not-found"
    await shots.take(page, "other-team")

    # a form whose token was tampered with
    await page.goto(base_url(fr) + "/ui/inbox")
    await page.eval_on_selector(
        "form[action='/ui/language'] input[name=csrf]", "e => { e.value = 'tampered'; }"
    )
    await page.select_option("#language", "fr")
    await page.click("form[action='/ui/language'] button")
    await page.wait_for_selector("[data-problem='csrf-rejected']")
    await shots.take(page, "tampered")

    # a form another site serves, even with this session's token (leaked): its Origin
    await page.goto(base_url(fr) + "/ui/inbox")
    token = await page.get_attribute("form[action='/ui/language'] input[name=csrf]", "value")
    attack = (
        f'<!doctype html><html lang="en"><title>x</title><form method="post" '
        f'action="{base_url(fr)}/ui/language"><input type="hidden" name="csrf" value="{token}">'
        '<input type="hidden" name="language" value="ar"><button>go</button></form></html>'
    )

    async def evil(_request: web.Request) -> web.Response:
        return web.Response(text=attack, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", evil)
    async with serve_app(app) as served:
        await page.goto(f"http://127.0.0.1:{served.port}/")
        await page.click("button")
        await page.wait_for_selector("[data-problem='csrf-rejected']")
    await shots.take(page, "other-site")
    await page.goto(base_url(fr) + "/ui/inbox")
    assert await page.get_attribute("html", "lang") == "en"  # nothing changed

    # a session whose token was rotated ends at the next page
    await rotate_token(fr.n.sessions, "boris", now=fr.n.now())
    await page.reload()
    assert re.fullmatch(r".*/ui/sign-in\?next=/ui/inbox", page.url), page.url
    await shots.take(page, "rotated")
    await context.close()


async def test_the_accessibility_check_finds_an_unlabelled_field(browser) -> None:
    page = await browser.new_page()
    await page.set_content(
        '<!doctype html><html lang="en"><title>t</title><main><input type="text"></main></html>'
    )
    violations = await accessibility_violations(page)
    assert [v.split(":")[0] for v in violations] == ["label"]
