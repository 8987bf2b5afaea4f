"""Every view of the investigator's work, text and ``--json``, against real data from a
real node: the JSON is the local API's answer itself, and each line of text shows what
that answer holds (the message id and subject of a case's messages, a request's deadline
and acknowledged expected date, a status in words, never raw JSON).  Message ids may be
shortened to a unique prefix; an ambiguous one is refused in one line with the candidates.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from globe_io.cli import iso
from globe_node.cli import main
from protocol.ids import MessageId
from tests.node.helpers import delivered
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

DAY = 86400


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert (self.code, self.err) == (0, ""), self.err
        return orjson.loads(self.out)

    @property
    def lines(self) -> list[str]:
        assert (self.code, self.err) == (0, ""), self.err
        return self.out.splitlines()


class Cli:
    """``globe-node`` against one running node, as one of its users."""

    def __init__(self, rn: RunningNode, token: str, capfd: pytest.CaptureFixture[str]) -> None:
        self.rn, self.capfd = rn, capfd
        self.token = rn.config.directory / f"{token[:8]}.token"
        self.token.write_text(token)
        os.chmod(self.token, 0o600)

    async def __call__(self, *args: str | Path) -> Ran:
        argv = [str(a) for a in args]
        argv += ["--dir", str(self.rn.config.directory), "--token-file", str(self.token)]
        self.capfd.readouterr()
        code = await asyncio.to_thread(main, argv)
        out, err = self.capfd.readouterr()
        return Ran(code, out, err)

    async def both(self, *args: str) -> tuple[Any, list[str]]:
        """The command's ``--json`` document and its text lines."""
        return (await self(*args, "--json")).json(), (await self(*args)).lines


