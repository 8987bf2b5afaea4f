"""Push delivery: ``GET /v1/stream``, a WebSocket that hands mailbox items to a
connected member as soon as the commit that stored them is done (PROTOCOL.md §10.5).

Protocol::

    hub  → {"type": "challenge", "nonce": "<b64url of 32 random bytes>"}
    node → {"type": "auth", "auth": "<Globe-Auth value>", "after": <cursor>,
            "max_items": k}                                         (max_items optional)
    hub  → {"type": "item", "cursor": n, "kind": "...", "data": "<b64url>"}  (repeated)
      or → {"type": "items", "items": [{"cursor": n, "kind": "...", "data": "..."}, ...]}

The ``auth`` value is a request-auth signature (PROTOCOL.md §10) with method
``GET``, target ``/v1/stream`` and the raw challenge bytes as the body, made
with the member's transport key: it is checked exactly as a signed request
(active member, clock window, nonce, per-key rate limit), and because it
covers this connection's challenge a recorded one is useless on any other.
Refusals are ``{"type": "error", "problem": {RFC 9457}}`` followed by a close
(4401 authentication, 1008 protocol violation, 1013 try again later, 1011
hub trouble, 4409 replaced by a newer connection of the same member, 1001
hub shutting down).  The node still acknowledges with ``POST
/v1/mailbox/ack``; the stream only delivers, so nothing is lost when a socket
closes: the items stay in the mailbox until receipts release them.

Frames of several items are negotiated: a node whose auth message carries
``max_items`` (an integer, 2 to 256) gets only ``items`` frames, each holding up
to that many items of one page in cursor order, and no more than ``max_frame``
bytes unless it holds a single larger item; any other ``max_items`` is a
malformed auth message.  A node that does not ask gets one ``item`` frame per
item, as nodes that predate the field expect.  A frame per page instead of per
item is what makes the stream cheap for the hub: one encoding, one send and one
send timeout for the page instead of one each per item.

Memory is bounded per connection: the database is the queue.  A commit only
sets a flag; the connection then pulls one page at a time after its last
sent cursor, and a send that cannot drain within ``send_timeout`` (a slow or
stalled reader) closes the socket with 1013 and drops its buffer.  Idle
sockets are probed by WebSocket pings and closed when pongs stop; a socket
that does not authenticate within ``auth_timeout`` is closed; incoming frames
are capped at ``max_msg_size``; connections are capped in total and per member.

Several hub processes on one PostgreSQL database: each process LISTENs on
channel ``globe_mailbox`` on a dedicated connection and NOTIFYs it with the
recipients' authority ids after each commit, so the process that holds the
recipient's socket wakes up wherever the message was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import orjson
from aiohttp import WSMsgType, web
from sqlalchemy.engine import make_url

from globe_io.errors import Conflict, RateLimited
from globe_io.hubapi import MailboxItem
from hub.routing import Router
from hub.service import HubService, Principal
from hub.web import verify_auth
from protocol import canonical, strictjson
from protocol.errors import (
    AuthError,
    GlobeError,
    MalformedError,
    ReplayError,
    StorageError,
)

__all__ = ["CHANNEL", "MAX_ITEMS", "STREAM_PATH", "PushLimits", "Pusher", "add_routes"]

log = logging.getLogger("globe.hub.push")

STREAM_PATH: Final = "/v1/stream"
#: The PostgreSQL channel; the payload is comma-separated recipient authority ids.
CHANNEL: Final = "globe_mailbox"
#: How the LISTEN connection shows in ``pg_stat_activity``.
APPLICATION_NAME: Final = "globe-hub-push"
CHALLENGE_LEN: Final = 32
MAX_CURSOR: Final = 2**53 - 1
#: The longest auth message read (a Globe-Auth value is at most 512 characters).
_MAX_AUTH: Final = 2048
_MAX_PAYLOAD: Final = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
#: The most items a node may ask for in one ``items`` frame (``max_items``).
MAX_ITEMS: Final = 256

#: WebSocket close codes.
CLOSE_GOING_AWAY: Final = 1001
CLOSE_POLICY: Final = 1008
CLOSE_INTERNAL: Final = 1011
CLOSE_TRY_LATER: Final = 1013
CLOSE_AUTH: Final = 4401
CLOSE_REPLACED: Final = 4409


@dataclass(frozen=True, slots=True)
class PushLimits:
    """Bounds on what push connections may hold (seconds, bytes, counts)."""

    auth_timeout: float = 10.0  # from upgrade to a valid auth message
    heartbeat: float = 30.0  # ping interval; no pong within half of it closes the socket
    send_timeout: float = 30.0  # one message must drain within this or the socket closes
    close_timeout: float = 5.0  # closing handshake
    max_msg_size: int = 16 * 1024  # largest frame accepted from a node
    page_size: int = 16  # items pulled per round trip to the database
    max_frame: int = 1024 * 1024  # an items frame of several items stays within this
    max_connections: int = 10_000  # open sockets, authenticated or not
    max_per_member: int = 4  # a newer connection closes the oldest beyond this
    resync: float = 60.0  # pull even without a notification this often


class _Stalled(Exception):
    """A send did not drain in time: the peer reads too slowly or not at all."""


@dataclass(eq=False, slots=True)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    principal: Principal | None = None
    replaced: bool = False
    #: Items per frame the node accepts: 1 is an ``item`` frame each, more ``items`` frames.
    max_items: int = 1


class Pusher:
    """Connected members' sockets, woken by commits in this or another hub process."""

    def __init__(
        self,
        router: Router,
        service: HubService,
        *,
        database_url: str | None = None,
        limits: PushLimits = PushLimits(),
    ) -> None:
        self.router = router
        self.service = service
        self.limits = limits
        self._sockets: set[_Connection] = set()
        self._members: dict[str, list[_Connection]] = {}  # authority -> sockets, oldest first
        self._channel: _PgChannel | None = None
        if database_url is not None and make_url(database_url).get_backend_name() == "postgresql":
            dsn = make_url(database_url).set(drivername="postgresql")
            self._channel = _PgChannel(
                dsn.render_as_string(hide_password=False),
                on_notify=self.wake,
                on_reconnect=self.wake_all,
            )

    # -- notifications ---------------------------------------------------------------------

    def notify(self, recipients: set[str]) -> None:
        """After a commit: wake local sockets of ``recipients``; tell other processes."""
        if not recipients:
            return
        self.wake(recipients)
        if self._channel is not None:
            self._channel.publish(recipients)

    def wake(self, recipients: Iterable[str]) -> None:
        """Wake this process's sockets of ``recipients`` (they pull what is new)."""
        for authority in recipients:
            for conn in self._members.get(authority, ()):
                conn.wake.set()

    def wake_all(self) -> None:
        """Wake every authenticated socket (after notifications may have been missed)."""
        for conns in self._members.values():
            for conn in conns:
                conn.wake.set()

    def connections(self, authority: str | None = None) -> int:
        """Open sockets (all of them, or one member's authenticated ones)."""
        if authority is None:
            return len(self._sockets)
        return len(self._members.get(authority, ()))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """LISTEN for other processes' commits (PostgreSQL); fails if it cannot."""
        if self._channel is not None:
            await self._channel.start()

    async def shutdown(self, _app: web.Application | None = None) -> None:
        """Close every socket with 1001 (on application shutdown, before handlers are awaited)."""
        for conn in list(self._sockets):
            conn.wake.set()
        await asyncio.gather(
            *(
                _close(conn, CLOSE_GOING_AWAY, b"hub shutting down", self.limits)
                for conn in list(self._sockets)
            ),
            return_exceptions=True,
        )

    async def stop(self) -> None:
        """Stop listening."""
        if self._channel is not None:
            await self._channel.stop()

    # -- the stream ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/stream``: upgrade, authenticate, then push until either side closes."""
        lim = self.limits
        ws = web.WebSocketResponse(
            heartbeat=lim.heartbeat,
            max_msg_size=lim.max_msg_size,
            compress=False,  # no per-socket zlib state, no compression bombs
            timeout=lim.close_timeout,
        )
        if not ws.can_prepare(request).ok:
            raise MalformedError(f"{STREAM_PATH} is a WebSocket: send an Upgrade request")
        if len(self._sockets) >= lim.max_connections:
            raise RateLimited("too many push connections; retry in 30 s", retry_after=30)
        conn = _Connection(ws, request)
        self._sockets.add(conn)
        try:
            await ws.prepare(request)
            await self._serve(conn)
        except (ConnectionError, TimeoutError, _Stalled):
            pass  # the peer went away or stalled: nothing to tell it
        except Exception:
            log.exception("push connection failed")
            await _close(conn, CLOSE_INTERNAL, b"internal error", lim)
        finally:
            self._sockets.discard(conn)
            self._unregister(conn)
            await _close(conn, CLOSE_GOING_AWAY, b"", lim)
            _release(conn)
        return ws

    async def _serve(self, conn: _Connection) -> None:
        challenge = self.service.rng(CHALLENGE_LEN)
        await _send(conn, {"type": "challenge", "nonce": canonical.b64e(challenge)}, self.limits)
        try:
            msg = await conn.ws.receive(timeout=self.limits.auth_timeout)
        except TimeoutError:
            err = AuthError(f"no authentication within {self.limits.auth_timeout:g} s")
            await _refuse(conn, err, CLOSE_AUTH, self.limits)
            return
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return
        try:
            if msg.type is not WSMsgType.TEXT:
                raise MalformedError("the first message is a text auth message")
            who, after, max_items = await self._authenticate(conn.request.app, msg.data, challenge)
        except GlobeError as exc:
            await _refuse(conn, exc, _close_code(exc), self.limits)
            return
        conn.principal = who
        conn.max_items = max_items
        self._register(conn)
        reader = asyncio.create_task(self._read(conn), name="globe-push-reader")
        reader.add_done_callback(lambda _task: conn.wake.set())
        try:
            await self._pump(conn, who, after, reader)
        finally:
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _authenticate(
        self, app: web.Application, text: str, challenge: bytes
    ) -> tuple[Principal, int, int]:
        """The member, the cursor to start after, and the items per frame it accepts
        (1 when it did not ask for ``items`` frames)."""
        # The one strict decoder (PROTOCOL.md §2.8): the auth message is a JSON body too.
        value = strictjson.loads(text.encode("utf-8", "surrogatepass"), max_size=_MAX_AUTH)
        if not isinstance(value, dict) or value.get("type") != "auth":
            raise MalformedError('the first message is {"type": "auth", ...}')
        if set(value) - {"type", "auth", "after", "max_items"}:
            raise MalformedError("the auth message has unknown fields")
        header, after = value.get("auth"), value.get("after", 0)
        if not isinstance(header, str) or len(header) > 512:
            raise AuthError("request authentication failed")
        if type(after) is not int or not 0 <= after <= MAX_CURSOR:
            raise MalformedError(f"after is a cursor, an integer in 0..{MAX_CURSOR}")
        # Absent: an item frame each.  Present, it asks for items frames, so 1 asks for
        # nothing and is refused as any other value outside 2..MAX_ITEMS (a bool too).
        max_items = 1
        if "max_items" in value:
            asked = value["max_items"]
            if type(asked) is not int or not 1 < asked <= MAX_ITEMS:
                raise MalformedError(f"max_items is an integer in 2..{MAX_ITEMS}")
            max_items = asked
        # A nonce in memory suffices: the signature covers this socket's fresh challenge.
        who = await verify_auth(
            app, header, admin=False, method="GET", target=STREAM_PATH, body=challenge,
            durable=False,
        )  # fmt: skip
        return who, after, max_items

    def _register(self, conn: _Connection) -> None:
        assert conn.principal is not None  # noqa: S101 - authenticated
        conns = self._members.setdefault(str(conn.principal.authority), [])
        conns.append(conn)
        while len(conns) > self.limits.max_per_member:
            oldest = conns.pop(0)
            oldest.replaced = True
            oldest.wake.set()

    def _unregister(self, conn: _Connection) -> None:
        if conn.principal is None:
            return
        key = str(conn.principal.authority)
        conns = self._members.get(key, [])
        if conn in conns:
            conns.remove(conn)
        if not conns:
            self._members.pop(key, None)

    async def _read(self, conn: _Connection) -> None:
        """Drain the node's frames (pings and the close handshake need a reader)."""
        async for msg in conn.ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                err = MalformedError(
                    "the stream takes no messages after auth: acknowledge with POST /v1/mailbox/ack"
                )
                await _refuse(conn, err, CLOSE_POLICY, self.limits)
                return
            if msg.type is WSMsgType.ERROR:
                return

    async def _pump(
        self, conn: _Connection, who: Principal, after: int, reader: asyncio.Task[None]
    ) -> None:
        """Send what waits after ``after``; then what each wake-up finds, in cursor order."""
        lim = self.limits
        cursor = after
        while not reader.done() and not conn.ws.closed:
            if conn.replaced:
                replaced = Conflict("a newer stream of this member replaced this one")
                await _refuse(conn, replaced, CLOSE_REPLACED, lim)
                return
            if self.service.member_transport_key(who.key_id) is None:
                inactive = AuthError("this key no longer belongs to an active member")
                await _refuse(conn, inactive, CLOSE_AUTH, lim)
                return
            conn.wake.clear()
            try:
                cursor = await self._deliver(conn, who, cursor)
            except StorageError as exc:
                await _refuse(conn, exc, CLOSE_TRY_LATER, lim)
                return
            except _Stalled:
                await _close(conn, CLOSE_TRY_LATER, b"too slow: pull the mailbox", lim)
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(lim.resync):
                    await conn.wake.wait()

    async def _deliver(self, conn: _Connection, who: Principal, cursor: int) -> int:
        """Pull and send pages until the mailbox has nothing after ``cursor``: a page
        in as few ``items`` frames as the node's ``max_items`` and ``max_frame``
        allow, or an ``item`` frame per item to a node that did not ask for them."""
        lim = self.limits
        size = lim.page_size
        while True:
            items = (await self.router.pull(who, cursor, size)).items
            if conn.max_items > 1:
                for frame in _items_frames(items, conn.max_items, lim.max_frame):
                    await _send_frame(conn, frame, lim)
            else:
                for item in items:
                    await _send_frame(conn, orjson.dumps({"type": "item", **_wire(item)}), lim)
            if items:
                cursor = items[-1].cursor
            if len(items) < size or conn.ws.closed:
                return cursor


