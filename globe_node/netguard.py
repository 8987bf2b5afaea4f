"""Where a node may send: only to public addresses unless configured otherwise (M7).

A member's certified endpoint is chosen by the applicant. Without a check, a
certificate naming ``http://127.0.0.1:…`` or an address inside an authority's
network would make every other node post signed envelopes there (server-side
request forgery).  The check is made on the addresses a name *resolves to*, in
the resolver the HTTP client connects with, so a name cannot pass the check and
then resolve elsewhere; IP literals (which aiohttp does not resolve) are checked
before the request.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from protocol.errors import TransportError

__all__ = ["PublicOnlyResolver", "check_literal"]


def _public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return bool(ip.is_global) and not ip.is_multicast


def check_literal(host: str) -> None:
    """Refuse a non-public IP literal; names are checked when resolved."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return  # a name: the resolver decides
    if not _public(host.strip("[]")):
        raise TransportError(f"endpoint address {host} is not public (allow_private_endpoints)")


class PublicOnlyResolver(AbstractResolver):
    """A resolver that drops loopback, private, link-local and reserved addresses."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if _public(str(r["host"]))]
        if not kept:
            raise OSError(f"{host} resolves to no public address (allow_private_endpoints)")
        return kept

    async def close(self) -> None:
        await self._inner.close()
