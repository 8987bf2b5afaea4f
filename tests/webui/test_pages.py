"""The pages over raw HTTP against two real nodes: each list, filter and view shows what
the local API answers the same user, and each form turns into its API route's body, its
refusal coming back on the form with what was typed."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.node.helpers import inbox_ids
from tests.support.waiting import eventually
from tests.webui.client import UiClient
from tests.webui.conftest import Pair

pytestmark = pytest.mark.slow

DATA = b"register of account holders\n"
#: ``sha256sum`` of :data:`DATA`, as the message page shows it.
DATA_SHA256 = "2cc7d6310b1f0dc066eddde456bb72586ad54b6ddbdd00afddd61f31d90b5a60"


def message_id(location: str) -> str:
    found = re.fullmatch(r"/ui/messages/([0-9a-f]{32})", location)
    assert found is not None, location
    return found.group(1)


async def send_request(c: UiClient, **extra: str) -> str:
    token = await c.token("/ui/compose")
    staged = await c.session.post(
        c.base + "/ui/uploads?name=register.txt&media_type=text/plain", data=DATA,
        headers={"X-CSRF-Token": token, "Origin": c.origin},
    )  # fmt: skip
    assert staged.status == 201
    upload = await staged.json()
    assert (upload["name"], upload["size"]) == ("register.txt", len(DATA))
    form = [("csrf", token), ("to", "BR-PF"), ("kind", "request"), ("urgency", "priority"),
            ("tlp", "RED"), ("restrictions", "no-onward-dissemination"),
            ("subject", "Holders of account 12"), ("body", "Who holds it?"),
            ("language", "en"), ("case", "OP-ORION"), ("attachment", upload["id"]),
            *extra.items()]  # fmt: skip
    sent = await c.post("/ui/compose", form)
    assert sent.status == 303, sent.text
    return message_id(sent.headers["Location"])


async def test_compose_refusals_come_back_on_the_form_with_what_was_typed(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        token = await c.token("/ui/compose")
        nobody = await c.post("/ui/compose", {"csrf": token, "subject": "Kept subject",
                                              "body": "Kept body"})  # fmt: skip
        assert (nobody.status, nobody.problem) == (400, "usage")
        assert "'to' is a non-empty list of authority ids" in nobody.plain
        assert 'value="Kept subject"' in nobody.text
        assert ">Kept body</textarea>" in nobody.text
        when = await c.post("/ui/compose", {"csrf": token, "to": "BR-PF", "subject": "s",
                                            "body": "b", "deadline": "tomorrow"})  # fmt: skip
        assert (when.status, when.problem) == (400, "usage")
        assert "'deadline' is a date and time (YYYY-MM-DDTHH:MM, UTC)" in when.plain
        assert 'id="to-BR-PF" name="to" value="BR-PF" checked' in when.text
        past = await c.post("/ui/compose", {"csrf": token, "to": "BR-PF", "subject": "s",
                                            "body": "b", "kind": "request",
                                            "deadline": "2000-01-01T00:00"})  # fmt: skip
        assert (past.status, past.problem) == (400, "usage")
        assert "'deadline' is in the past" in past.plain
        upload = await c.session.post(c.base + "/ui/uploads?name=x.bin", data=b"x",
                                      headers={"Origin": c.origin})  # fmt: skip
        assert upload.status == 403  # no form token in the header


async def test_a_request_through_the_pages_of_both_sides(pair: Pair) -> None:
    async with UiClient(pair.fr) as fr, UiClient(pair.br) as br:
        await fr.sign_in(pair.fr.token)
        await br.sign_in(pair.br.token)
        mid = await send_request(fr)
        sent = await fr.get(f"/ui/messages/{mid}")
        assert sent.status == 200
        assert 'class="handling handling-red"' in sent.text
        assert 'data-restriction="no-onward-dissemination"' in sent.text
        outbox = await fr.get("/ui/outbox?counterpart=BR-PF&kind=request")
        assert f'data-id="{mid}"' in outbox.text
        assert "Holders of account 12" in outbox.text
        assert f'data-id="{mid}"' not in (await fr.get("/ui/outbox?kind=bulletin")).text

        await eventually(lambda: _arrived(pair, mid), what="the request reached Brazil")
        inbox = await br.get("/ui/inbox?counterpart=FR-PNF&case=OP-ORION")
        assert f'data-id="{mid}"' in inbox.text
        assert f'data-id="{mid}"' not in (await br.get("/ui/inbox?case=OTHER")).text
        found = await br.get("/ui/inbox?q=holders")
        assert f'href="/ui/messages/{mid}"' in found.text
        assert "Nothing matches." in (await br.get("/ui/inbox?q=zebra")).text
        cases = await br.get("/ui/cases")
        assert 'href="/ui/cases/OP-ORION"' in cases.text
        case = await br.get("/ui/cases/OP-ORION")
        assert f'data-id="{mid}"' in case.text
        assert 'data-state="received"' in case.text

        shown = await br.get(f"/ui/messages/{mid}")
        assert f"<td><code>{DATA_SHA256}</code></td>" in shown.text
        assert f"<td><code>{DATA_SHA256}</code></td>" in sent.text  # the sender's page too
        download = await br.session.get(br.base + f"/ui/messages/{mid}/attachments/1")
        assert (download.status, await download.read()) == (200, DATA)
        assert (
            download.headers["Content-Disposition"] == "attachment; filename*=UTF-8''register.txt"
        )
        assert download.headers["X-Frame-Options"] == "DENY"

        token = (await br.get(f"/ui/messages/{mid}")).csrf
        no_date = await br.post(
            f"/ui/messages/{mid}/status", {"csrf": token, "state": "acknowledged"}
        )
        assert (no_date.status, no_date.problem) == (400, "usage")
        assert "an acknowledgement gives the expected answer date" in no_date.plain
        bogus = await br.post(f"/ui/messages/{mid}/reply", {"csrf": token, "kind": "bogus",
                                                             "body": "Kept answer"})  # fmt: skip
        assert (bogus.status, bogus.problem) == (400, "usage")
        assert "'kind': unknown value 'bogus'" in bogus.plain
        assert ">Kept answer</textarea>" in bogus.text
        progress = await br.post(
            f"/ui/messages/{mid}/status", {"csrf": token, "state": "in-progress"}
        )
        assert (progress.status, progress.headers["Location"]) == (303, f"/ui/messages/{mid}")
        live = await br.get(f"/ui/messages/{mid}/live?direction=in&from=FR-PNF")
        assert 'data-state="in-progress"' in live.text
        assert "<html" not in live.text  # a fragment

        await eventually(lambda: _state(fr, mid, "in-progress"), what="France sees progress")
        later = datetime(2031, 1, 2, 3, 4, tzinfo=UTC)
        extend = await fr.post(f"/ui/messages/{mid}/status", {
            "csrf": sent.csrf, "state": "extended", "deadline": later.strftime("%Y-%m-%dT%H:%M")
        })  # fmt: skip
        assert extend.status == 303
        live = await fr.get(f"/ui/messages/{mid}/live?direction=out")
        assert 'datetime="2031-01-02T03:04:00Z"' in live.text
        dashboard = await fr.get("/ui/requests")
        assert 'data-count="theirs">1<' in dashboard.text
        assert f'data-message="{mid}"' in dashboard.text
        withdraw = await fr.post(f"/ui/messages/{mid}/status", {"csrf": sent.csrf,
                                                                "state": "withdrawn"})  # fmt: skip
        assert (withdraw.status, withdraw.problem) == (400, "usage")
        assert "a withdrawal gives a reason" in withdraw.plain


async def _arrived(pair: Pair, mid: str) -> bool:
    return mid in await inbox_ids(pair.br)


async def _state(c: UiClient, mid: str, state: str) -> bool:
    live = await c.get(f"/ui/messages/{mid}/live?direction=out")
    return f'data-state="{state}"' in live.text


async def test_information_gets_a_reply_form_and_the_language_follows_the_choice(
    pair: Pair,
) -> None:
    async with UiClient(pair.fr) as fr, UiClient(pair.br) as br:
        await fr.sign_in(pair.fr.token)
        token = await fr.token("/ui/compose")
        sent = await fr.post(
            "/ui/compose",
            {
                "csrf": token,
                "to": "BR-PF",
                "kind": "information",
                "subject": "FYI",
                "body": "b",
                "tlp": "GREEN",
            },
        )
        mid = message_id(sent.headers["Location"])
        assert "handling" not in (await fr.get(f"/ui/messages/{mid}")).text.split("<main")[1]
        await eventually(lambda: _arrived(pair, mid), what="the information reached Brazil")
        signin = await br.get("/ui/sign-in?lang=ar")
        assert '<html lang="ar" dir="rtl">' in signin.text
        await br.sign_in(pair.br.token)
        page = await br.get(f"/ui/messages/{mid}")
        assert '<html lang="ar" dir="rtl">' in page.text
        assert 'id="reply"' in page.text
        replied = await br.post(
            f"/ui/messages/{mid}/reply", {"csrf": page.csrf, "kind": "information", "body": "ok"}
        )
        assert replied.status == 303
    async with UiClient(pair.fr) as other:
        page = await other.get("/ui/sign-in", **{"Accept-Language": "es-ES,es;q=0.9"})
        assert '<html lang="es" dir="ltr">' in page.text
        assert "Iniciar sesión" in page.text
