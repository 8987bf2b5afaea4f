"""Forwarding with the originator's consent, through the web UI over raw HTTP, against a
real hub and three real nodes.

France's PNF (the originator) sends Brazil restricted material.  Brazil's page says that
forwarding it needs France's consent and to whom it may go already; a forward to Kenya is
refused by the API (``consent-required``), and the page offers to ask for that consent
for the same recipient.  France's investigator sees the request on France's node and
refuses it, with a reason, then grants a second one; Brazil's page follows each answer,
and the forward then goes to Kenya, which verifies it came from France.
"""

from __future__ import annotations

import re

import pytest

from protocol.messages import Handling, Restriction, Tlp
from tests.node.helpers import delivered, inbox_ids, info
from tests.node.network import RunningNode
from tests.support.waiting import eventually
from tests.webui.client import Answer, UiClient
from tests.webui.conftest import Pair

pytestmark = pytest.mark.slow

RED = Handling(Tlp.RED, frozenset({Restriction.NO_ONWARD}))


def located(answer: Answer) -> str:
    """The message id a form's redirect names."""
    assert answer.status == 303, (answer.status, answer.text[:300])
    found = re.fullmatch(r"/ui/messages/([0-9a-f]{32})(#consent)?", answer.headers["Location"])
    assert found is not None, answer.headers["Location"]
    return found.group(1)


def answers(page: Answer) -> list[str]:
    """The state of each consent request a message's page lists, oldest first."""
    return re.findall(r'<tr data-asked="[0-9a-f]{32}" data-answer="(\w+)">', page.text)


def selected(page: Answer, select: str) -> list[str]:
    """The options chosen in the select with id ``select``."""
    body = page.text.split(f'id="{select}"')[1].split("</select>")[0]
    return re.findall(r'<option value="([A-Z]{2}-[A-Z0-9]+)" selected>', body)


async def consent_requests(rn: RunningNode) -> list[str]:
    """The consent requests ``rn`` received, newest first."""
    return [m.id for m in await rn.n.inbox(limit=1000) if m.kind == "consent-request"]


