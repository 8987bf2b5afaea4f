"""How the daemon's answers read for people: ``status``, ``inbox`` and ``outbox``, ``show``
(with download progress on a terminal), ``cases``, ``case``, ``stats``, ``directory
search``, ``ping`` and ``alerts`` rendered from what the local API answers (built by the
view classes' own ``to_json``, so a changed shape fails here), tolerating what a daemon
should not answer, control and bidi characters made visible; and ``audit`` exiting 1
when the hash chain does not verify."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

import globe_io.cli
from globe_node.alerts import AlertView
from globe_node.api import ROUTES
from globe_node.apidoc import openapi_document
from globe_node.apiresults import content_json
from globe_node.peerheads import Behind
from globe_node.stats import to_csv
from globe_node.views import InboxItem, InMeta, NodeStatus, OutboxItem, OutMeta, RecipientState
from globe_node.workviews import (
    CaseInfo,
    CasePage,
    CaseView,
    NoteView,
    RequestPage,
    RequestView,
    SearchHit,
    SearchPage,
    StatsReport,
    StatsRow,
    ThreadItem,
)
from protocol.ids import AuthorityId, MessageId
from protocol.messages import (
    Attachment,
    Consent,
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
)
from tests.node.helpers import ATTACHMENT, MESSAGES, Daemon, Ran


def status_view(**changes: Any) -> dict[str, Any]:
    """What ``GET /api/status`` answers (:class:`NodeStatus`), with ``changes``."""
    base: dict[str, Any] = {
        "authority": "FR-PNF", "membership": "suspended", "seq": 7,
        "head": "0123456789abcdefXYZ", "age_s": None, "max_age_s": 60, "members": 4,
        "behind_peer": None, "hub_url": "http://hub", "hub_reachable": None,
        "push_connected": False, "requests_open": 2, "requests_overdue": 1, "alerts": 2,
    }  # fmt: skip
    return NodeStatus(**{**base, **changes}).to_json()


def recipient(state: str, via: str | None = None, error: str | None = None) -> RecipientState:
    return RecipientState(state, via, 3 if error else 0, error, None)


async def test_status_and_lists_render_for_people(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    daemon.answers["status"] = status_view()
    ran = await daemon_cli("status")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "authority:  FR-PNF (membership: suspended)",
        "directory:  entry 7, head 0123456789abcdef, - s old (limit 60 s), 4 members",
        "hub:        http://hub not tried yet, push not connected",
        "outbox:     empty",
        "inbox:      0 unread",
        "requests:   2 open, 1 overdue",
        "alerts:     2",
        "reminders:  none for you",
        "disk:       database 0.0 MB, attachments 0.0 MB, staged uploads 0.0 MB; 0.0 MB free",
        "WARNING:    this node is suspended: the hub and every peer refuse what it sends and it"
        " receives nothing; 'globe-node alerts' says at which log entry and why",
    ]
    notice = AlertView(5, "request-overdue", "request r1 to BR-PF was due", 1_800_000_000,
                       "7" * 32, "alice")  # fmt: skip
    daemon.answers["status"] = status_view(
        membership="active", age_s=12, hub_reachable=False, push_connected=True,
        outbox={"queued": 2, "sent": 1}, inbox_unread=3, reminders=(notice,), hook_runs=4,
        hook_failures=1, behind_peer=Behind("BR-PF", 9, 1_800_000_000),
        database_bytes=2_500_000, blob_bytes=40_000_000, upload_bytes=0,
        free_bytes=9_000_000_000,
    )  # fmt: skip
    assert (await daemon_cli("status")).out.splitlines() == [
        "authority:  FR-PNF (membership: active)",
        "directory:  entry 7, head 0123456789abcdef, 12 s old (limit 60 s), 4 members",
        "hub:        http://hub unreachable, push connected",
        "outbox:     queued 2, sent 1",
        "inbox:      3 unread",
        "requests:   2 open, 1 overdue",
        "alerts:     2",
        "reminders:  1 for you",
        "  2027-01-15T08:00:00Z request-overdue: request r1 to BR-PF was due",
        "WARNING:    the reminder command failed 1 of 4 times (see the daemon's log)",
        "disk:       database 2.5 MB, attachments 40.0 MB, staged uploads 0.0 MB; 9000.0 MB free",
        "WARNING:    BR-PF has seen a membership log of 9 entries that the hub does not serve"
        " (since 2027-01-15T08:00:00Z); messages received meanwhile are marked suspect"
        " (see: globe-node alerts)",
    ]
    # what the daemon does not say (a size it could not read) shows as "-"
    daemon.answers["status"]["disk"] = {"database_bytes": 1_000_000, "free_bytes": None}
    assert "disk:       database 1.0 MB, attachments -, staged uploads -; - free" in (
        (await daemon_cli("status")).out.splitlines()
    )

    daemon.answers["inbox"] = {"messages": [
        InboxItem("a" * 32, "BR-PF", "request", "S", "urgent", "RED", None, 1_800_000_000,
                  "hub", True, "in-order", 2, None).to_json(),
        InboxItem("c" * 32, "KE-EACC", "information", "News", "routine", "AMBER+STRICT", "C-1",
                  1_800_000_060, "direct", False, "gap", 0, "sent while suspended").to_json(),
        "not an object",  # the daemon is not trusted to be well-formed
    ]}  # fmt: skip
    ran = await daemon_cli("inbox", "--limit", "5", "--unread")
    assert ran.out.splitlines() == [
        f"  {'a' * 32} 2027-01-15T08:00:00Z BR-PF        request          urgent   "
        "TLP:RED          - S [2 att]",
        f"* {'c' * 32} 2027-01-15T08:01:00Z KE-EACC      information      routine  "
        "TLP:AMBER+STRICT C-1 News [SUSPECT]",
    ]
    assert daemon.requests[-1][:2] == ("GET", "/api/inbox?limit=5&unread=1")
    daemon.answers["inbox"] = {"messages": []}
    assert (await daemon_cli("inbox")).out == "no messages\n"

    recipients = {
        "KE-EACC": recipient("queued", error="cannot reach the hub"),
        "BR-PF": recipient("delivered", via="direct"),
    }
    daemon.answers["outbox"] = {"messages": [
        OutboxItem("b" * 32, "information", "S", "routine", "AMBER", "C-1", 1_800_000_000,
                   recipients).to_json(),
        {**OutboxItem("d" * 32, "request", "S", "urgent", "RED", None, 1_800_000_000,
                     {}).to_json(),
         "recipients": {"DE-BKA": "junk"}},
    ]}  # fmt: skip
    ran = await daemon_cli("outbox")
    assert ran.out.splitlines() == [
        f"{'b' * 32} 2027-01-15T08:00:00Z information      C-1  BR-PF:delivered via direct; "
        "KE-EACC:queued (cannot reach the hub, 3 attempts)",
        f"{'d' * 32} 2027-01-15T08:00:00Z request          -  DE-BKA:-",
    ]
    daemon.answers["outbox"] = {"messages": "junk"}
    assert (await daemon_cli("outbox")).out == "no messages\n"


#: The schema of ``GET /api/messages/{id}``'s answer, as the node's document states it.
MESSAGE = OAS31Validator(
    {"$ref": "#/components/schemas/Message", "components": openapi_document(ROUTES)["components"]}
)


def held(monkeypatch: pytest.MonkeyPatch, key: str, answer: dict[str, Any]) -> None:
    """The stand-in daemon answers ``answer`` for message ``key``: a message as the local
    API shows it (the document's schema says so first)."""
    MESSAGE.validate(answer)
    monkeypatch.setitem(MESSAGES, key, answer)


def attachment(name: str, size: int, media_type: str) -> Attachment:
    return Attachment(name, size, media_type, b"\x01" * 32, b"\x02" * 32, "0" * 32)


def request_row(**changes: Any) -> RequestView:
    """A request's workflow row as the API gives it (:class:`RequestView`)."""
    base: dict[str, Any] = {
        "message": "7" * 32, "direction": "out", "counterpart": "BR-PF", "case": "C-9",
        "team": None, "subject": "Accounts", "urgency": "urgent", "tlp": "RED",
        "restrictions": (), "state": "acknowledged", "created": 1_800_000_000,
        "deadline": 1_900_000_000, "asked": 1_900_000_000, "expected": 1_850_000_000,
        "first_response": 1_800_000_100, "answered": None, "ended": None, "overdue": False,
        "due_soon": False,
    }  # fmt: skip
    return RequestView(**{**base, **changes})


async def test_show_renders_received_and_sent_messages(
    tmp_path: Path,
    daemon: Daemon,
    daemon_cli: Callable[..., Awaitable[Ran]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``show`` of what ``GET /api/messages/{id}`` answers: content, meta, filing, requests."""
    urgent, red = Urgency.URGENT, Handling(Tlp.RED, frozenset(Restriction))
    progress = StatusUpdate(StatusState.IN_PROGRESS, 1_850_000_000)
    sent = MessageContent(
        Kind.STATUS, "Re: Accounts", "Working on it.\n\x1b[31mred", "en", urgent, red, "C-9",
        deadline=1_900_000_000, status=progress,
    )  # fmt: skip
    to = {"KE-EACC": recipient("queued"), "BR-PF": recipient("delivered", via="hub")}
    out_meta = OutMeta("FR-PNF", 1_800_000_100, to)
    held(monkeypatch, "out1", {
        "direction": "out", "content": content_json(sent), "meta": out_meta.to_json(),
        "case": "C-9", "requests": [],
    })  # fmt: skip
    ran = await daemon_cli("show", "out1")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "to:        BR-PF (delivered), KE-EACC (queued) (created 2027-01-15T08:01:40Z)",
        "kind:      status   urgency: urgent   TLP:RED intelligence-only, no-onward-dissemination",
        "subject:   Re: Accounts",
        "case:      C-9",
        "language:  en",
        "deadline:  2030-03-17T17:46:40Z",
        "status:    in-progress, answer expected 2028-08-16T00:53:20Z",
        "",
        "Working on it.",
        "?[31mred",
    ]
    asked = MessageContent(
        Kind.REQUEST, "Accounts", "Please.", "en", urgent, Handling(Tlp.AMBER),
        deadline=1_900_000_000,
    )  # fmt: skip
    rows = [request_row(case=None).to_json(),
            request_row(counterpart="KE-EACC", case=None, state="sent", expected=None,
                        first_response=None, overdue=True).to_json()]  # fmt: skip
    held(monkeypatch, "req1", {
        "direction": "out", "content": content_json(asked),
        "meta": OutMeta("FR-PNF", 1_800_000_000, to).to_json(), "case": "C-4",
        "requests": rows,
    })  # fmt: skip
    ran = await daemon_cli("show", "req1")
    assert ran.out.splitlines() == [
        "to:        BR-PF (delivered), KE-EACC (queued) (created 2027-01-15T08:00:00Z)",
        "kind:      request   urgency: urgent   TLP:AMBER",
        "subject:   Accounts",
        "case:      C-4 (filed here)",
        "language:  en",
        "deadline:  2030-03-17T17:46:40Z",
        f"request:   {'7' * 32} to BR-PF        acknowledged urgent   deadline"
        " 2030-03-17T17:46:40Z, expected 2028-08-16T00:53:20Z  case -  Accounts",
        f"request:   {'7' * 32} to KE-EACC      sent         urgent   deadline"
        " 2030-03-17T17:46:40Z OVERDUE  case -  Accounts",
        "",
        "Please.",
    ]
    # a terminal shows download progress on stderr (the size is unknown: chunked)
    decided = MessageContent(
        Kind.CONSENT_DECISION, "Re: Consent", "Granted.", "fr", Urgency.PRIORITY,
        Handling(Tlp.AMBER), in_reply_to=MessageId.parse("f" * 32),
        attachments=(attachment("a.pdf", len(ATTACHMENT), "application/pdf"),),
        consent=Consent(MessageId.parse("e" * 32), (AuthorityId.parse("KE-EACC"),),
                        decision=ConsentDecision.GRANTED),
    )  # fmt: skip
    in_meta = InMeta("BR-PF", 1_800_000_000, "direct", "gap", 4, None, "same", None)
    held(monkeypatch, "in1", {
        "direction": "in", "content": content_json(decided), "meta": in_meta.to_json(),
        "case": None, "requests": [],
    })  # fmt: skip
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    save = tmp_path / "saved"
    ran = await daemon_cli("show", "in1", "--save-attachments", save)
    assert ran.code == 0
    assert ran.out.splitlines() == [
        "from:      BR-PF (received 2027-01-15T08:00:00Z via direct, gap)",
        "kind:      consent-decision   urgency: priority   TLP:AMBER",
        "subject:   Re: Consent",
        f"reply to:  {'f' * 32}",
        "language:  fr",
        f"consent:   granted for message {'e' * 32} to KE-EACC",
        f"attachment 1: a.pdf ({len(ATTACHMENT)} bytes, application/pdf)",
        "",
        "Granted.",
        f"saved attachment 1 to {save / 'a.pdf'} ({len(ATTACHMENT)} bytes)",
    ]
    assert ran.err.startswith("\ra.pdf: ")
    assert ran.err.endswith(f"\ra.pdf: {len(ATTACHMENT)} bytes")
    assert (save / "a.pdf").read_bytes() == ATTACHMENT


async def test_show_renders_forwards_suspects_consent_requests_and_every_status(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]], monkeypatch: pytest.MonkeyPatch
) -> None:
    amber = Handling(Tlp.AMBER)
    original = MessageContent(Kind.INFORMATION, "Ledger", "The ledger.", "en", Urgency.ROUTINE,
                              amber)  # fmt: skip
    passed_on = MessageContent(Kind.INFORMATION, "Fwd: Ledger", "For your case.", "en",
                               Urgency.ROUTINE, amber)  # fmt: skip
    forwarded = {
        "originator": "KE-EACC", "message": "a1" * 16, "created": 1_800_000_000,
        "recipients": ["BR-PF"], "content": content_json(original),
        "consents": [{"from": "KE-EACC", "to": ["FR-PNF"]}],
    }  # fmt: skip
    suspect = "received while BR-PF had signed a membership log of 9 entries"
    in_meta = InMeta("BR-PF", 1_800_000_000, "hub", "in-order", 5, 1_800_000_100,
                     "peer-ahead", suspect)  # fmt: skip
    held(monkeypatch, "fwd1", {
        "direction": "in", "content": {**content_json(passed_on), "forwarded": forwarded},
        "meta": in_meta.to_json(), "case": None, "requests": [],
    })  # fmt: skip
    ran = await daemon_cli("show", "fwd1")
    assert ran.out.splitlines() == [
        "from:      BR-PF (received 2027-01-15T08:00:00Z via hub, in-order)",
        f"SUSPECT:   {suspect}",
        "kind:      information   urgency: routine   TLP:AMBER",
        "subject:   Fwd: Ledger",
        "language:  en",
        "",
        "For your case.",
        "",
        f"--- forwarded: written by KE-EACC (message {'a1' * 16}, 2027-01-15T08:00:00Z),"
        " signature verified ---",
        "consent:   KE-EACC granted onward use to FR-PNF",
        "to:        BR-PF (created 2027-01-15T08:00:00Z)",
        "kind:      information   urgency: routine   TLP:AMBER",
        "subject:   Ledger",
        "language:  en",
        "",
        "The ledger.",
    ]
    asking = Consent(MessageId.parse("e" * 32), (AuthorityId.parse("DE-BKA"),), "A joint team.")
    asked = MessageContent(
        Kind.CONSENT_REQUEST, "Consent", "May we?", "en", Urgency.ROUTINE, amber,
        in_reply_to=MessageId.parse("e" * 32), consent=asking,
    )  # fmt: skip
    out_meta = OutMeta("FR-PNF", 1_800_000_000, {"KE-EACC": recipient("sent", via="hub")})
    answer: dict[str, Any] = {"direction": "out", "meta": out_meta.to_json(), "case": None,
                              "requests": []}  # fmt: skip
    held(monkeypatch, "ask1", {**answer, "content": content_json(asked)})
    assert f"consent:   asked for message {'e' * 32} to DE-BKA: A joint team." in (
        (await daemon_cli("show", "ask1")).out.splitlines()
    )
    updates = {
        "ext1": StatusUpdate(StatusState.EXTENDED, deadline=1_900_000_000),
        "dec1": StatusUpdate(StatusState.DECLINED, reason="not competent"),
    }
    for key, update in updates.items():
        said = MessageContent(Kind.STATUS, "Re: Accounts", "s", "en", Urgency.ROUTINE, amber,
                              in_reply_to=MessageId.parse("e" * 32), status=update)  # fmt: skip
        held(monkeypatch, key, {**answer, "content": content_json(said)})
    assert "status:    extended, new deadline 2030-03-17T17:46:40Z" in (
        (await daemon_cli("show", "ext1")).out.splitlines()
    )
    assert "status:    declined: not competent" in (await daemon_cli("show", "dec1")).out


def test_progress_with_a_known_size(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    show = globe_io.cli.progress("f.pdf")
    assert show is not None
    show(50, 200)
    show(200, 200)
    assert capsys.readouterr().err == "\rf.pdf:  25% of 200 bytes\rf.pdf: 100% of 200 bytes\n"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert globe_io.cli.progress("f.pdf") is None


def case_info(ref: str, **changes: Any) -> CaseInfo:
    """A case record as the API gives it (:class:`CaseInfo`)."""
    base: dict[str, Any] = {
        "case": ref, "title": None, "team": None, "assignee": None, "state": "open",
        "created": 1_800_000_000, "created_by": "alice", "updated": 1_800_000_000,
        "counterparts": (), "message_count": 0, "open": 0, "overdue": 0,
    }  # fmt: skip
    return CaseInfo(**{**base, **changes})


def stats_row(direction: str, counterpart: str | None, kind: str, count: int) -> StatsRow:
    return StatsRow(direction, counterpart, kind, count, 0, 0, 0, 0, None, None, None, None)


async def test_cases_stats_search_ping_alerts_render(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    one = case_info("C-1", title="Shell companies", team="fin", assignee="alice",
                    counterparts=("BR-PF", "KE-EACC"), message_count=3, open=1)  # fmt: skip
    two = case_info("C-2", state="closed", counterparts=("BR-PF",), message_count=1)
    daemon.answers["cases"] = CasePage((one, two), 5, 0, 2).to_json()
    assert (await daemon_cli("cases")).out.splitlines() == [
        "C-1                      open   team fin          assignee alice           3 msgs"
        "   1 open   0 overdue  last 2027-01-15T08:00:00Z  BR-PF,KE-EACC  Shell companies",
        "C-2                      closed team -            assignee -               1 msgs"
        "   0 open   0 overdue  last 2027-01-15T08:00:00Z  BR-PF",
        "(1-2 of 5: --offset 2 for more)",
    ]
    daemon.answers["cases"] = CasePage((), 0, 0, 50).to_json()
    assert (await daemon_cli("cases")).out == "no cases\n"
    daemon.answers["case"] = CaseView(case_info("C-1"), (), (), ()).to_json()
    assert (await daemon_cli("case", "C-1")).out.splitlines() == [
        "case C-1",
        "  open, team -, assignee -; opened 2027-01-15T08:00:00Z by alice",
        "  counterparts: -",
    ]
    thread = (
        ThreadItem("7" * 32, "out", "FR-PNF", "request", "Accounts", 1_800_000_000, None, None,
                   None, None),
        ThreadItem("9" * 32, "in", "BR-PF", "status", "Re: Accounts", 1_800_000_100, "7" * 32,
                   "acknowledged", 1_850_000_000, None),
    )  # fmt: skip
    notes = (NoteView("n1", "C-1", "bob", 1_800_000_200, "Call them.\nTomorrow."),)
    request = request_row(case="C-1", overdue=True)
    daemon.answers["case"] = CaseView(one, (request,), thread, notes).to_json()
    assert (await daemon_cli("case", "C-1")).out.splitlines() == [
        "case C-1: Shell companies",
        "  open, team fin, assignee alice; opened 2027-01-15T08:00:00Z by alice",
        "  counterparts: BR-PF, KE-EACC",
        "requests:",
        f"  {'7' * 32} to BR-PF        acknowledged urgent   deadline 2030-03-17T17:46:40Z"
        " OVERDUE, expected 2028-08-16T00:53:20Z  case C-1  Accounts",
        "messages:",
        f"  {'7' * 32} 2027-01-15T08:00:00Z out FR-PNF       request          Accounts",
        f"  {'9' * 32} 2027-01-15T08:01:40Z in  BR-PF        status           Re: Accounts"
        " [acknowledged, answer expected 2028-08-16T00:53:20Z]",
        "notes:",
        "  2027-01-15T08:03:20Z bob: Call them.",
        "      Tomorrow.",
    ]
    timed = dataclasses.replace(
        stats_row("sent", "BR-PF", "request", 2), answered=1, open=1,
        first_response_median_s=7200, first_response_p90_s=7200,
        answer_median_s=3 * 86400, answer_p90_s=3 * 86400,
    )  # fmt: skip
    rows = (timed, stats_row("received", "KE-EACC", "information", 4),
            dataclasses.replace(timed, counterpart=None))  # fmt: skip
    daemon.answers["stats"] = StatsReport(0, 1_800_000_000, rows).to_json()
    assert (await daemon_cli("stats")).out.splitlines() == [
        "period 1970-01-01T00:00:00Z to 2027-01-15T08:00:00Z",
        "sent     BR-PF        request              2  answered 1, declined 0, withdrawn 0,"
        " open 1; first response 2.0 h (p90 2.0 h), answer 3.0 d (p90 3.0 d)",
        "received KE-EACC      information          4",
        "sent     all          request              2  answered 1, declined 0, withdrawn 0,"
        " open 1; first response 2.0 h (p90 2.0 h), answer 3.0 d (p90 3.0 d)",
    ]
    daemon.answers["stats"] = StatsReport(0, 1_800_000_000, ()).to_json()
    assert (await daemon_cli("stats")).out.splitlines() == [
        "period 1970-01-01T00:00:00Z to 2027-01-15T08:00:00Z",
        "nothing exchanged in this period",
    ]
    daemon.answers["search"] = {"results": [
        {"authority": "BR-PF", "name": "Policia Federal", "country": "BR", "kinds": ["fiu"],
         "languages": ["pt"], "status": "active", "endpoint": "https://br.example",
         "fingerprint": "123", "profile": None, "reasons": []},
        {"authority": "KE-EACC", "name": "EACC", "country": "KE", "kinds": [],
         "languages": [], "status": "revoked", "endpoint": None, "fingerprint": "456",
         "profile": None, "reasons": []},
    ]}  # fmt: skip
    ran = await daemon_cli("directory", "search", "--country", "br", "--inactive", "--kind", "fiu")
    assert ran.out.splitlines() == [
        "BR-PF                active     fiu                          pt         Policia Federal",
        "                     fingerprint 123  endpoint https://br.example",
        "KE-EACC              revoked                                            EACC",
        "                     fingerprint 456",
    ]
    assert daemon.requests[-1][:2] == (
        "GET", "/api/directory/search?country=BR&kind=fiu&inactive=1"
    )  # fmt: skip
    daemon.answers["search"] = {"results": []}
    assert (await daemon_cli("directory", "search")).out == "no matching members\n"
    daemon.answers["ping"] = {"authority": "BR-PF", "direct": {"ok": False, "ms": None,
                              "error": "timeout"}, "hub": {"ok": True, "ms": None}}  # fmt: skip
    assert (await daemon_cli("ping", "BR-PF")).out == "BR-PF: direct: failed (timeout); hub: ok\n"
    daemon.answers["ping"] = {"authority": "BR-PF", "direct": {"ok": True, "ms": 1.25,
                              "error": None}, "hub": {"ok": False, "ms": None}}  # fmt: skip
    assert (await daemon_cli("ping", "BR-PF")).out == "BR-PF: direct: ok in 1.2 ms; hub: failed\n"
    daemon.answers["alerts"] = {"alerts": [
        AlertView(3, "conflict", "twice\u202e", 1_800_000_000).to_json(),
        AlertView(4, "request-overdue", "request r1 was due", 1_800_000_000, "7" * 32,
                  "alice").to_json(),
    ]}  # fmt: skip
    assert (await daemon_cli("alerts")).out.splitlines() == [
        "    3 2027-01-15T08:00:00Z conflict             twice?",
        "    4 2027-01-15T08:00:00Z request-overdue      request r1 was due (for alice)",
    ]
    daemon.answers["alerts"] = {"alerts": []}
    assert (await daemon_cli("alerts")).out == "no alerts\n"


async def test_requests_search_and_csv_render(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    mine = request_row(message="8" * 32, state="sent", expected=None, due_soon=True)
    theirs = request_row(direction="in", counterpart="KE-EACC", case=None, urgency="routine",
                         state="in-progress", subject="Records\u202e")  # fmt: skip
    daemon.answers["requests"] = RequestPage((mine, theirs), 3, 0, 2).to_json()
    ran = await daemon_cli("requests", "--sent", "--due-within", "7", "--limit", "2")
    assert ran.out.splitlines() == [
        f"{'8' * 32} to BR-PF        sent         urgent   deadline 2030-03-17T17:46:40Z"
        " due soon  case C-9  Accounts",
        f"{'7' * 32} from KE-EACC      in-progress  routine  deadline 2030-03-17T17:46:40Z,"
        " expected 2028-08-16T00:53:20Z  case -  Records?",
        "(1-2 of 3: --offset 2 for more)",
    ]
    assert daemon.requests[-1][:2] == (
        "GET", "/api/requests?direction=out&due_within=7&limit=2&offset=0"
    )  # fmt: skip
    daemon.answers["requests"] = RequestPage((), 0, 0, 50).to_json()
    assert (await daemon_cli("requests")).out == "no requests\n"
    hits = (SearchHit("message", "6" * 32, "C-1", 1_800_000_000, "the [ledger] of"),
            SearchHit("note", "n1", "C-1", 1_800_000_060, "[ledger] first"))  # fmt: skip
    daemon.answers["hits"] = SearchPage(hits, 2, 0, 50).to_json()
    assert (await daemon_cli("search", "ledger", "first*")).out.splitlines() == [
        f"message {'6' * 32} 2027-01-15T08:00:00Z case C-1: the [ledger] of",
        "note    n1 2027-01-15T08:01:00Z case C-1: [ledger] first",
    ]
    assert daemon.requests[-1][:2] == ("GET", "/api/search?q=ledger+first*&limit=50&offset=0")
    daemon.answers["hits"] = SearchPage((), 0, 0, 50).to_json()
    assert (await daemon_cli("search", "nothing")).out == "nothing found\n"
    untimed = stats_row("sent", "DE-BKA", "request", 1)
    quick = dataclasses.replace(untimed, counterpart="BR-PF", first_response_median_s=59)
    report = StatsReport(0, 1_800_000_000, (quick, untimed))
    daemon.answers["stats"] = report.to_json()
    assert (await daemon_cli("stats", "--to", "2027-01-15")).out.splitlines()[1:] == [
        "sent     BR-PF        request              1  answered 0, declined 0, withdrawn 0,"
        " open 0; first response 59 s (p90 -), answer - (p90 -)",
        "sent     DE-BKA       request              1  answered 0, declined 0, withdrawn 0,"
        " open 0; first response - (p90 -), answer - (p90 -)",
    ]
    daemon.answers["stats-csv"] = to_csv(report)
    ran = await daemon_cli("stats", "--format", "csv", "--from", "1970-01-01")
    assert (ran.code, ran.out) == (0, to_csv(report))
    assert daemon.requests[-1][:2] == ("GET", "/api/stats/csv?from=0")


async def test_a_note_from_a_file_and_a_filing_say_what_they_did(
    tmp_path: Path, daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    daemon.answers["note"] = NoteView("ab" * 16, "C-1", "alice", 1_800_000_000, "x").to_json()
    note = tmp_path / "note.txt"
    note.write_text("Call them.\nTomorrow, é.")
    ran = await daemon_cli("case", "note", "C-1", "--body-file", note)
    assert (ran.code, ran.out) == (0, f"note {'ab' * 16} added to case C-1\n")
    assert daemon.requests[-1] == ("POST", "/api/cases/C-1/notes",
                                   {"body": "Call them.\nTomorrow, é."})  # fmt: skip
    latin = tmp_path / "latin.txt"
    latin.write_bytes("é".encode("latin-1"))
    for path, error in (
        (latin, f"{latin} is not UTF-8 text"),
        (tmp_path / "none.txt", f"cannot read {tmp_path / 'none.txt'}: No such file or directory"),
    ):
        ran = await daemon_cli("case", "note", "C-1", "--body-file", path)
        assert (ran.code, ran.out, ran.err) == (1, "", f"globe-node: error: {error}\n")
    assert len(daemon.requests) == 1  # refused before the daemon is asked
    daemon.answers["filed"] = {"message": "cd" * 16, "case": "C-1", "team": None}
    ran = await daemon_cli("case", "file", "C-1", "cdcd")
    assert (ran.code, ran.out) == (0, f"message {'cd' * 16} filed under case C-1\n")
    assert daemon.requests[-1] == ("POST", "/api/messages/cdcd/file", {"case": "C-1"})


async def test_audit_chain_that_does_not_verify_exits_1(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    entries = [{"seq": 1, "time": 1_800_000_000, "user": "alice", "action": "read",
                "subject": "m1"}]  # fmt: skip
    daemon.answers["audit"] = {"entries": entries, "verified": False}
    ran = await daemon_cli("audit")
    assert ran.code == 1
    assert ran.out == "     1 2027-01-15T08:00:00Z alice            read             m1\n"
    assert ran.err == (
        "globe-node: error: the audit log's hash chain does not verify: it was altered\n"
    )
    ran = await daemon_cli("audit", "--json")
    assert ran.code == 1
    assert json.loads(ran.out) == {"entries": entries, "verified": False}
    assert ran.err == (
        "globe-node: error: the audit log's hash chain does not verify: it was altered\n"
    )
    daemon.answers["audit"] = {"entries": entries, "verified": True}
    ran = await daemon_cli("audit")
    assert ran.out.splitlines()[-1] == "audit chain verified"