@pytest.fixture
async def work(net: Net, capfd: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """France's case with a request to Brazil, acknowledged; a note; France's users."""
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    fr_cli = Cli(fr, await add_user(fr.n, "lead", "supervisor"), capfd)
    br_cli = Cli(br, await add_user(br.n, "desk", "investigator"), capfd)
    opened = (await fr_cli("case", "open", "FR-9", "--title", "Harbour works", "--json")).json()
    sent = (await fr_cli("send", "--to", "BR-PF", "--kind", "request", "--subject",
                         "Harbour contracts", "--body", "Please.", "--case", "FR-9",
                         "--urgency", "priority", "--json")).json()  # fmt: skip
    mid = sent["id"]
    await eventually(lambda: delivered(fr, mid, br))
    expected = br.n.now() + 2 * DAY
    refused = await br_cli("status-update", mid[:8], "--state", "acknowledged")
    assert (refused.code, refused.out, refused.err) == (
        1, "", "globe-node: error: --state acknowledged needs --expected DATE (the answer date"
        " you expect)\n",
    )  # fmt: skip
    ack = (await br_cli("status-update", mid[:8], "--state", "acknowledged", "--expected",
                        iso(expected), "--json")).json()  # fmt: skip
    await eventually(lambda: delivered(br, ack["id"], fr))
    note = (await fr_cli("case", "note", "FR-9", "--body", "Two bidders only.", "--json")).json()
    return {"fr": fr, "br": br, "fr_cli": fr_cli, "br_cli": br_cli, "mid": mid, "ack": ack["id"],
            "expected": expected, "opened": opened, "note": note}  # fmt: skip


async def test_the_case_views(work: dict[str, Any]) -> None:
    fr_cli, mid, ack, expected = work["fr_cli"], work["mid"], work["ack"], work["expected"]
    data, lines = await fr_cli.both("case", "FR-9")
    assert (await fr_cli("case", "show", "FR-9", "--json")).json() == data
    req = data["requests"][0]
    assert (req["message"], req["state"], req["expected"]) == (mid, "acknowledged", expected)
    assert lines[:3] == [
        "case FR-9: Harbour works",
        f"  open, team -, assignee -; opened {iso(data['created'])} by lead",
        "  counterparts: BR-PF",
    ]
    assert lines[3:5] == [
        "requests:",
        f"  {mid} to BR-PF        acknowledged priority deadline {iso(req['deadline'])},"
        f" expected {iso(expected)}  case FR-9  Harbour contracts",
    ]
    times = {m["id"]: m["time"] for m in data["messages"]}
    assert lines[5:8] == [
        "messages:",
        f"  {mid} {iso(times[mid])} out FR-PNF       request          Harbour contracts",
        f"  {ack} {iso(times[ack])} in  BR-PF        status           Re: Harbour contracts"
        f" [acknowledged, answer expected {iso(expected)}]",
    ]
    note = work["note"]
    assert lines[8:] == ["notes:", f"  {iso(note['time'])} lead: Two bidders only."]
    # the list of cases and the changes, each printing the case as listed
    data, lines = await fr_cli.both("cases")
    (case,) = data["cases"]
    assert lines == [
        f"FR-9                     open   team -            assignee -               2 msgs"
        f"   1 open   0 overdue  last {iso(case['updated'])}  BR-PF  Harbour works"
    ]
    renamed = await fr_cli("case", "rename", "FR-9", "Harbour tenders")
    assert renamed.lines[0] == "case FR-9 renamed"
    assert renamed.lines[1].endswith("  BR-PF  Harbour tenders")
    assert (await fr_cli("case", "close", "FR-9")).lines[0] == "case FR-9 closed"
    assert (await fr_cli("case", "reopen", "FR-9")).lines[0] == "case FR-9 reopened"
    assigned = await fr_cli("case", "assign", "FR-9", "--assignee", "lead")
    assert assigned.lines[0] == "case FR-9 assigned"
    assert "assignee lead" in assigned.lines[1]
    bare = await fr_cli("case", "assign", "FR-9")
    assert (bare.code, bare.err) == (1, "globe-node: error: give --team, --assignee or both\n")


async def test_the_request_views(work: dict[str, Any]) -> None:
    fr_cli, br_cli, mid, expected = work["fr_cli"], work["br_cli"], work["mid"], work["expected"]
    data, lines = await fr_cli.both("requests", "--sent")
    (r,) = data["requests"]
    assert lines == [
        f"{mid} to BR-PF        acknowledged priority deadline {iso(r['deadline'])},"
        f" expected {iso(expected)}  case FR-9  Harbour contracts"
    ]
    assert (await fr_cli("requests", "--received")).lines == ["no requests"]
    theirs = (await br_cli("requests", "--received", "--json")).json()["requests"]
    assert [(x["message"], x["direction"], x["state"]) for x in theirs] == [
        (mid, "in", "acknowledged")
    ]
    # show: the request with its workflow row; the status in words, not JSON
    shown, lines = await fr_cli.both("show", mid[:6])
    assert shown["requests"][0]["expected"] == expected
    assert f"request:   {mid} to BR-PF        acknowledged priority deadline" in "\n".join(lines)
    ack, lines = await fr_cli.both("show", work["ack"])
    assert ack["content"]["status"] == {"state": "acknowledged", "expected": expected}
    assert f"status:    acknowledged, answer expected {iso(expected)}" in lines
    assert not any("{" in line for line in lines)
    # the requester extends and withdraws from the command line
    later = iso(r["deadline"] + 3 * DAY)
    ext = await fr_cli("status-update", mid[:10], "--state", "extended", "--deadline", later)
    assert ext.lines == [f"status update: message {ext.lines[0].split()[3]} queued for delivery"]
    missing = await fr_cli("status-update", mid, "--state", "withdrawn")
    assert missing.err == (
        "globe-node: error: --state withdrawn needs --reason TEXT (why you withdraw it)\n"
    )


async def test_search_stats_status_and_alerts(work: dict[str, Any]) -> None:
    fr, fr_cli, mid = work["fr"], work["fr_cli"], work["mid"]
    data, lines = await fr_cli.both("search", "harbour")
    kinds = {(h["kind"], h["id"]) for h in data["hits"]}
    assert kinds == {("case", "FR-9"), ("message", mid), ("message", work["ack"])}
    assert len(lines) == 3
    assert all(line.split()[0] in ("case", "message") for line in lines)
    assert (await fr_cli("search", "nothinghere")).lines == ["nothing found"]
    # stats: text, json and csv
    stats, lines = await fr_cli.both("stats")
    sent = [r for r in stats["rows"] if (r["direction"], r["kind"]) == ("sent", "request")]
    assert [(r["counterpart"], r["count"], r["open"]) for r in sent] == [
        ("BR-PF", 1, 1), (None, 1, 1),
    ]  # fmt: skip
    assert lines[0] == f"period {iso(stats['from'])} to {iso(stats['to'])}"
    assert any(line.startswith("sent     BR-PF        request              1  answered 0,")
               for line in lines)  # fmt: skip
    csv = await fr_cli("stats", "--format", "csv", "--from", "2020-01-01")
    assert csv.out.startswith("direction,counterpart,kind,count,")
    assert "\r\nsent,BR-PF,request,1,0,0,0,1," in csv.out
    as_json = await fr_cli("stats", "--format", "json")
    assert orjson.loads(as_json.out)["rows"] == stats["rows"]
    # status and the alert feed show the reminder of the request
    real = fr.n.clock
    fr.n.clock = lambda: real() + 30 * DAY
    try:
        (notice,) = await fr.n.reminders.check()
    finally:
        fr.n.clock = real
    status, lines = await fr_cli.both("status")
    assert [n["message"] for n in status["reminders"]["notices"]] == [mid]
    assert "reminders:  1 for you" in lines
    assert f"  {iso(notice.time)} request-overdue: {notice.detail}" in lines
    alerts, lines = await fr_cli.both("alerts")
    (alert,) = alerts["alerts"]
    assert lines == [f"{alert['id']:>5} {iso(alert['time'])} request-overdue      {notice.detail}"
                     " (for lead)"]  # fmt: skip


async def test_message_ids_by_unique_prefix(
    work: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, br, fr_cli = work["fr"], work["br"], work["fr_cli"]
    chosen = iter(["beef1" + "0" * 27, "beef2" + "0" * 27])
    monkeypatch.setattr(MessageId, "new", classmethod(lambda cls: cls.parse(next(chosen))))
    for subject in ("one", "two"):
        sent = (await fr_cli("send", "--to", "BR-PF", "--kind", "information", "--subject",
                             subject, "--body", "b", "--json")).json()  # fmt: skip
        await eventually(partial(delivered, fr, sent["id"], br))
    ambiguous = await fr_cli("show", "beef")
    assert (ambiguous.code, ambiguous.out, ambiguous.err) == (
        1, "", f"globe-node: error: message id prefix beef is ambiguous: beef1{'0' * 27},"
        f" beef2{'0' * 27}\n",
    )  # fmt: skip
    assert (await fr_cli("show", "beef2", "--json")).json()["content"]["subject"] == "two"
    # newest first, by the second: the two may share theirs with the messages sent before
    listed = [m["id"] for m in (await fr_cli("outbox", "--json")).json()["messages"]]
    assert {"beef1" + "0" * 27, "beef2" + "0" * 27} <= set(listed)
    short = await fr_cli("show", "bee")
    assert short.err == "globe-node: error: no message bee\n"