def _close_code(exc: GlobeError) -> int:
    if isinstance(exc, RateLimited | StorageError):
        return CLOSE_TRY_LATER
    if isinstance(exc, AuthError | ReplayError):
        return CLOSE_AUTH
    return CLOSE_POLICY


#: An ``items`` frame around its items, joined by commas (compact JSON, as orjson writes).
_ITEMS_HEAD: Final = b'{"type":"items","items":['
_ITEMS_TAIL: Final = b"]}"


def _wire(item: MailboxItem) -> dict[str, Any]:
    """An item as the stream carries it (the fields of ``MailboxItem.to_json``, in its
    order, without its generic per-field walk)."""
    return {"cursor": item.cursor, "kind": item.kind, "data": canonical.b64e(item.data)}


def _items_frames(items: Sequence[MailboxItem], max_items: int, max_frame: int) -> Iterator[bytes]:
    """``items`` (a page, in cursor order) as ``items`` frames, in order: each of at
    most ``max_items`` items and ``max_frame`` bytes, but for a single item larger
    than that, which goes alone."""
    parts: list[bytes] = []
    size = len(_ITEMS_HEAD) + len(_ITEMS_TAIL)
    for item in items:
        part = orjson.dumps(_wire(item))
        if parts and (len(parts) == max_items or size + 1 + len(part) > max_frame):
            yield _ITEMS_HEAD + b",".join(parts) + _ITEMS_TAIL
            parts, size = [], len(_ITEMS_HEAD) + len(_ITEMS_TAIL)
        parts.append(part)
        size += len(part) + 1  # and a comma, but for the first
    if parts:
        yield _ITEMS_HEAD + b",".join(parts) + _ITEMS_TAIL


