"""The client's address behind a proxy: forwarding headers believed only from trusted
proxies (globe_io/forwarded.py), applied by every guarded listener before its rate
limits see the request."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from globe_io.errors import ConfigError
from globe_io.forwarded import TrustedProxies
from globe_io.httpguard import GuardedRunner, HttpLimits
from globe_io.web import TokenBuckets, problem_middleware
from tests.support.servers import serve_runner

PROXIES = TrustedProxies(["127.0.0.1/32", "10.0.0.0/8", "::1/128"])


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


@pytest.mark.parametrize(
    ("peer", "pairs", "client"),
    [
        # From a trusted proxy: the rightmost hop that is not one of ours.
        ("127.0.0.1", [("X-Forwarded-For", "203.0.113.7")], "203.0.113.7"),
        ("127.0.0.1", [("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.2.3")], "203.0.113.7"),
        # What the client wrote itself stands left of what the proxy appended: never reached.
        ("127.0.0.1", [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "203.0.113.7")],
         "203.0.113.7"),
        ("127.0.0.1", [("X-Forwarded-For", "2001:db8::1")], "2001:db8::1"),
        ("127.0.0.1", [("X-Forwarded-For", "203.0.113.7:4711")], "203.0.113.7"),
        ("127.0.0.1", [("Forwarded", 'for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"')],
         "2001:db8:cafe::17"),
        ("127.0.0.1", [("Forwarded", "proto=https;for=192.0.2.60")], "192.0.2.60"),
        # X-Forwarded-For wins when both are present (what deploy/nginx sets).
        ("127.0.0.1", [("Forwarded", "for=192.0.2.60"), ("X-Forwarded-For", "203.0.113.7")],
         "203.0.113.7"),
        # Garbage where the client should be: the proxy's own address, never a guess.
        ("127.0.0.1", [("X-Forwarded-For", "203.0.113.7, unknown")], "127.0.0.1"),
        ("127.0.0.1", [("Forwarded", "for=_hidden")], "127.0.0.1"),
        # Every hop is a proxy of ours, or there is no header: the peer.
        ("127.0.0.1", [("X-Forwarded-For", "10.0.0.9, 127.0.0.1")], "127.0.0.1"),
        ("127.0.0.1", [], "127.0.0.1"),
        ("::1", [("X-Forwarded-For", "203.0.113.9")], "203.0.113.9"),
        # From anyone else the headers are ignored: a spoof changes nothing.
        ("192.0.2.1", [("X-Forwarded-For", "203.0.113.7")], "192.0.2.1"),
        ("192.0.2.1", [("Forwarded", "for=203.0.113.7")], "192.0.2.1"),
        (None, [("X-Forwarded-For", "203.0.113.7")], None),
        ("not-an-address", [("X-Forwarded-For", "203.0.113.7")], "not-an-address"),
    ],
)  # fmt: skip
def test_the_client_address(peer: str | None, pairs: list[tuple[str, str]], client: str | None):
    assert PROXIES.client(peer, headers(*pairs)) == client


def test_a_plain_mapping_of_headers_is_read_too():
    assert PROXIES.client("10.0.0.1", {"X-Forwarded-For": "203.0.113.5"}) == "203.0.113.5"


def test_only_the_last_hops_are_read():
    chain = ", ".join(["203.0.113.1"] + ["10.0.0.1"] * 40)
    assert PROXIES.client("127.0.0.1", headers(("X-Forwarded-For", chain))) == "127.0.0.1"


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "somewhere", "", "300.0.0.1/32"])
def test_a_wrong_network_is_a_config_error(bad: str):
    with pytest.raises(ConfigError) as info:
        TrustedProxies(["127.0.0.1/32", bad])
    assert info.value.detail == (
        f'trusted_proxies: {bad!r} is not an IP network in CIDR form (for example "127.0.0.1/32")'
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("10.0.0.1", 'trusted_proxies must be a list of networks, e.g. ["127.0.0.1/32"]'),
        ((1,), 'trusted_proxies must be a list of networks, e.g. ["127.0.0.1/32"]'),
        (("nowhere",), "trusted_proxies: 'nowhere' is not an IP network in CIDR form"
                       ' (for example "127.0.0.1/32")'),
    ],
)  # fmt: skip
def test_http_limits_check_the_trusted_proxies(value: object, problem: str):
    limits = HttpLimits(trusted_proxies=value)  # type: ignore[arg-type]
    assert limits.problems() == [problem]
    with pytest.raises(ConfigError):
        limits.check()


def _bucketed_app() -> web.Application:
    """A listener with the hub's per-address bucket: one request per address."""
    buckets = TokenBuckets(rate=0.001, burst=1, clock=time.monotonic)

    @web.middleware
    async def per_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        buckets.take(f"addr:{request.remote}")
        return await handler(request)

    async def who(request: web.Request) -> web.Response:
        return web.json_response({"remote": request.remote})

    app = web.Application(
        middlewares=[problem_middleware(logger=logging.getLogger("test")), per_address]
    )
    app.router.add_get("/who", who)
    return app


async def _get(url: str, forwarded: str | None) -> tuple[int, object]:
    hdrs = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    async with aiohttp.ClientSession() as session, session.get(url, headers=hdrs) as resp:
        body = await resp.json(content_type=None)
        return resp.status, body.get("remote", body.get("type"))


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket():
    runner = GuardedRunner(
        _bucketed_app(), limits=HttpLimits(trusted_proxies=("127.0.0.1/32",)), access_log=None
    )
    async with serve_runner(runner) as served:
        url = served.url + "/who"
        assert await _get(url, "203.0.113.1") == (200, "203.0.113.1")
        assert await _get(url, "203.0.113.2") == (200, "203.0.113.2")
        status, slug = await _get(url, "203.0.113.1")
        assert (status, str(slug).rsplit("/", 1)[-1]) == (429, "rate-limited")


async def test_without_trusted_proxies_the_header_is_ignored():
    runner = GuardedRunner(_bucketed_app(), limits=HttpLimits(), access_log=None)
    async with serve_runner(runner) as served:
        url = served.url + "/who"
        assert await _get(url, "203.0.113.1") == (200, "127.0.0.1")
        # A spoofed header does not buy a new bucket: the peer is still 127.0.0.1.
        status, slug = await _get(url, "203.0.113.2")
        assert (status, str(slug).rsplit("/", 1)[-1]) == (429, "rate-limited")
