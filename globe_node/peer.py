"""The node's peer listener: direct delivery from other members (PROTOCOL.md §10.4).

``POST /v1/inbox`` takes an envelope from its sender, authenticated by a
Globe-Auth signature (§10) with the sender's certified transport key and this
node's authority id as the audience; the answer is this node's signed
delivery receipt.  ``POST /v1/ping`` is a signed connectivity test.  Every
refusal is problem+json.  The certificate's ``endpoint`` points here through
the operator's TLS proxy.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from globe_io.web import TokenBuckets, json_response, problem_middleware, read_body
from globe_node.node import Node
from protocol.envelope import MAX_ENVELOPE_SIZE, parse_envelope
from protocol.errors import AuthError, GlobeError, MalformedError, StaleError
from protocol.ids import AuthorityId
from protocol.replay import NonceWindow
from protocol.requestauth import HEADER, MAX_SKEW, parse_request_auth, verify_request

__all__ = ["create_peer_app"]

log = logging.getLogger("globe.node.peer")

NODE_KEY: Final = web.AppKey("node", Node)
NONCES_KEY: Final = web.AppKey("nonces", NonceWindow)
PEER_BUCKETS_KEY: Final = web.AppKey("peer_buckets", TokenBuckets)
#: The longest ping body read (§10.4).
MAX_PING: Final = 1024


async def _peer_auth(request: web.Request, body: bytes) -> AuthorityId:
    """The active member whose transport key signed this request for us."""
    node = request.app[NODE_KEY]
    auth = parse_request_auth(request.headers.get(HEADER))
    now = node.now()
    if abs(now - auth.created) > MAX_SKEW:  # before any lookup (§10.3)
        raise StaleError("request timestamp outside the accepted window")
    sender = node.transport_owner(auth.key_id)
    if sender is None:
        raise AuthError("request authentication failed")
    try:
        member = node.state.active_member(sender, now)
    except GlobeError:
        raise AuthError("request authentication failed") from None
    verify_request(
        auth, key=member.certificate.transport_key, network=node.genesis.digest,
        audience=str(node.me), method=request.method, target=request.raw_path, body=body, now=now,
    )  # fmt: skip
    request.app[NONCES_KEY].check_and_add(auth.key_id, auth.nonce, auth.created, now)
    request.app[PEER_BUCKETS_KEY].take(f"member:{sender}")
    return sender


@web.middleware
async def _peer_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A token bucket per remote address, before anything is read (429 + Retry-After)."""
    request.app[PEER_BUCKETS_KEY].take(f"addr:{request.remote}")
    return await handler(request)


async def peer_inbox(request: web.Request) -> web.Response:
    """Direct delivery: the same checks as the hub path, then this node's receipt."""
    node = request.app[NODE_KEY]
    body = await read_body(request, MAX_ENVELOPE_SIZE)
    sender = await _peer_auth(request, body)
    if parse_envelope(body).header.sender != sender:
        raise MalformedError("an envelope is delivered by its sender")
    receipt = await node.receive(body, via="direct")
    return web.Response(body=receipt, content_type="application/json")


async def peer_ping(request: web.Request) -> web.Response:
    """Signed connectivity test: who answered and when."""
    node = request.app[NODE_KEY]
    body = await read_body(request, MAX_PING)
    sender = await _peer_auth(request, body)
    return json_response({"authority": str(node.me), "time": node.now(), "from": str(sender)})


async def _healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def create_peer_app(node: Node) -> web.Application:
    """The direct-delivery listener."""
    app = web.Application(
        middlewares=[problem_middleware(logger=log), _peer_limits],
        client_max_size=MAX_ENVELOPE_SIZE + 1,
    )
    app[NODE_KEY] = node
    app[NONCES_KEY] = NonceWindow(window=120)
    app[PEER_BUCKETS_KEY] = TokenBuckets(
        rate=node.config.peer_rate, burst=node.config.peer_burst, clock=time.monotonic
    )
    app.router.add_post("/v1/inbox", peer_inbox)
    app.router.add_post("/v1/ping", peer_ping)
    app.router.add_get("/healthz", _healthz)
    return app