async def _send(conn: _Connection, obj: dict[str, Any], lim: PushLimits) -> None:
    """Send one JSON object as a text message (see :func:`_send_frame`)."""
    await _send_frame(conn, orjson.dumps(obj), lim)


async def _send_frame(conn: _Connection, data: bytes, lim: PushLimits) -> None:
    """Send one text message; :class:`_Stalled` if it cannot drain within ``send_timeout``.

    The send runs shielded: cancelling aiohttp's drain would leave its shared
    drain waiter cancelled, and the closing handshake that follows needs it.
    """
    send = asyncio.ensure_future(conn.ws.send_frame(data, WSMsgType.TEXT))
    send.add_done_callback(_retrieve)
    try:
        async with asyncio.timeout(lim.send_timeout):
            await asyncio.shield(send)
    except TimeoutError:
        raise _Stalled from None


def _retrieve(task: asyncio.Future[None]) -> None:
    """Consume the outcome of a send nobody waits for any more (the socket is closing)."""
    if not task.cancelled():
        task.exception()


async def _refuse(conn: _Connection, exc: GlobeError, code: int, lim: PushLimits) -> None:
    """Send an RFC 9457 problem, then close with ``code``."""
    problem = exc.to_problem()
    problem["instance"] = STREAM_PATH
    with contextlib.suppress(ConnectionError, RuntimeError, _Stalled):
        await _send(conn, {"type": "error", "problem": problem}, lim)
    await _close(conn, code, exc.title.encode()[:120], lim)


