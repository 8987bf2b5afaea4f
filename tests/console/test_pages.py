"""The console's pages against a real hub: an application with the fingerprint the
applicant's node prints, an application the hub altered (failing verification, not
approvable), the reading of the hub's admin routes with a typed passphrase, the members
by country and competence, the verified log, and the network's statistics (the hub's
metrics read, or said to be unreachable)."""

from __future__ import annotations

import dataclasses
import re

import orjson
import pytest

from globe_admin.console.directory import parse_metrics
from globe_node.cli.common import node_fingerprint
from globe_node.keys import NodeKeys
from protocol import canonical
from protocol.membership import Action, MembershipAction, make_action
from protocol.signed import SignedObject
from tests.admin.desk import Desk
from tests.admin.runner import PASSPHRASE
from tests.console.conftest import ConsoleFactory, HubProxy
from tests.console.test_security import sha256_of


def text_of(html: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (tags dropped)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found is not None, element_id
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


async def test_the_application_page_shows_the_fingerprint_the_applicants_node_prints(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    c = await client(await open_console()).signed_in()
    page = await c.get(f"/console/applications/{member.app_id}")
    assert page.status == 200
    keys = NodeKeys(member.identity, member.transport, member.ka, bytes(32))
    expected = node_fingerprint(member.authority, keys)  # what globe-node init printed
    assert text_of(page.text, "fingerprint") == expected
    shown = (await desk.admin("show", member.app_id, "--json")).json()
    assert shown["fingerprint"] == expected
    assert 'data-verdict="verifies"' in page.text
    assert 'data-draft="matches"' in page.text
    assert "Anti-corruption law enforcement" in page.plain
    assert "English, French" in page.plain
    assert "hub-fingerprint" not in page.text
    draft = (await desk.client(desk.admins[0]).admin_application(member.app_id)).draft
    assert draft is not None
    assert text_of(page.text, "digest") == sha256_of(page.text)
    assert page.plain.count(draft.decode()) == 1  # the canonical JSON, exactly
    arabic = await c.get(f"/console/applications/{member.app_id}", **{"Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert f'<code class="digits" dir="ltr" id="fingerprint">{expected}</code>' in arabic.text
    assert "بصمة الجهة" in arabic.text
    listed = await c.get("/console/applications?status=pending")
    assert f'<tr data-id="{member.app_id}">' in listed.text
    assert 'data-verdict="ready"' in listed.text
    assert '<bdi>FR-PNF</bdi> <span class="country">France</span>' in listed.text
    none = await c.get("/console/applications?status=rejected")
    assert "No applications." in none.plain


async def test_a_draft_the_hub_altered_is_shown_differing_and_is_not_signed(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    info = await desk.client(desk.admins[0]).admin_application(member.app_id)
    assert info.draft is not None
    honest = MembershipAction.from_signed(SignedObject(info.draft, ()), desk.genesis)
    assert honest.certificate is not None
    swapped = make_action(
        genesis=desk.genesis, action=Action.ADMIT, authority=member.authority, prev=None,
        issued=honest.issued, certificate=dataclasses.replace(honest.certificate, name="Other"),
    ).signed.payload  # fmt: skip
    assert desk.tamper("UPDATE applications SET draft = ? WHERE id = ?", swapped,
                       member.app_id) == 1  # fmt: skip
    c = await client(await open_console(presupplied=True)).signed_in()
    page = await c.get(f"/console/applications/{member.app_id}")
    assert 'data-verdict="verifies"' in page.text  # the application itself is honest
    assert 'id="draft" data-draft="differs"' in page.text
    assert "the draft certificate does not match the application" in page.plain
    assert 'id="approve"' not in page.text
    answer = await c.post(f"/console/applications/{member.app_id}/approve",
                          {"csrf": page.csrf, "sha256": sha256_of(f'name="sha256" value="'
                                                                  f'{"0" * 64}"')})  # fmt: skip
    assert (answer.status, answer.problem) == (403, "membership")
    assert "the draft certificate does not match the application" in answer.plain
    assert await desk.proposals() == []


async def test_with_a_typed_passphrase_the_hub_is_read_only_when_it_is_typed(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    decided = await desk.admit("BR-PF")
    c = await client(await open_console()).signed_in()
    member = await desk.apply("FR-PNF")  # after the console's first reading
    page = await c.get("/console/applications")
    assert "Read from the hub at" in page.plain
    assert f'data-id="{member.app_id}"' not in page.text
    form = {"csrf": page.csrf, "next": "/console/applications?status=pending"}
    wrong = await c.post("/console/read", {**form, "passphrase": "wrong"})
    assert (wrong.status, wrong.problem) == (403, "wrong-passphrase")
    assert f'data-id="{member.app_id}"' not in (await c.get("/console/applications")).text
    read = await c.post("/console/read", {**form, "passphrase": PASSPHRASE})
    assert (read.status, read.headers["Location"]) == (303, "/console/applications?status=pending")
    page = await c.get("/console/applications")
    assert f'data-id="{member.app_id}"' in page.text
    assert 'data-verdict="ready"' in page.text
    # a decided application's bytes are read when its own page asks for them
    path = f"/console/applications/{decided.app_id}"
    before = await c.get(path)
    assert 'id="verdict" data-verdict="unread"' in before.text
    assert 'data-status="approved"' in before.text
    again = await c.post("/console/read", {"csrf": page.csrf, "next": path,
                                           "application": decided.app_id,
                                           "passphrase": PASSPHRASE})  # fmt: skip
    assert again.headers["Location"] == path
    after = await c.get(path)
    assert 'id="verdict" data-verdict="verifies"' in after.text
    assert 'id="approve"' not in after.text
    assert 'id="reject"' not in after.text
    elsewhere = await c.post("/console/read", {"csrf": page.csrf, "next": "//evil.example/",
                                               "passphrase": PASSPHRASE})  # fmt: skip
    assert elsewhere.headers["Location"] == "/console/"
    missing = await c.get(f"/console/applications/{'0' * 32}")
    assert (missing.status, missing.problem) == (404, "not-found")
    assert f"the hub lists no application {'0' * 32}" in missing.plain


async def test_members_by_country_and_competence_from_the_verified_log(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    await desk.admit("FR-PNF")
    await desk.admit("BR-PF")
    await desk.admit("ES-FCC")
    for key in (0, 1):
        amended = await desk.admin("amend", "BR-PF", "--kinds", "anti-corruption,fiu",
                                   "--reason", "designated FIU", key=key)  # fmt: skip
        assert amended.code == 0, amended.err
    for key in (0, 2):
        assert (await desk.admin("suspend", "ES-FCC", "--reason", "inquiry", key=key)).code == 0
    c = await client(await open_console()).signed_in()
    page = await c.get("/console/members", **{"Accept-Language": "fr"})
    countries = re.findall(
        r'<table class="list country-group" data-country="([A-Z]{2})">', page.text
    )
    assert countries == ["BR", "ES", "FR"]  # Brésil, Espagne, France
    assert "<caption>Brésil</caption>" in page.text
    assert "Cellule de renseignement financier" in page.plain
    by_kind = dict(re.findall(r'<tr data-kind="([a-z-]+)"><td>[^<]+</td><td>(\d+)</td>', page.text))
    assert (by_kind["anti-corruption"], by_kind["fiu"], by_kind["mla-central"]) == ("2", "1", "0")
    assert 'data-status="suspended">Suspendu (<bdi>inquiry</bdi>)' in page.text
    fiu = await c.get("/console/members?kind=fiu")
    assert re.findall(r'data-authority="([A-Z-]+)"', fiu.text) == ["BR-PF"]
    france = await c.get("/console/members?country=FR")
    assert re.findall(r'data-authority="([A-Z-]+)"', france.text) == ["FR-PNF"]
    nobody = await c.get("/console/members?country=DE")
    assert "No members." in nobody.plain


async def test_the_log_page_shows_the_verified_log_and_the_hubs_checkpoint(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    c = await client(await open_console()).signed_in()
    empty = await c.get("/console/log")
    assert "The log is empty" in empty.plain
    await desk.admit("FR-PNF")
    await desk.admit("BR-PF")
    page = await c.get("/console/log")
    state = await desk.directory()
    assert text_of(page.text, "head-hash") == state.head.hex()
    assert text_of(page.text, "checkpoint-hash") == state.head.hex()
    assert 'id="relation" data-same="true"' in page.text
    assert re.findall(r'<tr data-seq="(\d+)">', page.text) == ["2", "1"]
    assert page.text.count('<td class="signers">alice, bob</td>') == 2
    assert "globe-desk" in text_of(page.text, "verified")


async def test_an_application_a_lying_hub_serves_altered_fails_verification_here(
    desk: Desk, open_console: ConsoleFactory, client, hub_proxy: HubProxy
) -> None:
    member = await desk.apply("FR-PNF")
    garbled = await desk.apply("BR-PF")
    signed = await desk.apply("ES-FCC")
    draft = (await desk.client(desk.admins[0]).admin_application(signed.app_id)).draft
    assert draft is not None
    await desk.sign(draft, 0)

    def alter(path: str, body: bytes) -> bytes:
        if path == f"/v1/admin/applications/{garbled.app_id}":
            return b'{"id": "not what the hub answers"}'
        if path == "/v1/admin/proposals":
            served = orjson.loads(body)
            for p in served["proposals"]:
                p["signed"]["payload"] = canonical.b64e(b'{"type":"nonsense"}')
            return orjson.dumps(served)
        if path != f"/v1/admin/applications/{member.app_id}":
            return body
        served = orjson.loads(body)
        container = SignedObject.decode(canonical.b64d(served["application"], what="test"),
                                        max_size=1 << 20, what="application")  # fmt: skip
        payload = orjson.loads(container.payload)
        payload["kinds"] = ["anti-corruption", "mla-central"]  # more than the authority asked
        served["application"] = canonical.b64e(
            SignedObject(canonical.encode(payload), container.signatures).encode()
        )
        return orjson.dumps(served)

    hub_proxy.rewrite = alter
    c = await client(await open_console(presupplied=True, hub=hub_proxy.url)).signed_in()
    listed = await c.get("/console/applications")
    assert listed.text.count('data-verdict="fails"') == 2
    page = await c.get(f"/console/applications/{member.app_id}")
    assert 'id="verdict" data-verdict="fails"' in page.text
    assert "does not verify against the pinned genesis: do not approve it" in page.plain
    assert "signature does not verify" in page.plain
    assert "fingerprint" not in page.text.split('id="verdict"', 1)[1].split("</section>", 1)[0]
    assert 'id="approve"' not in page.text
    assert 'id="signed-fields"' not in page.text
    assert 'id="reject"' in page.text  # what to do with it instead
    answer = await c.post(f"/console/applications/{member.app_id}/approve",
                          {"csrf": page.csrf, "sha256": "0" * 64})  # fmt: skip
    assert (answer.status, answer.problem) == (401, "bad-signature")
    other = await c.get(f"/console/applications/{garbled.app_id}")
    assert 'id="verdict" data-verdict="fails"' in other.text
    assert "the hub did not serve the application: hub response application" in other.plain
    proposals = await c.get("/console/proposals")
    assert 'data-verdict="fails"' in proposals.text
    assert "This proposal does not decode: do not sign it." in proposals.plain
    assert "action: type must be &#39;membership-action&#39;" in proposals.text
    assert "Add my signature" not in proposals.plain
    assert [len(p.signed.signatures) for p in await desk.proposals()] == [1]


async def test_the_network_page_reads_the_hubs_metrics_or_says_they_are_unreachable(
    desk: Desk, open_console: ConsoleFactory, client, hub_proxy: HubProxy
) -> None:
    await desk.admit("FR-PNF")
    direct = await client(await open_console()).signed_in()
    page = await direct.get("/console/network")
    assert text_of(page.text, "quorum") == "2 of 3 admins"
    assert 'id="ready" data-ready="true"' in page.text
    assert 'id="metrics" data-metrics="read"' in page.text
    entries = re.search(r'<tr data-metric="globe_hub_log_entries"><td>[^<]+</td><td>(\d+)</td>',
                        page.text)  # fmt: skip
    assert entries is not None
    assert entries.group(1) == "1"
    assert '<dd data-status="active">1</dd>' in page.text
    hub_proxy.hide_metrics = True
    proxied = await client(await open_console(1, hub=hub_proxy.url)).signed_in()
    hidden = await proxied.get("/console/network", **{"Accept-Language": "es"})
    assert 'id="metrics" data-metrics="unreachable"' in hidden.text
    assert "Las métricas del hub no son accesibles desde este puesto" in hidden.plain
    assert "answered HTTP 404 to GET /metrics" in hidden.plain
    assert 'id="ready" data-ready="true"' in hidden.text  # the rest passes through
    hub_proxy.rewrite = lambda path, body: b'{"status": "ready"}' if path == "/readyz" else body
    unready = await proxied.get("/console/network")
    assert 'id="ready" data-ready="false"' in unready.text
    assert "hub response readiness" in unready.plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# HELP a_total A.\n# TYPE a_total counter\na_total 3\n", {"a_total": 3.0}),
        ('r_total{reason="malformed"} 2\nr_total{reason="rate-limited"} 5\n', {"r_total": 7.0}),
        ("a_total 4 1712345678000\n", {"a_total": 4.0}),
        ("a_total NaN\na_total +Inf\nb_total 1\n", {"b_total": 1.0}),
        ("a_total\n{} 3\n<html>not metrics</html>\na_total x\n", {}),
        ('h_bucket{le="0.1"} 9\nh_sum 2.5\n', {}),
    ],
    ids=["counter", "labels-summed", "timestamp", "not-finite", "garbage", "unwanted"],
)
def test_the_metrics_text_is_read_strictly(text: str, expected: dict[str, float]) -> None:
    assert parse_metrics(text, ("a_total", "b_total", "r_total")) == expected