async def test_a_forward_waits_for_the_originators_consent_asked_and_given_on_the_pages(
    pair: Pair,
) -> None:
    fr, br = pair.fr, pair.br
    ke = await pair.net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    mid = str(await fr.n.send([br.me], info("Accounts of Orion Holdings", handling=RED)))
    await eventually(lambda: delivered(fr, mid, br), what="the material reached Brazil")
    async with UiClient(br) as brazil, UiClient(fr) as france:
        await brazil.sign_in(br.token)
        await france.sign_in(fr.token)
        page = await brazil.get(f"/ui/messages/{mid}")
        assert 'id="consent-needed"' in page.text
        assert "Its originator, FR-PNF, decides where it goes" in page.plain
        assert re.findall(r'data-allowed="([A-Z-]+)"', page.text) == ["FR-PNF"]
        assert 'id="forward-form"' in page.text
        assert 'id="ask-consent"' in page.text
        assert answers(page) == []
        token = page.csrf

        # the forward is refused, and the page offers to ask for the same recipient
        refused = await brazil.post(
            f"/ui/messages/{mid}/forward", {"csrf": token, "to": "KE-EACC", "note": "For you"}
        )
        assert (refused.status, refused.problem) == (403, "consent-required")
        assert "FR-PNF (its originator) has not consented to forwarding to KE-EACC" in (
            refused.plain
        )
        assert 'id="ask-first"' in refused.text
        assert selected(refused, "consent-to") == ["KE-EACC"]
        assert ">For you</textarea>" in refused.text
        unexplained = await brazil.post(f"/ui/messages/{mid}/request-consent",
                                        {"csrf": token, "to": "KE-EACC"})  # fmt: skip
        assert (unexplained.status, unexplained.problem) == (400, "usage")
        assert "'purpose' is 1-2000 characters without control" in unexplained.plain
        asked = await brazil.post(
            f"/ui/messages/{mid}/request-consent",
            {"csrf": token, "to": "KE-EACC", "purpose": "Joint team"},
        )
        assert (asked.status, asked.headers["Location"]) == (303, f"/ui/messages/{mid}#consent")
        assert answers(await brazil.get(f"/ui/messages/{mid}")) == ["pending"]

        # France's investigator answers on France's node: a refusal, with its reason
        first = (await eventually(lambda: consent_requests(fr), what="France is asked"))[0]
        request = await france.get(f"/ui/messages/{first}")
        assert "Consent asked of this authority" in request.plain
        assert f'<a href="/ui/messages/{mid}"><code>{mid}</code></a>' in request.text
        assert 'id="grant-KE-EACC" name="to" value="KE-EACC" checked' in request.text
        assert "Joint team" in request.text
        silent = await france.post(f"/ui/messages/{first}/consent",
                                   {"csrf": request.csrf, "decision": "refused"})  # fmt: skip
        assert (silent.status, silent.problem) == (400, "usage")
        assert "a refused consent gives a reason" in silent.plain
        no = await france.post(f"/ui/messages/{first}/consent",
                               {"csrf": request.csrf, "decision": "refused",
                                "reason": "Not before the hearing"})  # fmt: skip
        assert located(no) == first
        decided = await france.get(f"/ui/messages/{first}")
        assert 'data-answer="refused"' in decided.text
        assert "Not before the hearing" in decided.text
        assert 'id="grant"' not in decided.text
        assert 'id="refuse"' not in decided.text

        async def brazil_sees(*states: str) -> bool:
            return answers(await brazil.get(f"/ui/messages/{mid}")) == list(states)

        await eventually(lambda: brazil_sees("refused"), what="Brazil sees the refusal")
        again = await brazil.post(f"/ui/messages/{mid}/forward", {"csrf": token, "to": "KE-EACC"})
        assert (again.status, again.problem) == (403, "consent-required")

        # asked again, France grants it; the forward then goes, with France's proof
        asked = await brazil.post(
            f"/ui/messages/{mid}/request-consent",
            {"csrf": token, "to": "KE-EACC", "purpose": "After it"},
        )
        assert asked.status == 303
        second = await eventually(lambda: _second(fr, first), what="the second request")
        request = await france.get(f"/ui/messages/{second}")
        yes = await france.post(f"/ui/messages/{second}/consent",
                                {"csrf": request.csrf, "decision": "granted",
                                 "to": "KE-EACC"})  # fmt: skip
        assert located(yes) == second
        assert "Granted for KE-EACC" in (await france.get(f"/ui/messages/{second}")).plain
        await eventually(lambda: brazil_sees("refused", "granted"), what="Brazil sees the grant")
        page = await brazil.get(f"/ui/messages/{mid}")
        assert re.findall(r'data-allowed="([A-Z-]+)"', page.text) == ["FR-PNF", "KE-EACC"]
        sent = await brazil.post(
            f"/ui/messages/{mid}/forward", {"csrf": token, "to": "KE-EACC", "note": "With consent"}
        )
        forward = located(sent)
        await eventually(lambda: _holds(ke, forward), what="Kenya receives the forward")
        held = await ke.n.content_of(forward)
        assert held.content.forwarded is not None
        assert held.content.body == "With consent"
        # the originator's own page: forwarding needs nobody's consent
        own = await france.get(f"/ui/messages/{mid}")
        assert 'id="forward-form"' in own.text
        assert 'id="consent-needed"' not in own.text


async def _second(fr: RunningNode, first: str) -> str | None:
    later = [m for m in await consent_requests(fr) if m != first]
    return later[0] if later else None


async def _holds(rn: RunningNode, mid: str) -> bool:
    return mid in await inbox_ids(rn)


async def test_material_free_to_circulate_goes_on_without_asking(pair: Pair) -> None:
    fr, br = pair.fr, pair.br
    mid = str(await fr.n.send([br.me], info("Public tender list", handling=Handling(Tlp.GREEN))))
    await eventually(lambda: delivered(fr, mid, br), what="the message reached Brazil")
    async with UiClient(br) as brazil:
        await brazil.sign_in(br.token)
        page = await brazil.get(f"/ui/messages/{mid}")
        assert 'id="forward-form"' in page.text
        assert 'id="consent-needed"' not in page.text
        assert 'id="ask-consent"' not in page.text
        nobody = await brazil.post(f"/ui/messages/{mid}/forward", {"csrf": page.csrf})
        assert (nobody.status, nobody.problem) == (400, "usage")
        assert "'to' is a non-empty list of authority ids" in nobody.plain
        sent = await brazil.post(f"/ui/messages/{mid}/forward",
                                 {"csrf": page.csrf, "to": "FR-PNF"})  # fmt: skip
        forward = located(sent)
        shown = await brazil.get(f"/ui/messages/{forward}")
        assert "Fwd: Public tender list" in shown.text
        forged = await brazil.post(f"/ui/messages/{mid}/forward", {"to": "FR-PNF"})
        assert (forged.status, forged.problem) == (403, "csrf-rejected")
