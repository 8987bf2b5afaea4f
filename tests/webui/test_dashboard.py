"""The investigator's dashboard over raw HTTP against a real hub and two real nodes: the
alerts the user is shown (newest first, at most so many, each kind with its label in the
user's language), the warning when the directory is too old to send, the sent messages
whose delivery failed with a Retry button that queues them again through the API (its
form token checked, other compartments' messages not found), and each counterpart's
response times; an operator has none of it."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from globe_io.webui.i18n import Formats
from globe_node.reminders import DUE_SOON, OVERDUE
from globe_node.standing import Standing
from globe_node.webui import labels
from globe_node.webui.dashboard import ALERTS_SHOWN
from protocol.directory import MemberStatus
from protocol.ids import AuthorityId
from tests.node.helpers import inbox_ids, recipient_states
from tests.support.waiting import eventually
from tests.webui.client import Answer, UiClient
from tests.webui.conftest import Pair, user
from tests.webui.test_operator import NOT_AN_INVESTIGATOR, operator_client
from tests.webui.test_passwords import refused_with

pytestmark = pytest.mark.slow

#: The request a reminder of the tests is about.
REMINDED = "ab" * 16
NODE_SOURCES = Path(__file__).parents[2] / "globe_node"


def rows(page: Answer, attribute: str) -> list[str]:
    """The values of ``attribute`` on the page's table rows, in order."""
    return re.findall(rf'<tr {attribute}="([^"]*)"', page.text)


def row(page: Answer, counterpart: str, direction: str) -> dict[str, str]:
    """The response-time row of ``counterpart`` in ``direction``: each figure by name."""
    found = re.search(
        rf'<tr data-counterpart="{counterpart}" data-direction="{direction}">(.*?)</tr>',
        page.plain, re.S,
    )  # fmt: skip
    assert found is not None, page.text[-3000:]
    return dict(re.findall(r'<td data-stat="(\w+)">([^<]*)</td>', found.group(1)))


async def switch_language(c: UiClient, language: str) -> None:
    token = await c.token("/ui/requests")
    done = await c.post("/ui/language", {"csrf": token, "language": language,
                                          "next": "/ui/requests"})  # fmt: skip
    assert (done.status, done.headers["Location"]) == (303, "/ui/requests")


# --- alerts ----------------------------------------------------------------------------------


def test_every_alert_kind_the_node_records_has_a_label() -> None:
    recorded = set()
    for path in NODE_SOURCES.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        recorded |= set(re.findall(r'(?:record|alert)\(\s*"([a-z-]+)"', source))
    assert {"directory-fork", "refused", "conflict", "directory-behind-peer"} <= recorded
    standings = {
        Standing(AuthorityId.parse("FR-PNF"), status.value).alert_kind for status in MemberStatus
    }
    recorded |= {kind for kind in standings if kind is not None} | {DUE_SOON, OVERDUE}
    assert recorded == set(labels.ALERTS)


async def test_alerts_show_newest_first_with_their_labels_in_the_users_language(
    pair: Pair,
) -> None:
    fr = pair.fr.n
    await fr.alert("directory-fork", "BR-PF signed directory head 3 that differs", b"fork")
    await fr.alert("made-up-kind", "<script>alert(1)</script>", b"odd")
    await fr.alert("directory-behind-peer", "BR-PF signed a log of 9 entries", b"ahead")
    await fr.alert_log.remind(
        OVERDUE, "request to BR-PF was due", b"due", message=REMINDED, team=None, to=None
    )
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        page = await c.get("/ui/requests")
        assert page.status == 200
        assert rows(page, "data-alert") == ["request-overdue", "directory-behind-peer",
                                            "made-up-kind", "directory-fork"]  # fmt: skip
        assert 'data-count="alerts">4<' in page.text
        # a reminder links to its request
        assert f'<a href="/ui/messages/{REMINDED}">Reminder: a request is overdue</a>' in page.text
        assert "Behind a peer: the hub may be hiding membership changes" in page.plain
        assert "BR-PF signed a log of 9 entries" in page.text
        assert "<code>made-up-kind</code>" in page.text  # a kind with no label: as it is
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert" not in page.text
        assert "The newest" not in page.text  # every alert is shown

        await switch_language(c, "fr")
        page = await c.get("/ui/requests")
        assert '<html lang="fr" dir="ltr">' in page.text
        assert ("Bifurcation de l'annuaire : un journal des membres différent de celui de ce "
                "nœud a été signé") in page.plain  # fmt: skip
        assert "En retard sur un homologue" in page.plain
        assert "BR-PF signed directory head 3 that differs" in page.text  # detail: as recorded


async def test_the_dashboard_lists_the_newest_alerts_and_says_how_many_there_are(
    pair: Pair,
) -> None:
    total = ALERTS_SHOWN + 3
    for i in range(total):
        await pair.fr.n.alert("refused", f"envelope at hub cursor {i}: bad", b"%d" % i)
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        page = await c.get("/ui/requests")
        assert rows(page, "data-alert") == ["refused"] * ALERTS_SHOWN
        assert f'data-count="alerts">{total}<' in page.text
        assert f"The newest {ALERTS_SHOWN} of {total} alerts." in page.plain
        assert f"envelope at hub cursor {total - 1}: bad" in page.text  # the newest...
        assert "envelope at hub cursor 2: bad" not in page.text  # ...not the oldest
        assert "Refused: something received did not verify" in page.text