async def _close(conn: _Connection, code: int, reason: bytes, lim: PushLimits) -> None:
    """Close within bounded time (a stalled peer cannot hold the closing handshake)."""
    if conn.ws.closed or not conn.ws.prepared:
        return
    with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
        async with asyncio.timeout(lim.close_timeout + 1):
            await conn.ws.close(code=code, message=reason)


def _release(conn: _Connection) -> None:
    """Drop bytes still queued for a peer that stopped reading (a graceful close keeps them)."""
    transport = conn.request.transport
    if transport is not None and transport.get_write_buffer_size() > 0:
        transport.abort()


class _PgChannel:
    """LISTEN/NOTIFY on a dedicated asyncpg connection, reconnecting when it drops."""

    def __init__(
        self,
        dsn: str,
        *,
        on_notify: Callable[[Iterable[str]], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self.dsn = dsn
        self.on_notify = on_notify
        self.on_reconnect = on_reconnect
        self._outgoing: set[str] = set()
        self._ready = asyncio.Event()  # set when there is something to publish or to check
        self._conn: Any = None
        self._pid = 0
        self._task: asyncio.Task[None] | None = None

    def publish(self, recipients: Iterable[str]) -> None:
        """Queue a NOTIFY for ``recipients`` (bounded: a set of authority ids)."""
        self._outgoing.update(recipients)
        self._ready.set()

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._run(), name="globe-push-notify")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._outgoing and self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with asyncio.timeout(2):
                    await self._notify(self._outgoing)
        await self._disconnect()

    async def _notify(self, batch: set[str]) -> None:
        for payload in _payloads(sorted(batch)):
            await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload, timeout=5)

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
        )
        try:
            await conn.add_listener(CHANNEL, self._on_message)
            conn.add_termination_listener(lambda _conn: self._ready.set())
            self._pid = conn.get_server_pid()
        except BaseException:
            await conn.close(timeout=2)
            raise
        self._conn = conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _on_message(self, _conn: object, pid: int, _channel: str, payload: str) -> None:
        if pid != self._pid:  # our own NOTIFYs woke this process already
            self.on_notify(a for a in payload.split(",") if a)

    async def _run(self) -> None:
        delay = 0.5
        while True:
            if self._conn is None or self._conn.is_closed():
                await self._disconnect()
                try:
                    await self._connect()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("push LISTEN connection failed (%s); retry in %g s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                delay = 0.5
                log.info("push LISTEN connection restored")
                self.on_reconnect()  # commits elsewhere may have gone unheard meanwhile
            await self._ready.wait()
            self._ready.clear()
            if not self._outgoing or self._conn.is_closed():
                continue
            batch, self._outgoing = self._outgoing, set()
            try:
                await self._notify(batch)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("push NOTIFY failed (%s); will retry", exc)
                self._outgoing |= batch
                self._ready.set()
                await asyncio.sleep(delay)


def _payloads(ids: list[str]) -> Iterable[str]:
    """Comma-joined ids, each payload under PostgreSQL's limit."""
    chunk: list[str] = []
    size = 0
    for a in ids:
        if chunk and size + len(a) + 1 > _MAX_PAYLOAD:
            yield ",".join(chunk)
            chunk, size = [], 0
        chunk.append(a)
        size += len(a) + 1
    if chunk:
        yield ",".join(chunk)


def add_routes(app: web.Application, pusher: Pusher) -> None:
    """Serve ``GET /v1/stream``; LISTEN while the app runs; close sockets on shutdown."""
    app.router.add_get(STREAM_PATH, pusher.handle)
    app.on_shutdown.append(pusher.shutdown)

    async def context(_app: web.Application) -> AsyncIterator[None]:
        await pusher.start()
        yield
        await pusher.stop()

    # First in, last out: LISTEN before the router starts, and the router's final
    # commits at shutdown are still announced to the other processes.
    app.cleanup_ctx.insert(0, context)
