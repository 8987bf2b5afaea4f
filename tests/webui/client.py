"""A raw HTTP client of a node's web UI (aiohttp): what a browser sends, and what an
attacker's page or script could send instead."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.node.network import RunningNode

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_PROBLEM = re.compile(r'data-problem="([a-z-]+)"')


@dataclass
class Answer:
    """A response: status, headers and text."""

    status: int
    headers: Any
    text: str

    @property
    def plain(self) -> str:
        """The text with HTML's character references resolved."""
        return html.unescape(self.text)

    @property
    def problem(self) -> str | None:
        """The refusal's slug a page shows (``data-problem``), if any."""
        found = _PROBLEM.search(self.text)
        return found.group(1) if found else None

    @property
    def csrf(self) -> str:
        """The form token of the page."""
        found = _CSRF.search(self.text)
        assert found is not None, self.text[:500]
        return found.group(1)


class UiClient:
    """One browser's worth of cookies against ``rn``'s UI."""

    def __init__(self, rn: RunningNode) -> None:
        self.base = f"http://127.0.0.1:{rn.config.api_port}"
        # unsafe: keep cookies for an IP address host (127.0.0.1)
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.origin = self.base

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> UiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def get(self, path: str, **headers: str) -> Answer:
        async with self.session.get(self.base + path, headers=headers, allow_redirects=False) as r:
            return Answer(r.status, r.headers, await r.text())

    async def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]], *,
        origin: str | None = "same", **headers: str,
    ) -> Answer:  # fmt: skip
        sent = dict(headers)
        if origin == "same":
            sent["Origin"] = self.origin
        elif origin is not None:
            sent["Origin"] = origin
        async with self.session.post(
            self.base + path, data=data, headers=sent, allow_redirects=False
        ) as r:
            return Answer(r.status, r.headers, await r.text())

    async def sign_in(self, token: str) -> Answer:
        """Sign in as the browser would: load the form, post it with its token."""
        form = await self.get("/ui/sign-in")
        return await self.post("/ui/sign-in", {"csrf": form.csrf, "token": token, "next": ""})

    async def token(self, path: str = "/ui/inbox") -> str:
        """The session's form token, read from a page."""
        return (await self.get(path)).csrf