async def test_a_directory_too_old_to_send_is_said_on_the_dashboard(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        assert "data-stale" not in (await c.get("/ui/requests")).text
    real = pair.fr.n.clock
    pair.fr.n.clock = lambda: real() + pair.fr.config.directory_max_age + 3600
    async with UiClient(pair.fr) as c:  # signed in again: the old session's time is past
        await c.sign_in(pair.fr.token)
        page = await c.get("/ui/requests")
        assert '<div class="warning" role="alert" data-stale="true">' in page.text
        assert "The hub last confirmed this node's directory on " in page.plain
        assert "sending is refused until the node reaches the hub again." in page.plain


# --- failed deliveries -----------------------------------------------------------------------


async def failed_message(pair: Pair) -> str:
    """A message of alice's to Brazil that failed for real: Brazil's node is stopped, the
    message waits in its mailbox at the hub until the hub expires it and tells France
    (non-delivery); then the hub stops too, so a retry stays queued."""
    net = pair.net
    await net.stop_node(pair.br)
    status, sent = await pair.fr.api("POST", "/api/messages", {
        "to": ["BR-PF"], "kind": "information", "subject": "Ledger of the shell company",
        "body": "Attached later.",
    })  # fmt: skip
    assert status == 201, sent
    mid = str(sent["id"])
    await eventually(lambda: _state(pair, mid, "sent"), what="the message waits at the hub")
    assert net.router is not None
    net.hub_offset = pair.fr.config.message_lifetime + 60
    assert await net.router.expire() == 1
    net.hub_offset = 0  # signed requests must fall in the hub's clock window again
    await eventually(lambda: _state(pair, mid, "failed"), what="France learns it expired")
    await net.stop_hub()
    return mid


async def _state(pair: Pair, mid: str, state: str) -> bool:
    return (await recipient_states(pair.fr, mid)) == {"BR-PF": state}


async def test_a_failed_delivery_is_listed_and_retried_with_the_sessions_token(
    pair: Pair,
) -> None:
    mid = await failed_message(pair)
    bob = await user(pair.fr, "bob", "investigator", "finance")  # another compartment
    async with UiClient(pair.fr) as c, UiClient(pair.fr) as other:
        await c.sign_in(pair.fr.token)
        page = await c.get("/ui/requests")
        assert rows(page, "data-failed-message") == [mid]
        assert 'data-count="failed">1<' in page.text
        listed = page.text.split(f'<tr data-failed-message="{mid}">')[1].split("</tr>")[0]
        assert (
            f'<a id="failed-{mid}" href="/ui/messages/{mid}">Ledger of the shell company</a>'
            in listed
        )
        assert '<li data-recipient="BR-PF">' in listed
        assert '<span lang="en" dir="ltr">expired undelivered</span>' in listed
        assert f'action="/ui/messages/{mid}/retry"' in listed
        assert f'<button type="submit" aria-describedby="failed-{mid}">Retry</button>' in listed

        # the form without its token, or from another site, changes nothing
        for csrf, origin in (("forged", "same"), (page.csrf, "http://evil.example")):
            refused = await c.post(f"/ui/messages/{mid}/retry", {"csrf": csrf}, origin=origin)
            assert (refused.status, refused.problem) == (403, "csrf-rejected")
        no_token = await c.post(f"/ui/messages/{mid}/retry", {})
        assert (no_token.status, no_token.problem) == (403, "csrf-rejected")
        assert await recipient_states(pair.fr, mid) == {"BR-PF": "failed"}

        # another compartment neither sees it nor retries it; an unknown or malformed id is
        # not found
        await other.sign_in(bob)
        theirs = await other.get("/ui/requests")
        assert rows(theirs, "data-failed-message") == []
        assert 'data-count="failed">0<' in theirs.text
        hidden = await other.post(f"/ui/messages/{mid}/retry", {"csrf": theirs.csrf})
        assert (hidden.status, hidden.problem) == (404, "not-found")
        for unknown in ("0" * 32, "not-an-id"):
            refused = await c.post(f"/ui/messages/{unknown}/retry", {"csrf": page.csrf})
            assert (refused.status, refused.problem) == (404, "not-found")
        assert await recipient_states(pair.fr, mid) == {"BR-PF": "failed"}

        retried = await c.post(f"/ui/messages/{mid}/retry", {"csrf": page.csrf})
        assert (retried.status, retried.headers["Location"]) == (
            303, "/ui/requests?queued=1#failed"
        )  # fmt: skip
        assert await recipient_states(pair.fr, mid) == {"BR-PF": "queued"}
        after = await c.get(retried.headers["Location"].split("#")[0])
        assert '<p class="notice" role="status" data-queued="1">' in after.text
        assert "Deliveries queued again: 1." in after.plain
        assert rows(after, "data-failed-message") == []
    entries, _ = await pair.fr.n.audit.entries()
    assert [(e["user"], e["subject"]) for e in entries if e["action"] == "retry"] == [
        ("alice", mid)
    ]


async def test_the_retry_result_shown_is_only_a_count(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        for query in (
            "queued=<b>1</b>",
            "queued=-1",
            "queued=99999999",
            "queued=%D9%A3",
            "queued=" + "9" * 5000,
        ):
            page = await c.get(f"/ui/requests?{query}")
            assert page.status == 200
            assert "data-queued" not in page.text


# --- response times --------------------------------------------------------------------------


def test_durations_read_in_the_users_language() -> None:
    durations = {lang: Formats(lang, lambda: 0) for lang in ("en", "fr", "es", "ar")}
    assert durations["en"].duration(0) == "0 seconds"
    assert durations["en"].duration(50 * 60) == "50 minutes"
    assert durations["fr"].duration(36 * 3600) == "2\xa0jours"
    assert durations["es"].duration(90 * 60) == "2 horas"
    assert durations["ar"].duration(36 * 3600) == "يومان"


async def answered_request(pair: Pair) -> dict[str, Any]:
    """A request from France answered by Brazil, through both nodes' APIs; France's
    ``GET /api/stats`` once the answer arrived."""
    status, sent = await pair.fr.api("POST", "/api/messages", {
        "to": ["BR-PF"], "kind": "request", "subject": "Holders of account 12",
        "body": "Who holds it?",
    })  # fmt: skip
    assert status == 201, sent
    mid = str(sent["id"])
    await eventually(lambda: _holds(pair, mid), what="the request reached Brazil")
    status, _ = await pair.br.api("POST", f"/api/messages/{mid}/reply",
                                  {"kind": "answer", "body": "Mr X."})  # fmt: skip
    assert status == 201
    await eventually(lambda: _answered(pair, mid), what="France has the answer")
    status, stats = await pair.fr.api("GET", f"/api/stats?from={int(time.time()) - 3600}")
    assert status == 200
    report: dict[str, Any] = stats
    return report


async def _holds(pair: Pair, mid: str) -> bool:
    return mid in await inbox_ids(pair.br)


async def _answered(pair: Pair, mid: str) -> bool:
    _, found = await pair.fr.api("GET", "/api/requests?status=all")
    return [(r["message"], r["state"]) for r in found["requests"]] == [(mid, "answered")]


async def test_each_counterparts_response_times_are_on_the_dashboard(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        assert (
            "No request was sent or received in the last 90 days."
            in (await c.get("/ui/requests")).plain
        )
    stats = await answered_request(pair)
    [api_row] = [r for r in stats["rows"]
                 if (r["counterpart"], r["kind"]) == ("BR-PF", "request")]  # fmt: skip
    en, fr = Formats("en", lambda: 0), Formats("fr", lambda: 0)
    async with UiClient(pair.fr) as c, UiClient(pair.br) as br:
        await c.sign_in(pair.fr.token)
        page = await c.get("/ui/requests")
        assert rows(page, "data-counterpart") == ["BR-PF", "all"]
        shown = row(page, "BR-PF", "sent")
        assert shown == {
            "count": "1", "answered": "1", "open": "0",
            "first_response_median_s": en.duration(api_row["first_response_median_s"]),
            "first_response_p90_s": en.duration(api_row["first_response_p90_s"]),
            "answer_median_s": en.duration(api_row["answer_median_s"]),
            "answer_p90_s": en.duration(api_row["answer_p90_s"]),
        }  # fmt: skip
        assert row(page, "all", "sent") == shown  # one counterpart: the totals are its own
        assert "All counterparts" in page.text
        await switch_language(c, "fr")
        page = await c.get("/ui/requests")
        assert row(page, "BR-PF", "sent")["answer_median_s"] == fr.duration(
            api_row["answer_median_s"]
        )
        assert "Délais de réponse" in page.plain

        await br.sign_in(pair.br.token)
        theirs = await br.get("/ui/requests")
        assert rows(theirs, "data-counterpart") == ["FR-PNF", "all"]
        received = row(theirs, "FR-PNF", "received")
        assert (received["count"], received["answered"], received["open"]) == ("1", "1", "0")


# --- who has it ------------------------------------------------------------------------------


async def test_an_operator_has_neither_the_dashboard_nor_the_retry(pair: Pair) -> None:
    c, _ = await operator_client(pair.fr)
    async with c:
        csrf = await c.token("/ui/operator")
        for answer in (
            await c.get("/ui/requests"),
            await c.post(f"/ui/messages/{'0' * 32}/retry", {"csrf": csrf}),
        ):
            refused_with(answer, 403, "forbidden", NOT_AN_INVESTIGATOR)
        # the operator's own status page shows the alerts through the same table
        await pair.fr.n.alert("conflict", "BR-PF sent message 1 twice", b"twice")
        status = await c.get("/ui/operator")
        assert rows(status, "data-alert") == ["conflict"]
        assert "Conflict: a message arrived twice with different contents" in status.text
