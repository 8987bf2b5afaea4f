"""What members and colleagues write is shown, never run: a subject, a body, a case
title and a note full of markup arrive on every page that shows them as text
(escaped), and no page carries the markup itself."""

from __future__ import annotations

from typing import Final

from tests.node.helpers import inbox_ids
from tests.support.waiting import eventually
from tests.webui.client import UiClient
from tests.webui.conftest import Pair

HOSTILE: Final = '<script>alert(1)</script><img src=x onerror="alert(2)">'
ESCAPED: Final = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror="


async def test_markup_written_by_a_member_or_a_colleague_is_shown_as_text(pair: Pair) -> None:
    status, sent = await pair.fr.api(
        "POST", "/api/messages",
        {"to": ["BR-PF"], "kind": "request", "subject": f"Accounts {HOSTILE}",
         "body": f"Please {HOSTILE} provide", "urgency": "priority", "case": "OP-HTML"},
    )  # fmt: skip
    assert status == 201, sent
    mid = sent["id"]
    await eventually(lambda: _arrived(pair, mid), what="the request reached Brazil")
    status, _ = await pair.br.api("POST", "/api/cases/OP-HTML/rename", {"title": HOSTILE})
    assert status == 200
    status, _ = await pair.br.api("POST", "/api/cases/OP-HTML/notes", {"body": HOSTILE})
    assert status == 201

    async with UiClient(pair.br) as br:
        await br.sign_in(pair.br.token)
        for path in (
            "/ui/inbox",
            f"/ui/messages/{mid}",
            "/ui/cases",
            "/ui/cases/OP-HTML",
            "/ui/requests",
            "/ui/inbox?q=accounts",
        ):
            page = await br.get(path)
            assert page.status == 200, path
            assert "<script>alert" not in page.text, path
            assert "<img src=x" not in page.text, path
            assert 'onerror="alert' not in page.text, path
        assert ESCAPED in (await br.get(f"/ui/messages/{mid}")).text
        assert ESCAPED in (await br.get("/ui/cases/OP-HTML")).text  # the title and the note


async def _arrived(pair: Pair, mid: str) -> bool:
    return mid in await inbox_ids(pair.br)
