"""The inbox's and the outbox's filters in the local API, on a real hub and three nodes.

France's PNF receives four messages from Brazil and Kenya and sends three; each
message's time is then set in the store, so that every filter (counterpart, kind,
urgency, handling code, request state, delivery state, case, period, text) and their
combinations give exact, known rows, newest first.  Pages chain by cursor, also when a
filter on the sealed content (urgency, handling) skips rows and when two messages share
a second.  A bad value is refused with the API's problem, word for word, and the
document declares every parameter the parser takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import update

from globe_node import db, queries
from globe_node.api import ROUTES
from globe_node.apidoc import openapi_document
from protocol.canonical import MAX_INT
from protocol.messages import Handling, Kind, Restriction, Tlp, Urgency
from tests.node.helpers import delivered, info, problem
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

DAY = 86400
#: The times the received and sent messages are given (Unix), oldest first.
T1, T2, T3, T4 = 1_800_000_000, 1_800_001_000, 1_800_002_000, 1_800_003_000


@dataclass
class World:
    """France (``fr``), Brazil (``br``), Kenya (``ke``), and France's messages by name:
    received ``m1``-``m4``, sent ``o1``-``o3`` and the acknowledgement of ``m2`` (``ack``)."""

    fr: RunningNode
    br: RunningNode
    ke: RunningNode
    ids: dict[str, str]

    def names(self, messages: list[dict[str, Any]]) -> list[str]:
        """The names of the listed messages, in the order listed."""
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[m["id"]] for m in messages]


async def stamp(rn: RunningNode, model: type[db.InMessage] | type[db.OutMessage],
                times: dict[str, int]) -> None:  # fmt: skip
    """Give stored messages the times (received, or sent) a test needs."""
    column = "received" if model is db.InMessage else "created"
    async with rn.n.ctx.store.write() as s:
        for mid, at in times.items():
            await s.execute(update(model).where(model.message_id == mid).values({column: at}))


@pytest.fixture
async def world(net: Net) -> World:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    deadline = fr.n.now() + 30 * DAY
    received = {
        "m1": (br, info("Shell company accounts", case="C-1")),
        "m2": (br, info("Ledger of Orion Holdings", kind=Kind.REQUEST, urgency=Urgency.URGENT,
                        handling=Handling(Tlp.RED, frozenset({Restriction.NO_ONWARD})),
                        deadline=deadline)),
        "m3": (ke, info("Regional bulletin", kind=Kind.BULLETIN, urgency=Urgency.PRIORITY,
                        handling=Handling(Tlp.GREEN), case="C-2",
                        body="Orion Holdings opened a branch.")),
        "m4": (ke, info("Beneficial owners", kind=Kind.REQUEST, handling=Handling(Tlp.CLEAR),
                        case="C-1", deadline=deadline)),
    }  # fmt: skip
    ids: dict[str, str] = {}
    for name, (sender, content) in received.items():
        ids[name] = str(await sender.n.send([fr.me], content))
        await eventually(partial(delivered, sender, ids[name], fr), what=f"{name} reached FR")
    sent = {
        "o1": ([br.me], info("Bank statements", kind=Kind.REQUEST, urgency=Urgency.URGENT,
                             handling=Handling(Tlp.RED), case="C-9", deadline=deadline)),
        "o2": ([ke.me], info("For your files", handling=Handling(Tlp.GREEN))),
        "o3": ([br.me, ke.me], info("Joint bulletin", kind=Kind.BULLETIN,
                                    urgency=Urgency.PRIORITY, handling=Handling(Tlp.CLEAR))),
    }  # fmt: skip
    for name, (to, content) in sent.items():
        ids[name] = str(await fr.n.send(to, content))
    for name, (to, _) in sent.items():
        who = [n for n in (br, ke) if n.me in to]
        await eventually(partial(delivered, fr, ids[name], *who), what=f"{name} delivered")
    # France acknowledges Brazil's request (a status update it sends); Kenya's stays received
    ack = {"state": "acknowledged", "expected": fr.n.now() + DAY}
    status, made = await fr.api("POST", f"/api/messages/{ids['m2']}/status", ack)
    assert status == 201, made
    ids["ack"] = made["id"]
    await eventually(partial(delivered, fr, ids["ack"], br), what="the acknowledgement delivered")
    await stamp(fr, db.InMessage, {ids["m1"]: T1, ids["m2"]: T2, ids["m3"]: T3, ids["m4"]: T4})
    await stamp(fr, db.OutMessage,
                {ids["o1"]: T1, ids["o2"]: T2, ids["o3"]: T3, ids["ack"]: T4})  # fmt: skip
    return World(fr, br, ke, ids)


async def listed(w: World, route: str, **query: str) -> tuple[list[str], Any]:
    """The names a list answers ``query`` with, and its whole answer."""
    status, answer = await w.fr.api("GET", f"{route}?{urlencode(query)}")
    assert status == 200, answer
    return w.names(answer["messages"]), answer


#: (query, the inbox's rows): each filter alone, then together.
INBOX_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, ["m4", "m3", "m2", "m1"]),
    ({"counterpart": "BR-PF"}, ["m2", "m1"]),
    ({"counterpart": "KE-EACC"}, ["m4", "m3"]),
    ({"counterpart": "DE-BKA"}, []),
    ({"kind": "request"}, ["m4", "m2"]),
    ({"kind": "bulletin"}, ["m3"]),
    ({"kind": "answer"}, []),
    ({"urgency": "urgent"}, ["m2"]),
    ({"urgency": "routine"}, ["m4", "m1"]),
    ({"tlp": "GREEN"}, ["m3"]),
    ({"tlp": "AMBER"}, ["m1"]),
    ({"tlp": "AMBER+STRICT"}, []),
    ({"state": "acknowledged"}, ["m2"]),
    ({"state": "received"}, ["m4"]),
    ({"state": "answered"}, []),
    ({"case": "C-1"}, ["m4", "m1"]),
    ({"case": "C-3"}, []),
    ({"since": str(T2)}, ["m4", "m3", "m2"]),
    ({"until": str(T3)}, ["m2", "m1"]),
    ({"since": str(T2), "until": str(T3)}, ["m2"]),
    ({"since": str(T3), "until": str(T3)}, []),
    ({"since": str(T4), "until": str(T1)}, []),
    ({"q": "orion"}, ["m3", "m2"]),
    ({"q": "ORI*"}, ["m3", "m2"]),
    ({"q": "orion branch"}, ["m3"]),
    ({"q": "zebra"}, []),
    ({"counterpart": "KE-EACC", "kind": "request"}, ["m4"]),
    ({"case": "C-1", "urgency": "routine", "tlp": "CLEAR"}, ["m4"]),
    ({"q": "orion", "counterpart": "BR-PF"}, ["m2"]),
    ({"q": "orion", "tlp": "RED", "state": "acknowledged", "since": str(T2)}, ["m2"]),
    ({"kind": "request", "urgency": "priority"}, []),
]  # fmt: skip

#: (query, the outbox's rows).
OUTBOX_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, ["ack", "o3", "o2", "o1"]),
    ({"counterpart": "KE-EACC"}, ["o3", "o2"]),
    ({"counterpart": "BR-PF"}, ["ack", "o3", "o1"]),
    ({"kind": "information"}, ["o2"]),
    ({"kind": "status"}, ["ack"]),
    ({"urgency": "urgent"}, ["ack", "o1"]),
    ({"tlp": "CLEAR"}, ["o3"]),
    ({"state": "sent"}, ["o1"]),
    ({"state": "received"}, []),
    ({"delivery": "delivered"}, ["ack", "o3", "o2", "o1"]),
    ({"delivery": "failed"}, []),
    ({"case": "C-9"}, ["o1"]),
    ({"since": str(T2)}, ["ack", "o3", "o2"]),
    ({"until": str(T2)}, ["o1"]),
    ({"q": "statements"}, ["o1"]),
    ({"counterpart": "BR-PF", "urgency": "priority", "delivery": "delivered"}, ["o3"]),
    ({"counterpart": "KE-EACC", "tlp": "RED"}, []),
]


@pytest.mark.slow
async def test_each_filter_and_their_combinations_give_exactly_their_rows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    for query, want in INBOX_CASES:
        names, answer = await listed(w, "/api/inbox", **query)
        assert names == want, query
        assert answer["next"] is None, query
    for query, want in OUTBOX_CASES:
        names, answer = await listed(w, "/api/outbox", **query)
        assert names == want, query
    # a text search matching more messages than SQL is given a list of: checked row by row
    monkeypatch.setattr(queries, "MAX_BOUND_IDS", 1)
    for route, cases in (("/api/inbox", INBOX_CASES), ("/api/outbox", OUTBOX_CASES)):
        for query, want in cases:
            if "q" in query:
                assert (await listed(w, route, limit="1", **query))[0] == want[:1], query
    # the outbox names each message's subject, urgency and handling code, and who got it
    _, out = await listed(w, "/api/outbox", counterpart="BR-PF")
    assert [(m["subject"], m["kind"], m["urgency"], m["tlp"], m["case"], m["created"],
             sorted(m["recipients"]), {r["state"] for r in m["recipients"].values()})
            for m in out["messages"]] == [
        ("Re: Ledger of Orion Holdings", "status", "urgent", "RED", None, T4, ["BR-PF"],
         {"delivered"}),
        ("Joint bulletin", "bulletin", "priority", "CLEAR", None, T3, ["BR-PF", "KE-EACC"],
         {"delivered"}),
        ("Bank statements", "request", "urgent", "RED", "C-9", T1, ["BR-PF"], {"delivered"}),
    ]  # fmt: skip
    # unread: what France has not opened yet (opening one marks it read)
    assert (await w.fr.api("GET", f"/api/messages/{w.ids['m1']}"))[0] == 200
    assert (await listed(w, "/api/inbox", unread="1"))[0] == ["m4", "m3", "m2"]
    assert (await listed(w, "/api/inbox", unread="1", counterpart="BR-PF"))[0] == ["m2"]


@pytest.mark.slow
async def test_pages_chain_by_cursor_whatever_the_filter_skips(world: World) -> None:
    w = world

    async def pages(route: str, **query: str) -> list[list[str]]:
        out: list[list[str]] = []
        cursor = ""
        while True:
            names, answer = await listed(w, route, limit="1", cursor=cursor, **query)
            out.append(names)
            if answer["next"] is None:
                return out
            cursor = answer["next"]

    assert await pages("/api/inbox") == [["m4"], ["m3"], ["m2"], ["m1"]]
    assert await pages("/api/inbox", urgency="routine") == [["m4"], ["m1"]]
    assert await pages("/api/inbox", tlp="RED") == [["m2"]]
    assert await pages("/api/outbox") == [["ack"], ["o3"], ["o2"], ["o1"]]
    assert await pages("/api/outbox", counterpart="BR-PF") == [["ack"], ["o3"], ["o1"]]
    # a page of two, then the rest; the cursor is the last listed message's place
    names, first = await listed(w, "/api/inbox", limit="2")
    assert names == ["m4", "m3"]
    assert first["next"].startswith(f"{T3}.")
    assert (await listed(w, "/api/inbox", limit="2", cursor=first["next"]))[0] == ["m2", "m1"]
    # two messages of the same second: the later stored first, neither lost nor repeated
    await stamp(w.fr, db.InMessage, {w.ids["m2"]: T2, w.ids["m3"]: T2})
    assert await pages("/api/inbox") == [["m4"], ["m3"], ["m2"], ["m1"]]
    await stamp(w.fr, db.OutMessage, {w.ids["o1"]: T2, w.ids["o2"]: T2})
    first, second = sorted(["o1", "o2"], key=lambda name: w.ids[name])  # by message id
    assert await pages("/api/outbox") == [["ack"], ["o3"], [first], [second]]
    # a cursor past everything: an empty last page
    assert await listed(w, "/api/inbox", cursor="0.0") == ([], {"messages": [], "next": None})


#: (route, query, the refusal's detail): each bad value, refused before anything is read.
REFUSALS: list[tuple[str, str, str]] = [
    ("/api/inbox", "kind=note", "'kind' is a message kind"),
    ("/api/inbox", "urgency=asap", "'urgency' is urgent, priority or routine"),
    ("/api/inbox", "tlp=WHITE", "'tlp' is a TLP level"),
    ("/api/inbox", "tlp=AMBER STRICT", "'tlp' is a TLP level"),
    ("/api/inbox", "state=lost", "'state' is a request's state"),
    ("/api/inbox", "counterpart=fr-pnf", "'counterpart' is an authority id (CC-NAME)"),
    ("/api/inbox", "case=-C1", "'case' is a case reference"),
    ("/api/inbox", "since=-1", f"'since' is an integer 0-{MAX_INT}"),
    ("/api/inbox", "until=tomorrow", f"'until' is an integer 0-{MAX_INT}"),
    ("/api/inbox", f"since={MAX_INT + 1}", f"'since' is an integer 0-{MAX_INT}"),
    ("/api/inbox", "cursor=1800000000", "'cursor' is the 'next' of a previous page (TIME.KEY)"),
    ("/api/inbox", "cursor=1.XYZ", "'cursor' is the 'next' of a previous page (TIME.KEY)"),
    ("/api/inbox", "q=%21%3F", "'q' names at least one word to search for"),
    ("/api/inbox", "q=" + "+".join("w" * 17), "'q' has at most 16 words"),
    ("/api/inbox", "q=" + "a" * 201,
     "'q' is at most 200 characters without control, bidi or zero-width characters"),
    ("/api/inbox", "limit=0", "'limit' is an integer 1-1000"),
    ("/api/outbox", "delivery=read", "'delivery' is queued, sent, delivered or failed"),
    ("/api/outbox", "state=open", "'state' is a request's state"),
    ("/api/outbox", "q=%E2%80%AEevil", "'q' is at most 200 characters without control, bidi or"
     " zero-width characters"),
]  # fmt: skip


@pytest.mark.slow
async def test_a_bad_value_is_refused_with_its_problem(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    for route, query, detail in REFUSALS:
        assert problem(await fr.api("GET", f"{route}?{query}")) == (400, "usage", detail), query
    # what a route does not declare is not read: the inbox has no delivery state
    assert await fr.api("GET", "/api/inbox?delivery=read") == (
        200, {"messages": [], "next": None}
    )  # fmt: skip


def test_the_document_declares_every_filter_the_parser_takes() -> None:
    paths = openapi_document(ROUTES)["paths"]
    shared = ["counterpart", "kind", "urgency", "tlp", "state"]
    period = ["case", "since", "until", "q"]
    inbox = paths["/api/inbox"]["get"]["parameters"]
    outbox = paths["/api/outbox"]["get"]["parameters"]
    assert [p["name"] for p in inbox] == [*shared, *period, "unread", "limit", "cursor"]
    assert [p["name"] for p in outbox] == [*shared, "delivery", *period, "limit", "cursor"]
    schemas = {p["name"]: p["schema"] for p in outbox}
    assert schemas["delivery"]["enum"] == ["", "delivered", "failed", "queued", "sent"]
    assert schemas["kind"]["enum"] == ["", *sorted(k.value for k in Kind)]
    assert schemas["since"] == {"type": "integer", "minimum": 0, "maximum": MAX_INT}
    assert schemas["cursor"] == {"type": "string",
                                 "pattern": "^(?:[0-9]{1,16}\\.[0-9a-f]{1,32})?$"}  # fmt: skip
    assert all(p["in"] == "query" and not p["required"] for p in inbox + outbox)
