"""Text search over the node's own decrypted store, on a real node: messages (subject,
body, attachment names), case titles and notes, every word required, accents and case
ignored, a trailing ``*`` for a prefix, FTS5's own syntax never taken from the input,
paged; rebuilt from the sealed store after a restart, and never written to disk."""

from __future__ import annotations

import pytest

from globe_node.search import SearchIndex, fts_query
from tests.node.helpers import delivered, info, problem
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def hits(rn: RunningNode, q: str, extra: str = "") -> list[tuple[str, str]]:
    status, answer = await rn.api("GET", f"/api/search?q={q}{extra}")
    assert status == 200, answer
    return [(h["kind"], h["id"]) for h in answer["hits"]]


async def test_search_finds_what_the_node_holds_and_keeps_it_in_memory(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    status, upload = await fr.upload(b"rows", "virement-societe.csv")
    assert status == 201
    sent = await fr.api("POST", "/api/messages", {
        "to": ["BR-PF"], "subject": "Virements de la Société Exemple", "body": "Zürich accounts",
        "attachments": [upload["id"]],
    })  # fmt: skip
    mid = sent[1]["id"]
    got = str(await br.n.send([fr.me], info("Payments to Panama shells", case="C-5")))
    await eventually(lambda: delivered(fr, mid, br))
    await eventually(lambda: delivered(br, got, fr))
    assert (await fr.api("POST", "/api/cases/C-5/rename", {"title": "Panama papers"}))[0] == 200
    note = (await fr.api("POST", "/api/cases/C-5/notes", {"body": "Ask Zürich again"}))[1]

    assert await hits(fr, "societe") == [("message", mid)]  # accents and case ignored
    assert set(await hits(fr, "zurich")) == {("message", mid), ("note", note["id"])}
    assert await hits(fr, "virement-societe") == [("message", mid)]  # an attachment's name
    assert set(await hits(fr, "panama")) == {("case", "C-5"), ("message", got)}
    assert await hits(fr, "panama shells") == [("message", got)]  # every word
    assert await hits(fr, "pana*") != []  # a prefix
    assert await hits(fr, "panam") == []  # a word, not a prefix
    # FTS5's syntax is words here, nothing more: no error, no trick.
    assert await hits(fr, '"panama" OR NEAR(x') == []
    assert await hits(fr, "panama%20OR%20zurich") == []
    # pages
    status, page = await fr.api("GET", "/api/search?q=zurich&limit=1&offset=1")
    assert (status, page["total"], page["offset"], len(page["hits"])) == (200, 2, 1, 1)
    first = page["hits"][0]
    assert set(first) == {"kind", "id", "case", "time", "snippet"}
    assert "[" in first["snippet"]
    assert "]" in first["snippet"]
    # refusals
    for q, detail in (("", "say what to search for: ?q=WORDS"),
                      ("%2B%2B", "'q' names at least one word to search for"),
                      ("+".join(["w"] * 17), "'q' has at most 16 words")):  # fmt: skip
        assert problem(await fr.api("GET", f"/api/search?q={q}")) == (400, "usage", detail)
    # The index lives in memory: nothing of it is on disk, and a restart rebuilds it.
    words = (b"Zurich", b"Z\xc3\xbcrich", b"Panama", b"Societe", b"Soci\xc3\xa9t\xc3\xa9")
    for path in fr.config.directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(w in data for w in words), path
    await net.stop_node(fr)
    await net.start_node(fr)
    assert await hits(fr, "panama shells") == [("message", got)]
    assert len(await hits(fr, "zurich")) == 2


def test_a_document_is_replaced_and_moved_by_its_kind_and_id() -> None:
    index = SearchIndex()
    try:
        index.put("message", "m1", None, "payments to a shell company")
        index.put("case", "m1", "C-1", "shell company case")  # same id, another kind
        index.put("message", "m2", None, "shell company accounts")
        index.put("message", "m1", None, "a bribery scheme")  # replaces m1's text
        assert len(index) == 3
        assert {(h.kind, h.id) for h in index.search(fts_query("shell"))} == {
            ("case", "m1"), ("message", "m2"),
        }  # fmt: skip
        assert [(h.kind, h.id, h.case) for h in index.search(fts_query("bribery"))] == [
            ("message", "m1", None)
        ]
        index.move("message", "m1", "C-2")
        index.move("message", "unknown", "C-3")  # nothing to move: nothing happens
        assert [(h.id, h.case) for h in index.search(fts_query("bribery"))] == [("m1", "C-2")]
        assert len(index) == 3
    finally:
        index.close()
