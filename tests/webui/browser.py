"""Headless Chromium for the web UI's tests: Debian's ``chromium`` driven by Playwright,
in the test's own event loop (beside the hub and the nodes), with an accessibility
check of each page (axe-core, vendored in ``vendor/``) and a screenshot of each step
under ``test-artefacts/webui/<test>/``.

Chromium missing is a failure with the way to install it, never a skip: CI installs it
(``.ci/run``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest

CHROMIUM: Final = Path("/usr/bin/chromium")
ARGS: Final = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT: Final = Path(__file__).resolve().parents[2]
ARTEFACTS: Final = ROOT / "test-artefacts" / "webui"
AXE: Final = Path(__file__).parent / "vendor" / "axe.min.js"
#: The rules axe runs: WCAG 2.0 and 2.1, levels A and AA.
AXE_TAGS: Final = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Chromium, headless, as the issue specifies it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the web UI tests need Chromium at {CHROMIUM}: apt-get install chromium "
            "(.ci/run installs it)"
        )
    try:
        from playwright.async_api import async_playwright  # noqa: PLC0415
    except ImportError:  # pragma: no cover - a dev install has it
        pytest.fail("the web UI tests need Playwright: pip install -e '.[dev]'")
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


class Shots:
    """Numbered screenshots of one test's steps."""

    def __init__(self, test: str) -> None:
        self.dir = ARTEFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test)
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.n = 0

    async def take(self, page: Any, step: str) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


async def accessibility_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2 A/AA violations on the page, one line each (``[]``: none).

    The script is evaluated through the DevTools protocol, which the page's
    Content-Security-Policy does not govern: the node never serves it."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' '))"
        ".join(', ')))",
        AXE_TAGS,
    )
    return list(result)


async def sign_in(page: Any, base: str, token: str) -> None:
    """Sign in through the form, as a person would."""
    await page.goto(f"{base}/ui/sign-in")
    await page.fill("#token", token)
    await page.click("form[action='/ui/sign-in'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/ui/requests$"))


def base_url(rn: Any) -> str:
    return f"http://127.0.0.1:{rn.config.api_port}"
