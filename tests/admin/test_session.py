"""What every ``globe-admin`` workflow command shares (globe_admin/session.py), against a real
hub: the key must be an admin key of the pinned genesis, an authentication refusal is
explained when its cause can be found (a skewed clock, another genesis served) and passed
on as the hub said it otherwise, and an application is named by its id or a unique prefix."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from globe_admin.session import ADMIN_KEY_PURPOSE, Admin
from protocol.keys import SigningKey
from protocol.keystore import INTERACTIVE, seal_secret
from protocol.requestauth import HEADER
from tests.admin.desk import Desk, DeskFactory, network
from tests.admin.runner import PASSPHRASE, assert_refused
from tests.support.servers import serve_app

REFUSED = "request authentication failed"


async def test_a_key_that_is_no_admin_key_of_the_pinned_genesis(desk: Desk) -> None:
    stranger = desk.tmp / "stranger.key"
    stranger.write_bytes(
        seal_secret(SigningKey.generate().seed, PASSPHRASE.encode(), purpose=ADMIN_KEY_PURPOSE,
                    cost=INTERACTIVE)
    )  # fmt: skip
    desk.keys.append(stranger)
    assert_refused(
        await desk.admin("applications", key=len(desk.keys) - 1),
        f"{stranger} is not an admin key of the pinned genesis globe-desk",
    )


async def test_a_reason_is_checked_before_anything_is_opened(desk: Desk) -> None:
    """Refused reasons never reach the hub; an accepted one (several lines, 2000 characters)
    goes on to the hub, where FR-PNF is no member and no application id starts with abcd."""
    hidden = "--reason: at most 2000 characters, no control or bidi characters"
    for why, refused in [
        (" \t ", "--reason must not be empty"),
        ("integrity\u202einquiry", hidden),
        ("integrity\x07inquiry", hidden),
        ("x" * 2001, hidden),
        ("integrity inquiry\nopened in May", None),
        ("x" * 2000, None),
    ]:
        for command in ("suspend", "amend"):
            assert_refused(
                await desk.admin(command, "FR-PNF", "--reason", why),
                refused or "FR-PNF is not a member",
            )
        assert_refused(
            await desk.admin("reject", "abcd", "--reason", why),
            refused or "no application id starts with abcd",
        )


@pytest.mark.parametrize("skew", [-600, 600])
async def test_a_skewed_clock_is_named(desk: Desk, skew: int) -> None:
    desk.clock.offset = skew
    assert_refused(
        await desk.admin("applications"),
        "request timestamp outside the accepted window: check this workstation's clock "
        "against the hub's",
    )


@pytest.mark.parametrize(
    ("limits", "explained"),
    [
        ({}, True),
        # The hub answers the key's refusal, then refuses to say which genesis it serves
        # (one request per address, no refill): the admin gets the hub's own answer.
        ({"burst": 1, "rate_per_second": 1e-6}, False),
    ],
)
async def test_a_hub_serving_another_genesis(
    make_desk: DeskFactory, limits: dict[str, float], explained: bool
) -> None:
    other, _admins, hub_key = network(("xavier", "yvonne"), 1, 1_700_000_000)
    desk = await make_desk(served=(other, hub_key), **limits)
    detail = (
        f"the hub at {desk.url} serves another genesis than the pinned one "
        f"({desk.genesis.fingerprint()}); check --genesis and --hub"
    )
    assert_refused(await desk.admin("applications"), detail if explained else REFUSED)


async def test_a_proxy_that_rewrites_the_path_is_not_blamed_on_the_genesis(desk: Desk) -> None:
    """A reverse proxy publishes the hub under ``/globe`` but strips the prefix: what the
    admin signed is not what the hub checks.  The hub serves the pinned genesis, so its
    refusal is passed on as it came."""
    async with aiohttp.ClientSession() as session:

        async def forward(request: web.Request) -> web.Response:
            target = desk.url + request.raw_path.removeprefix("/globe")
            headers = {k: v for k, v in request.headers.items() if k in (HEADER, "Content-Type")}
            async with session.request(
                request.method, target, data=await request.read(), headers=headers
            ) as resp:
                return web.Response(
                    status=resp.status, body=await resp.read(),
                    headers={"Content-Type": resp.headers["Content-Type"]},
                )  # fmt: skip

        proxy = web.Application()
        proxy.router.add_route("*", "/globe/{tail:.*}", forward)
        async with serve_app(proxy) as served:
            url = f"{served.url}/globe"
            assert_refused(await desk.admin("applications", hub=url), REFUSED)
            # Straight to the hub, the same admin is served.
            assert (await desk.admin("applications")).out == "no applications\n"


def test_an_admin_key_the_genesis_does_not_name_is_shown_by_its_id() -> None:
    """No command reaches this: the log's signers are verified against the genesis's admins
    first, so every signer has a name."""
    genesis, admins, _hub_key = network(("alice", "bob"), 2, 1_700_000_000)
    admin = Admin(genesis, admins[0], "alice", "https://hub.example.org", 10.0)
    stranger = SigningKey.generate().key_id
    assert [admin.admin_name(k) for k in (admins[1].key_id, stranger)] == ["bob", str(stranger)]


async def test_an_application_is_named_by_a_unique_prefix_of_its_id(desk: Desk) -> None:
    authorities = ["FR-PNF", "DE-BKA", "ES-FCC", "IT-ANAC", "PT-DCIAP", "BE-OCRC", "NL-FIOD",
                   "AT-WKSTA"]  # fmt: skip
    prefixes = ["abcd00", "abcd01", "abcd02", "abcd03", "abcd04", "abcd05", "ef0100", "ef0101"]
    ids = {}
    for authority, prefix in zip(authorities, prefixes, strict=True):
        desk.rng.prefix = bytes.fromhex(prefix)  # the hub's next application id starts so
        ids[prefix] = (await desk.apply(authority, prove=prefix != "abcd03")).app_id
        assert ids[prefix].startswith(prefix)
    abcd = sorted(i for p, i in ids.items() if p.startswith("abcd"))

    assert_refused(
        await desk.admin("show", "abc"),
        "an application id prefix has at least 4 hex digits, not 3: 'abc'",
    )
    assert_refused(
        await desk.admin("show", "ABCD"),
        "application id must be 32 lower-case hex digits, not 'ABCD'",
    )
    assert_refused(await desk.admin("show", "0123"), "no application id starts with 0123")
    assert_refused(
        await desk.admin("approve", "abcd"),
        f"application id prefix abcd is ambiguous: {', '.join(abcd[:5])}, ...",
    )
    assert_refused(
        await desk.admin("reject", "ef01", "--reason", "r"),
        f"application id prefix ef01 is ambiguous: {ids['ef0100']}, {ids['ef0101']}",
    )

    # abcd03 never proved its key-agreement key: the hub has no draft for it yet.
    shown = (await desk.admin("show", "abcd03", "--json")).json()
    assert (shown["id"], shown["authority"], shown["status"]) == (
        ids["abcd03"], "IT-ANAC", "awaiting-pop",
    )  # fmt: skip
    no_draft = "no draft yet: the applicant has not proven its key-agreement key"
    assert shown["draft"] == {"present": False, "matches": False, "detail": no_draft}
    assert (
        f"\ndraft        DOES NOT MATCH: {no_draft}\n" in (await desk.admin("show", "abcd03")).out
    )
    assert_refused(
        await desk.admin("approve", "abcd03"),
        f"application {ids['abcd03']} is awaiting-pop, not pending approval",
    )

    approved = await desk.admin("approve", "abcd04", "--json")
    assert approved.json()["application"] == ids["abcd04"]
    assert (approved.json()["status"], approved.json()["authority"]) == ("open", "PT-DCIAP")
    rejected = await desk.admin("reject", "ef0101", "--reason", "not an UNCAC art. 36 authority")
    assert (rejected.code, rejected.out, rejected.err) == (
        0, f"application {ids['ef0101']} (AT-WKSTA) rejected\n", "",
    )  # fmt: skip
    listed = (await desk.admin("applications", "--json")).json()["applications"]
    assert sorted((a["id"], a["status"]) for a in listed) == sorted(
        (i, {"abcd03": "awaiting-pop", "ef0101": "rejected"}.get(p, "pending"))
        for p, i in ids.items()
    )
