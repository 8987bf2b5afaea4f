"""The inbox and outbox pages over raw HTTP against two real nodes: their filters are the
API's (the page filters nothing itself), a bad value is the API's refusal shown above the
list with the filters kept, pages chain by the API's cursor, and the outbox page reads
one list, never each message."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import pytest

from globe_node.webui.bridge import LocalApi
from protocol.messages import Handling, Kind, Tlp, Urgency
from tests.node.helpers import delivered, info
from tests.support.waiting import eventually
from tests.webui.client import Answer, UiClient
from tests.webui.conftest import Pair

pytestmark = pytest.mark.slow


def rows(page: Answer, table: str) -> list[str]:
    """The message ids a list page shows, in order (none: no table)."""
    _, _, body = page.text.partition(f'id="{table}"')
    return re.findall(r'<tr data-id="([0-9a-f]{32})"', body.split("</table>")[0])


async def test_the_lists_filter_and_page_through_the_api(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, br = pair.fr, pair.br
    deadline = br.n.now() + 30 * 86400
    red = str(await br.n.send([fr.me], info("Orion ledger", handling=Handling(Tlp.RED))))
    asked = info("Urgent freeze", kind=Kind.REQUEST, urgency=Urgency.URGENT, deadline=deadline)
    urgent = str(await br.n.send([fr.me], asked))
    green = str(await br.n.send([fr.me], info("Tender list", handling=Handling(Tlp.GREEN))))
    for mid in (red, urgent, green):
        await eventually(partial(delivered, br, mid, fr), what="the messages reached France")
    sent = [str(await fr.n.send([br.me], info(f"Reply {i}"))) for i in range(3)]
    async with UiClient(fr) as c:
        await c.sign_in(fr.token)
        everything = rows(await c.get("/ui/inbox"), "inbox")
        assert set(everything) == {red, urgent, green}
        filtered = await c.get("/ui/inbox?tlp=RED&counterpart=BR-PF")
        assert rows(filtered, "inbox") == [red]
        assert '<option value="RED" selected>TLP:RED</option>' in filtered.text
        assert 'id="clear-filters"' in filtered.text
        assert rows(await c.get("/ui/inbox?urgency=urgent"), "inbox") == [urgent]
        assert rows(await c.get("/ui/inbox?state=received"), "inbox") == [urgent]
        assert rows(await c.get("/ui/inbox?q=ledger"), "inbox") == [red]
        assert rows(await c.get("/ui/inbox?since=2000-01-01"), "inbox") == everything
        none = await c.get("/ui/inbox?until=2000-01-01")
        assert rows(none, "inbox") == []
        assert "Nothing matches." in none.text
        # a bad value: the API's refusal above the list, the filters as typed
        bad = await c.get("/ui/inbox?counterpart=nobody&q=orion")
        assert (bad.status, bad.problem) == (400, "usage")
        assert "'counterpart' is an authority id (CC-NAME)" in bad.plain
        assert '<option value="nobody" selected>nobody</option>' in bad.text
        assert 'id="f-q" name="q" value="orion"' in bad.text
        day = await c.get("/ui/inbox?since=yesterday")
        assert (day.status, day.problem) == (400, "usage")
        assert "'since' is a day (YYYY-MM-DD, UTC)" in day.plain
        # one page at a time, by the API's cursor
        monkeypatch.setattr("globe_node.webui.lists.LIST_LIMIT", 2)
        first = await c.get("/ui/inbox?counterpart=BR-PF")
        assert rows(first, "inbox") == everything[:2]
        older = re.search(r'<a href="([^"]+)" rel="next" id="older">', first.text)
        assert older is not None
        assert 'id="newest"' not in first.text
        second = await c.get(older.group(1).replace("&amp;", "&"))
        assert rows(second, "inbox") == everything[2:]
        assert 'id="older"' not in second.text
        assert '<a href="/ui/inbox?counterpart=BR-PF" id="newest">' in second.text

        # the outbox page reads the outbox list and the requests, never each message
        called: list[tuple[str, str]] = []
        original = LocalApi.json

        async def recorded(self: LocalApi, method: str, path: str, **kw: Any) -> Any:
            called.append((method, path))
            return await original(self, method, path, **kw)

        monkeypatch.setattr(LocalApi, "json", recorded)
        outbox = await c.get("/ui/outbox?delivery=queued&delivery=")
        assert outbox.status == 200
        assert sorted(called) == [
            ("GET", "/api/directory/search"), ("GET", "/api/outbox"), ("GET", "/api/requests"),
        ]  # fmt: skip
        shown = await c.get("/ui/outbox?kind=information")
        _, listed = await fr.api("GET", "/api/outbox?kind=information&limit=2")
        assert rows(shown, "outbox") == [m["id"] for m in listed["messages"]]
        assert set(rows(shown, "outbox")) < set(sent)
        for m in listed["messages"]:
            assert f'<a href="/ui/messages/{m["id"]}">{m["subject"]}</a>' in shown.text
