"""The client's address behind a reverse proxy, believed only from trusted proxies.

Once a TLS proxy runs in front of a listener, every connection comes from the
proxy, so per-address token buckets would put every client in one bucket.  The
proxy names the client in a header, but anyone can send that header: it is read
only when the TCP peer is a configured trusted proxy (``[http] trusted_proxies``,
networks in CIDR form), and otherwise ignored.

The header is read right to left, RFC 7239 §7.4's way: each proxy appends the
address it received the connection from, so the rightmost entry not itself a
trusted proxy is the client; whatever a client wrote into the header itself
stands to the left of it and is never reached.  ``X-Forwarded-For`` is read when
present (what deploy/nginx sets, appending with ``$proxy_add_x_forwarded_for``),
else ``Forwarded`` (its ``for=`` parameters).  A proxy that only sets
``Forwarded`` must drop ``X-Forwarded-For`` from client requests, or a client
could choose its own address.  An entry that is not an IP address (``unknown``,
an obfuscated identifier, garbage) where the client should be leaves the proxy's
own address in place: the fault is the proxy chain's, and guessing would let a
client choose.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from globe_io.errors import ConfigError

__all__ = ["TrustedProxies", "forwarded_middleware"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: A ``for=`` parameter of a ``Forwarded`` element (quoted or a token).
_FOR: Final = re.compile(r'(?:^|;)\s*for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)
#: Hops read at most: a longer chain is not one a deployment of ours builds.
_MAX_HOPS: Final = 32


def _address(text: str) -> _Address | None:
    """An IP address from a header entry: bare, ``[v6]``, ``[v6]:port`` or ``v4:port``."""
    text = text.strip().strip('"').replace('\\"', '"')
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else ""
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has several colons)
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    """The proxies whose forwarding headers are believed."""

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[str]) -> None:
        """Parse ``networks`` (``"127.0.0.1/32"``, ``"::1"``, ``"10.0.0.0/8"``).

        A value that is not an address or a network in CIDR form (host bits set
        included) is a :class:`ConfigError` naming it.
        """
        parsed: list[_Network] = []
        for text in networks:
            try:
                parsed.append(ipaddress.ip_network(text, strict=True))
            except (TypeError, ValueError):
                raise ConfigError(
                    f"trusted_proxies: {text!r} is not an IP network in CIDR form "
                    '(for example "127.0.0.1/32")'
                ) from None
        self.networks: tuple[_Network, ...] = tuple(parsed)

    def trusts(self, address: _Address | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return address is not None and any(address in net for net in self.networks)

    def client(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The client's address for a connection from ``peer`` with these request headers."""
        if not self.trusts(_address(peer or "")):
            return peer
        for hop in reversed(_hops(headers)):
            address = _address(hop)
            if address is None:
                return peer
            if not self.trusts(address):
                return str(address)
        return peer  # every hop is a proxy of ours: the request began among them


def _hops(headers: Mapping[str, str]) -> list[str]:
    """The forwarding chain, leftmost (farthest) first, at most :data:`_MAX_HOPS` long."""
    getall = getattr(headers, "getall", None)

    def values(name: str) -> list[str]:
        found = getall(name, []) if getall is not None else [headers.get(name, "")]
        return [v for v in found if v]

    xff = values("X-Forwarded-For")
    if xff:
        hops = [part for value in xff for part in value.split(",")]
    else:
        hops = [
            match.group(1)
            for value in values("Forwarded")
            for element in value.split(",")
            for match in [_FOR.search(element)]
            if match is not None
        ]
    return hops[-_MAX_HOPS:]


def forwarded_middleware(trusted: TrustedProxies) -> Middleware:
    """An outermost middleware: the request seen by everything after it carries the
    client's address as ``request.remote`` (rate limits, logs)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = trusted.client(request.remote, request.headers)
        if client is not None and client != request.remote:
            request = request.clone(remote=client)
        return await handler(request)

    return middleware
