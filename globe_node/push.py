"""The hub's push stream, from the node's side (``/v1/stream``, PROTOCOL.md §10.5).

The node pulls once (anything that arrived while it was disconnected), then
holds the hub's WebSocket open: it answers the hub's challenge with a Globe-Auth
signature over it, asks for the items after the last one pulled, and processes
the pushed items as the pull path would.  It
reconnects with jittered backoff; while the stream is connected the periodic
pull is skipped.  Frames are decoded by the one strict decoder.

Frames are read as they come, into a queue of at most :data:`PUSH_BATCH` items,
while the items before them are processed: whatever has arrived meanwhile is
processed next as one batch, with one acknowledgement to the hub (the pull path
acknowledges a page at a time).  A quiet stream still processes each item as
soon as it arrives; a busy one costs the hub one ``/v1/mailbox/ack`` per batch
instead of one per item.  The queue bounds the node's memory: when it is full
the node stops reading, and the hub's own send timeout applies.

The auth message asks for ``items`` frames of up to :data:`PUSH_BATCH` items
(``max_items``, PROTOCOL.md §10.5), the queue's bound, so one frame never holds
more than a batch and the node holds at most the queue plus the frame being
queued; it costs the hub one send per page instead of one per item.  Both frame
types are accepted, and each item of an ``items`` frame is checked as a single
``item`` frame is: a frame with one bad item is refused whole, before any of its
items is queued, and ends the stream as any malformed frame does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import yarl

from globe_io.hubclient import MailboxItem
from globe_node.context import NodeContext
from globe_node.inbox import Inbox
from protocol import canonical, strictjson
from protocol.errors import GlobeError, MalformedError, TransportError
from protocol.requestauth import sign_request

__all__ = ["PushClient"]

log = logging.getLogger("globe.node.push")

#: The largest frame read from the hub (an item carries an envelope, base64url).
MAX_FRAME = 4 * 1024 * 1024
#: Pushed items processed (and acknowledged) together at most.
PUSH_BATCH = 64


class PushClient:
    """Keep the push stream open and feed its items to the inbox."""

    def __init__(self, *, ctx: NodeContext, inbox: Inbox) -> None:
        self.ctx = ctx
        self.inbox = inbox
        self.connected = False
        #: The items read from the stream and not yet processed (none when disconnected).
        self.queue: asyncio.Queue[MailboxItem] | None = None
        #: Whether to connect now: not while this node is suspended or revoked, when the
        #: hub can only refuse (the node sets it; globe_node.standing).
        self.may_connect: Callable[[], bool] = lambda: True

    async def run(self) -> None:
        """Hold the stream open until cancelled; reconnect with backoff."""
        attempt = 0
        while True:
            try:
                if self.may_connect():
                    await self._session()
                    attempt = 0
            except (GlobeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("push stream closed: %s", getattr(exc, "detail", type(exc).__name__))
            except Exception:  # a bug of ours: logged, then reconnect
                log.exception("push stream failed")
            self.connected = False
            attempt += 1
            delay = min(self.ctx.config.retry_max, 0.5 * 2 ** min(attempt, 10))
            await asyncio.sleep(delay * self.ctx.jitter())

    async def _session(self) -> None:
        ctx = self.ctx
        url = ctx.config.hub_url.rstrip("/") + "/v1/stream"
        path = yarl.URL(url).raw_path
        # What arrived while disconnected is pulled first, and the stream asked only for
        # what comes after it: opened first, the stream would send the same backlog the
        # pull fetches (a node back after a day offline would process it all twice).
        _, after = await self.inbox.drain()
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, heartbeat=30, max_msg_size=MAX_FRAME) as ws,
        ):
            hello = _frame(await ws.receive_str(timeout=30))
            if hello.get("type") != "challenge":
                raise MalformedError("push stream: expected a challenge")
            nonce = canonical.b64d(str(hello.get("nonce", "")), what="challenge")
            auth = sign_request(
                key=ctx.keys.transport, network=ctx.genesis.digest, audience="hub",
                method="GET", target=path, body=nonce, created=ctx.now(),
            )  # fmt: skip
            await ws.send_json(
                {"type": "auth", "auth": auth, "after": after, "max_items": PUSH_BATCH}
            )
            self.connected = True
            queue: asyncio.Queue[MailboxItem] = asyncio.Queue(maxsize=PUSH_BATCH)
            self.queue = queue
            reader = asyncio.create_task(_read(ws, queue))
            try:
                await self._consume(queue, reader)
            finally:
                self.queue = None
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def _consume(self, queue: asyncio.Queue[MailboxItem], reader: asyncio.Task[None]) -> None:
        """Process what the reader queues, a batch at a time, until the stream ends; then
        raise what ended it."""
        while not (reader.done() and queue.empty()):
            batch: list[MailboxItem] = []
            if queue.empty():
                getter = asyncio.ensure_future(queue.get())
                try:
                    await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not getter.done():  # the stream ended, or this task was cancelled
                        getter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await getter
                if getter.cancelled():
                    continue
                batch.append(getter.result())
            while len(batch) < PUSH_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            await self.inbox.process_items(batch)
        reader.result()


async def _read(ws: aiohttp.ClientWebSocketResponse, queue: asyncio.Queue[MailboxItem]) -> None:
    """Queue the stream's items until it closes; a refusal frame raises."""
    async for msg in ws:
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        obj = _frame(msg.data)
        if obj.get("type") == "item":
            reader = canonical.ObjectReader(obj, "push item")
            reader.string("type", max_len=16)
            await queue.put(_item(reader))
        elif obj.get("type") == "items":
            reader = canonical.ObjectReader(obj, "push items")
            reader.string("type", max_len=16)
            # Every item checked before any is queued: a bad one refuses the frame.
            items = [_item(r) for r in reader.objects("items", min_items=1, max_items=PUSH_BATCH)]
            reader.done()
            for item in items:
                await queue.put(item)
        elif obj.get("type") == "error":
            problem = obj.get("problem")
            detail = problem.get("detail") if isinstance(problem, dict) else None
            raise TransportError(str(detail or "the hub closed the stream"))


def _item(reader: canonical.ObjectReader) -> MailboxItem:
    """One pushed item's fields (an ``item`` frame's, after its type, or one entry of
    an ``items`` frame), checked alike: nothing else may be in it."""
    item = MailboxItem(
        reader.integer("cursor"), reader.string("kind", max_len=32),
        reader.blob("data", max_len=MAX_FRAME),
    )  # fmt: skip
    reader.done()
    return item


def _frame(text: str) -> dict[str, Any]:
    value = strictjson.loads(text.encode("utf-8", "surrogatepass"), max_size=MAX_FRAME)
    if not isinstance(value, dict):
        raise MalformedError("push stream: a frame is a JSON object")
    return value
