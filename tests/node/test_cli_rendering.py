"""How the daemon's answers read for people: ``status``, ``inbox`` and ``outbox``, ``show``
(with download progress on a terminal), ``cases``, ``case``, ``stats``, ``directory
search``, ``ping`` and ``alerts`` rendered from whatever shape the stand-in daemon
answers, control and bidi characters made visible; and ``audit`` exiting 1 when the
hash chain does not verify."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import globe_io.cli
from tests.node.helpers import ATTACHMENT, Daemon, Ran


async def test_status_and_lists_render_for_people(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    daemon.answers["status"] = {
        "authority": "FR-PNF", "membership": "suspended",
        "directory": {"seq": 7, "head": "0123456789abcdefXYZ", "age_s": None, "max_age_s": 60,
                      "members": 4},
        "hub": {"url": "http://hub", "reachable": None, "push_connected": False},
        "outbox": {}, "inbox_unread": 0, "requests_open": 2, "requests_overdue": 1,
        "alerts": [{"id": 1}, {"id": 2}],
    }  # fmt: skip
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
    ]
    daemon.answers["status"]["hub"] = {"url": "http://hub", "reachable": False}
    assert (
        "hub:        http://hub unreachable, push not connected\n"
        in (await daemon_cli("status")).out
    )

    daemon.answers["inbox"] = {"messages": [
        {"id": "a" * 32, "received": 1_800_000_000, "from": "BR-PF", "kind": "request",
         "urgency": "urgent", "tlp": "RED", "case": None, "subject": "S", "read": True,
         "attachments": ["x", "y"]},
        "not an object",
    ]}  # fmt: skip
    ran = await daemon_cli("inbox", "--limit", "5", "--unread")
    assert ran.out == (
        f"  {'a' * 32} 2027-01-15T08:00:00Z BR-PF        request          urgent   "
        "TLP:RED          - S [2 att]\n"
    )
    assert daemon.requests[-1][:2] == ("GET", "/api/inbox?limit=5&unread=1")
    daemon.answers["inbox"] = {"messages": []}
    assert (await daemon_cli("inbox")).out == "no messages\n"

    daemon.answers["outbox"] = {"messages": [
        {"id": "b" * 32, "created": "yesterday", "kind": "information", "case": "C-1",
         "recipients": {
             "KE-EACC": {"state": "queued", "error": "cannot reach the hub", "attempts": 3},
             "BR-PF": {"state": "delivered", "via": "direct"},
             "DE-BKA": "junk",
         }},
    ]}  # fmt: skip
    ran = await daemon_cli("outbox")
    assert ran.out == (
        f"{'b' * 32} - information      C-1  BR-PF:delivered via direct; DE-BKA:-; "
        "KE-EACC:queued (cannot reach the hub, 3 attempts)\n"
    )
    daemon.answers["outbox"] = {"messages": "junk"}
    assert (await daemon_cli("outbox")).out == "no messages\n"


async def test_show_renders_received_and_sent_messages(
    tmp_path: Path,
    daemon: Daemon,
    daemon_cli: Callable[..., Awaitable[Ran]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = await daemon_cli("show", "out1")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "to:        BR-PF (delivered), KE-EACC (queued) (created 2027-01-15T08:01:40Z)",
        "kind:      status   urgency: urgent   TLP:RED intelligence-only, no-onward-dissemination",
        "subject:   Re: Accounts",
        "case:      C-9",
        "language:  en",
        "deadline:  2030-03-17T17:46:40Z",
        'status:    {"expected":1850000000,"state":"in-progress"}',
        "",
        "Working on it.",
        "?[31mred",
    ]
    # a terminal shows download progress on stderr (the size is unknown: chunked)
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
        'consent:   {"decision":"granted","message":"' + "e" * 32 + '","to":["KE-EACC"]}',
        f"attachment 1: a.pdf ({len(ATTACHMENT)} bytes, application/pdf)",
        "",
        "Granted.",
        f"saved attachment 1 to {save / 'a.pdf'} ({len(ATTACHMENT)} bytes)",
    ]
    assert ran.err.startswith("\ra.pdf: ")
    assert ran.err.endswith(f"\ra.pdf: {len(ATTACHMENT)} bytes")
    assert (save / "a.pdf").read_bytes() == ATTACHMENT


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


async def test_cases_stats_search_ping_alerts_render(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    daemon.answers["cases"] = {"cases": [
        {"case": "C-1", "messages": 3, "open": 1, "overdue": 0, "last": 1_800_000_000,
         "counterparts": ["BR-PF", "KE-EACC"]},
        {"case": "C-2", "messages": 1, "open": 0, "overdue": 0, "last": None,
         "counterparts": "BR-PF"},
    ]}  # fmt: skip
    assert (await daemon_cli("cases")).out.splitlines() == [
        "C-1                         3 msgs    1 open    0 overdue  last 2027-01-15T08:00:00Z"
        "  BR-PF,KE-EACC",
        "C-2                         1 msgs    0 open    0 overdue  last -  BR-PF",
    ]
    daemon.answers["cases"] = {"cases": []}
    assert (await daemon_cli("cases")).out == "no cases\n"
    daemon.answers["case"] = {"case": "C-1", "requests": [], "messages": []}
    assert (await daemon_cli("case", "C-1")).out == "case C-1\n"
    daemon.answers["case"] = {"case": "C-1", "requests": [
        {"message_id": "r" * 32, "direction": "out", "counterpart": "BR-PF", "urgency": "urgent",
         "state": "sent", "deadline": 1_800_000_000, "overdue": True},
    ]}  # fmt: skip
    assert (await daemon_cli("case", "C-1")).out.splitlines() == [
        "case C-1",
        "requests:",
        f"  {'r' * 32} out BR-PF        urgent   sent         deadline 2027-01-15T08:00:00Z"
        " OVERDUE",
    ]
    daemon.answers["stats"] = {"counterparts": {
        "BR-PF": {"requests": 2, "answered": 1, "mean_first_response_s": 7200,
                  "mean_answer_s": 3 * 86400},
        "KE-EACC": {"requests": 1, "answered": 0, "mean_first_response_s": 59.6,
                    "mean_answer_s": None},
    }}  # fmt: skip
    assert (await daemon_cli("stats")).out.splitlines() == [
        "BR-PF                   2 requests     1 answered  first response 2.0 h  answer 3.0 d",
        "KE-EACC                 1 requests     0 answered  first response 60 s  answer -",
    ]
    daemon.answers["stats"] = {"counterparts": {}}
    assert (await daemon_cli("stats")).out == "no requests yet\n"
    daemon.answers["search"] = {"results": [
        {"authority": "BR-PF", "status": "active", "kinds": ["fiu"], "languages": ["pt"],
         "name": "Policia Federal", "fingerprint": "123", "endpoint": "https://br.example"},
        {"authority": "KE-EACC", "status": "revoked", "kinds": None, "languages": None,
         "name": "EACC", "fingerprint": "456", "endpoint": None},
    ]}  # fmt: skip
    ran = await daemon_cli("directory", "search", "--country", "br", "--inactive", "--kind", "fiu")
    assert ran.out.splitlines() == [
        "BR-PF                active     fiu                          pt         Policia Federal",
        "                     fingerprint 123  endpoint https://br.example",
        "KE-EACC              revoked    -                            -          EACC",
        "                     fingerprint 456",
    ]
    assert daemon.requests[-1][:2] == (
        "GET", "/api/directory/search?country=BR&kind=fiu&inactive=1"
    )  # fmt: skip
    daemon.answers["search"] = {"results": []}
    assert (await daemon_cli("directory", "search")).out == "no matching members\n"
    daemon.answers["ping"] = {"authority": "BR-PF", "direct": {"ok": False, "error": "timeout"},
                              "hub": {"ok": True, "ms": None}}  # fmt: skip
    assert (await daemon_cli("ping", "BR-PF")).out == "BR-PF: direct: failed (timeout); hub: ok\n"
    daemon.answers["ping"] = {"authority": "BR-PF", "direct": {"ok": True, "ms": 1.25},
                              "hub": {"ok": False}}  # fmt: skip
    assert (await daemon_cli("ping", "BR-PF")).out == "BR-PF: direct: ok in 1.2 ms; hub: failed\n"
    daemon.answers["alerts"] = {"alerts": [
        {"id": 3, "time": 1_800_000_000, "kind": "conflict", "detail": "twice\u202e"},
    ]}  # fmt: skip
    assert (await daemon_cli("alerts")).out == (
        "    3 2027-01-15T08:00:00Z conflict             twice?\n"
    )
    daemon.answers["alerts"] = {"alerts": []}
    assert (await daemon_cli("alerts")).out == "no alerts\n"


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
