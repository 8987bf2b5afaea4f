"""Signed requests to other members' peer listeners (PROTOCOL.md §10.4).

The only place the node talks HTTP to a peer.  Every request is signed with
the node's transport key for the peer as audience; peers are reached only at
public addresses unless ``allow_private_endpoints`` (M7), follow no redirects,
time out after ``direct_timeout`` and are read for at most 64 KiB.  Failures
are translated at this boundary: no answer is :class:`TransportError`, a
problem+json answer is the error it names, anything else a TransportError.
"""

from __future__ import annotations

from typing import Final, Protocol

import aiohttp
import yarl

from globe_io.hubclient import request_payload
from globe_io.problems import refusal
from globe_node.context import NodeContext
from globe_node.netguard import PublicOnlyResolver, check_literal
from protocol.errors import GlobeError, TransportError
from protocol.ids import AuthorityId
from protocol.requestauth import HEADER, sign_request

__all__ = ["MAX_PEER_ANSWER", "PeerClient", "PeerTransport"]

#: The most of a peer's answer that is read (a receipt is at most 4 KiB).
MAX_PEER_ANSWER: Final = 64 * 1024


class PeerTransport(Protocol):
    """Posting a signed body to a peer (the real client, or a test double)."""

    async def post(self, endpoint: str, peer: AuthorityId, path: str, body: bytes) -> bytes:
        """POST ``body`` to ``endpoint + path``; the answer's body, or a GlobeError."""
        ...  # pragma: no cover - a protocol

    async def close(self) -> None:
        """Release connections."""
        ...  # pragma: no cover - a protocol


class PeerClient:
    """The real peer transport over aiohttp."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            private = self.ctx.config.allow_private_endpoints
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=None if private else PublicOnlyResolver()),
                timeout=aiohttp.ClientTimeout(total=self.ctx.config.direct_timeout),
            )
        return self._session

    async def post(self, endpoint: str, peer: AuthorityId, path: str, body: bytes) -> bytes:
        """POST a signed ``body`` to the peer; its 200/201 answer, else a GlobeError."""
        ctx = self.ctx
        url = endpoint.rstrip("/") + path
        try:
            if not ctx.config.allow_private_endpoints:
                check_literal(yarl.URL(url).raw_host or "")
            headers = {
                "Content-Type": "application/octet-stream",
                HEADER: sign_request(
                    key=ctx.keys.transport, network=ctx.genesis.digest, audience=str(peer),
                    method="POST", target=yarl.URL(url).raw_path, body=body, created=ctx.now(),
                ),
            }  # fmt: skip
            async with self._http().post(
                url, data=request_payload(body), headers=headers, allow_redirects=False
            ) as r:
                data = await r.content.read(MAX_PEER_ANSWER)
                status, content_type = r.status, r.content_type
        except GlobeError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise TransportError(f"peer {peer} unreachable: {type(exc).__name__}") from None
        if status in (200, 201):
            return data
        raise refusal(
            status, content_type, data,
            otherwise=lambda: TransportError(f"peer {peer} answered HTTP {status}"),
        )  # fmt: skip

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
