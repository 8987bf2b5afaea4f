"""The HTTP layer's own refusals and time limits, for every listener.

Every aiohttp listener of the project (the hub API, a node's peer listener and
its local API) is run by :class:`GuardedRunner` and bound with
:func:`start_site`, which add what aiohttp's server lacks:

* **Refusals made by the HTTP parser itself** (a malformed request line, a
  header line too long, too many header fields, a NUL byte, a bad
  ``Content-Length``, a broken chunked body, …) are answered RFC 9457
  problem+json like every other refusal, with ``Connection: close``.  aiohttp
  answers them ``400 text/plain`` and logs each one as a traceback at ERROR
  quoting the bytes received: a log-flooding lever for anyone who can reach
  the port.  Here each refusal is counted (``refused``) and logged as at most
  one WARNING line a minute per kind, naming the kind only.
* **Time limits on receiving a request**, in the manner of Apache's
  ``mod_reqtimeout``: the head must arrive within ``head_timeout`` seconds of
  its first byte, the body within ``body_timeout`` seconds plus one second per
  ``body_min_rate`` bytes received, so a large upload at a decent rate is
  never cut and a dribbler is.  A late request is answered ``408``
  (``request-timeout``) if nothing of a response has been sent for it, and the
  connection is closed.  Only *receiving* is timed: a handler may take its time
  and stream a long response; time during which the application holds the
  client back (aiohttp pauses reading while a body waits to be consumed) does
  not count; a connection upgraded to WebSocket is left alone.  Idle
  keep-alive connections stay bounded by aiohttp's own keep-alive timeout.

After a refusal the connection closes *lingering* (RFC 9112 §9.6): FIN after
the response, then input is read and dropped until the client closes, for at
most 2 s, so that a client still sending is not reset before it reads the
response.

aiohttp's parser reports a request only once its head is complete, so it cannot
tell when a request *began*.  :class:`_Framer` follows the framing of the byte
stream beside it (RFC 9112 §6: a head ends at the first empty line; a body is
``Content-Length`` bytes or a chunked body), taking each request's framing from
the parser's own message for it.  The parser stays the only judge of what is
valid: the framer never refuses anything.

What of aiohttp this relies on beyond its public API (checked against 3.14):
``AppRunner._make_server`` (overridden) and ``Server._kwargs`` (the handler's
arguments); in ``RequestHandler``, the attributes ``_messages`` (the queue of
parsed requests, a parse error being a marker whose ``exc`` is the
exception), ``_waiter`` (pending while the connection waits for its next
request), ``_upgraded`` and ``_loop``, and the methods overridden here, which
aiohttp calls on itself: ``data_received``, ``pause_reading``,
``resume_reading``, ``connection_lost``, ``finish_response``, ``handle_error``
and ``log_exception``.  Telling "too many header fields" from other malformed
heads relies on the message of aiohttp's ``BadHttpMessage``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from itertools import islice
from typing import Any, Final

from aiohttp import hdrs, web
from aiohttp.http import RawRequestMessage
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.streams import StreamReader

from globe_io.errors import ConfigError
from globe_io.forwarded import TrustedProxies, forwarded_middleware
from globe_io.httpframing import BODY, HEAD, IDLE, Framer, Framing, body_length
from globe_io.web import LogLimiter, Refused, instance_of, problem
from protocol.errors import GlobeError, ProtocolError

__all__ = [
    "GUARD_REFUSALS",
    "BadHttpRequest",
    "GuardedRunner",
    "HeaderFieldsTooLarge",
    "HttpLimits",
    "RequestTimeout",
    "UriTooLong",
    "start_site",
]

#: Where the HTTP layer logs when the caller names no logger.
_LOGGER: Final = logging.getLogger("globe_io.http")
#: Seconds a refused connection goes on reading (and dropping) input before it
#: closes, unless the client closes first (see _GuardedHandler._hg_linger).
_LINGER: Final = 2.0


# --- refusals ---------------------------------------------------------------------


class BadHttpRequest(ProtocolError):
    """The request is not valid HTTP/1.1: its request line, a header field or its body framing."""

    slug = "bad-http-request"
    status = 400
    title = "Malformed HTTP request"


class HeaderFieldsTooLarge(ProtocolError):
    """A header field line is too long, or the head has too many fields (RFC 6585 §5)."""

    slug = "header-fields-too-large"
    status = 431
    title = "Request header fields too large"


class UriTooLong(ProtocolError):
    """The request line (in practice its target URI) is too long (RFC 9110 §15.5.15)."""

    slug = "uri-too-long"
    status = 414
    title = "Request URI too long"


class RequestTimeout(ProtocolError):
    """The request head or body was not received in time; the connection is closed."""

    slug = "request-timeout"
    status = 408
    title = "Request not received in time"


# --- limits -----------------------------------------------------------------------


#: The refusals this layer makes and counts itself (a middleware that renders one of them,
#: raised from a request's body stream, should not count it again).
GUARD_REFUSALS: Final = (BadHttpRequest, HeaderFieldsTooLarge, UriTooLong, RequestTimeout)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How large a request head may be and how slowly a client may send a request.

    ``head_timeout``: seconds from the first byte of a request to the end of its
    head.  ``body_timeout`` and ``body_min_rate``: the body must be complete within
    ``body_timeout`` seconds of the end of the head, plus one second per
    ``body_min_rate`` bytes received.  ``max_line_size``: bytes of the request
    line (aiohttp's C parser counts its target); ``max_field_size``: bytes of a
    header field (aiohttp 3.14's C parser, meaning to count name and value,
    bounds each of them); ``max_headers``: header fields in one head.
    ``trusted_proxies``: networks (CIDR) whose forwarding headers name the client
    (:mod:`globe_io.forwarded`); empty, the default, believes no such header.
    """

    head_timeout: float = 10.0
    body_timeout: float = 30.0
    body_min_rate: int = 8192
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 100
    trusted_proxies: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first value that is not in its range."""
        problems = self.problems()
        if problems:
            raise ConfigError(problems[0])

    def problems(self) -> list[str]:
        """One line per value that is not in its range (empty: all are)."""
        out: list[str] = []
        for name, integral, upper in _BOUNDS:
            value = getattr(self, name)
            # bool is an int to isinstance, never a limit; NaN fails both comparisons.
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or (integral and not isinstance(value, int)) or not 0 < value <= upper:
                what = "an integer" if integral else "a number of seconds"
                out.append(f"HTTP limit {name} must be {what} in (0, {upper}]; got {value!r}")
        proxies = self.trusted_proxies
        if not isinstance(proxies, tuple | list) or not all(isinstance(p, str) for p in proxies):
            out.append('trusted_proxies must be a list of networks, e.g. ["127.0.0.1/32"]')
        else:
            try:
                TrustedProxies(proxies)
            except ConfigError as exc:
                out.append(exc.detail)
        return out


#: Each limit: its name, whether it is an integer, and the largest sane value.
_BOUNDS: Final[tuple[tuple[str, bool, int], ...]] = (
    ("head_timeout", False, 3600),
    ("body_timeout", False, 3600),
    ("body_min_rate", True, 1 << 30),
    ("max_line_size", True, 65536),
    ("max_field_size", True, 65536),
    ("max_headers", True, 1000),
)

#: Handler arguments the runner sets from :class:`HttpLimits`.
_OWN_KWARGS: Final = frozenset({"max_line_size", "max_field_size", "max_headers"})


# --- the request handler ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Guard:
    """What every connection of one listener shares."""

    limits: HttpLimits
    refused: Refused | None
    logger: logging.Logger
    #: One limiter per listener, so that many connections cannot flood the log either.
    log: LogLimiter


# A connection's state, as far as the guard is concerned.
_GUARDING: Final = 0  # HTTP requests: framed and timed
_UPGRADED: Final = 1  # switched to another protocol (WebSocket): not HTTP any more
_CLOSING: Final = 2  # refused or lost: the rest of the input is dropped unparsed


class _GuardedHandler(web.RequestHandler):
    """aiohttp's request handler (one per connection) with the guard's refusals and timers.

    Attributes of the guard are prefixed ``_hg_`` so that they cannot clash
    with aiohttp's own.
    """

    __slots__ = (
        "_hg",
        "_hg_answered",
        "_hg_armed",
        "_hg_base",
        "_hg_close_after",
        "_hg_finished",
        "_hg_framer",
        "_hg_lingering",
        "_hg_mode",
        "_hg_parse_exc",
        "_hg_paused_at",
        "_hg_refusal",
        "_hg_requests",
        "_hg_timer",
        "_hg_upgrade_at",
    )

    def __init__(self, manager: web.Server, *, guard: _Guard, **kwargs: Any) -> None:
        self._hg = guard
        self._hg_mode: int = _GUARDING
        self._hg_framer = Framer()
        self._hg_timer: asyncio.TimerHandle | None = None
        self._hg_armed = (IDLE, 0)  # the (phase, seq) the deadline below belongs to
        self._hg_base = 0.0  # that deadline, before the credit for body bytes received
        self._hg_paused_at: float | None = None
        self._hg_requests = 0  # requests parsed
        self._hg_finished = 0  # responses finished (or begun, see finish_response)
        self._hg_upgrade_at = 0  # number of the request that switched protocols
        self._hg_parse_exc: BaseException | None = None
        self._hg_refusal: GlobeError | None = None
        self._hg_close_after = False
        self._hg_answered: StreamReader | None = None  # body of the last request answered
        self._hg_lingering: asyncio.Future[None] | None = None  # done when the client is gone
        super().__init__(manager, **kwargs)

    # --- input ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse ``data`` as aiohttp does, then frame it and (re)arm the timers."""
        if self._hg_mode == _CLOSING:
            return  # refused: nothing more of this connection is parsed
        if self._hg_mode == _UPGRADED:
            super().data_received(data)
            return
        queue = self._messages
        before = len(queue)
        super().data_received(data)
        framings: deque[Framing] = deque()
        for message, payload in islice(queue, before, None):
            if not isinstance(message, RawRequestMessage):  # aiohttp's parse-error marker
                self._hg_malformed(message.exc, data)
                return
            self._hg_requests += 1
            framings.append(Framing(body_length(message), payload))
        framer = self._hg_framer
        framer.feed(data, framings)
        if framings:  # the parser found a head the framer did not: follow the parser
            framer.resync(framings[-1])
        elif framer.current is not None and framer.current.payload.is_eof():
            framer.resync(None)  # likewise for the end of a body
        if self._upgraded:
            self._hg_upgrade_at = self._hg_requests
            self._hg_stop(_UPGRADED)
            return
        self._hg_track()

    def pause_reading(self) -> None:
        """Pause reading; the guard's clock stops while the application holds the client back."""
        super().pause_reading()
        if self._hg_paused_at is None:
            self._hg_paused_at = self._loop.time()

    def resume_reading(self, resume_parser: bool = True) -> None:
        """Resume reading; the deadline moves by the time reading was paused."""
        paused_at = self._hg_paused_at
        if paused_at is not None:
            self._hg_paused_at = None
            self._hg_base += self._loop.time() - paused_at
            if self._hg_mode == _GUARDING and self._hg_framer.phase in (HEAD, BODY):
                self._hg_schedule()
        super().resume_reading(resume_parser)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Cancel the guard's timer, end a lingering close, then let aiohttp clean up."""
        self._hg_stop(_CLOSING)
        lingering = self._hg_lingering
        if lingering is not None and not lingering.done():
            lingering.set_result(None)
        super().connection_lost(exc)

    # --- output ---------------------------------------------------------------

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """Send ``resp``; the last one of the connection after a refusal or a declined upgrade."""
        self._hg_finished += 1
        returned: object = resp  # what the handler returned, whatever its annotation says
        if not isinstance(returned, web.StreamResponse):
            resp = self._hg_not_a_response(request, returned)
        declined = (
            self._hg_mode == _UPGRADED
            and self._hg_finished == self._hg_upgrade_at
            and resp.status != HTTPStatus.SWITCHING_PROTOCOLS
        )
        if self._hg_close_after or declined:
            # After a declined upgrade aiohttp would go on parsing what followed it
            # as HTTP, unseen by the guard: close instead.
            resp.force_close()
        try:
            sent, reset = await super().finish_response(request, resp, start_time)
        finally:
            self._hg_answered = request.content
        if self._hg_mode == _CLOSING and not sent.keep_alive and not reset:
            await self._hg_linger()  # the connection's last response: a refusal
        return sent, reset

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a refusal or an exception that escaped the application as problem+json.

        aiohttp calls this for a request its parser refused (``status`` 400), for
        an exception raised by the application (500) and for a ``TimeoutError``
        raised by it (504).  Nothing received is echoed, here or in the log.
        """
        if exc is not None and exc is self._hg_parse_exc and self._hg_refusal is not None:
            err, instance = self._hg_refusal, "/"  # counted and logged when it was found
        elif exc is not None and exc is self._hg_refusal:
            # The guard's refusal, delivered through the request body, reached no
            # problem middleware of the application: counted when it was made.
            err, instance = self._hg_refusal, instance_of(request)
        elif isinstance(exc, HttpProcessingError):
            # One the guard did not see being made: none in aiohttp 3.14 (the only
            # parse outside data_received follows a declined upgrade, and the
            # connection then closes first); kept so that none is ever text/plain.
            err, instance = self._hg_classify(exc, b""), "/"
            self._hg_refuse(err, "refused a malformed request (%s)")
        else:  # a bug of ours (the app's middleware normally prevents this): 500
            name = type(exc).__name__ if exc is not None else "TimeoutError"
            self._hg.log.exception(
                f"internal:{name}", "internal error escaped the application (%s)", name
            )
            err, instance = GlobeError("internal error; nothing was applied"), instance_of(request)
            self._hg_refuse(err, None)
        if request.writer.output_size > 0:  # a response has begun: only closing is left
            raise ConnectionError("a response has begun; cannot send the error response")
        resp = problem(err, instance=instance)
        resp.headers[hdrs.CONNECTION] = "close"  # also for HTTP/1.0, where aiohttp omits it
        resp.force_close()
        return resp

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own error lines ("Unhandled exception", …): rate-limited per message."""
        message = str(args[0]) if args else "unhandled exception"
        if self._hg.log.allow(f"aiohttp:{message}") is not None:
            self._hg.logger.error(message, *args[1:], exc_info=kw.get("exc_info", True))

    # --- the guard ------------------------------------------------------------

    def _hg_not_a_response(self, request: web.BaseRequest, returned: object) -> web.Response:
        """The 500 for a handler that returned no response (aiohttp's is text/plain)."""
        name = type(returned).__name__
        if self._hg.log.allow(f"internal:returned {name}") is not None:
            self._hg.logger.error("a request handler returned %s, not a response", name)
        err = GlobeError("internal error; nothing was applied")
        self._hg_refuse(err, None)
        resp = problem(err, instance=instance_of(request))
        resp.force_close()
        return resp

    def _hg_malformed(self, exc: BaseException, data: bytes) -> None:
        """The parser refused the input (``data`` was the last of it)."""
        err = self._hg_classify(exc, data)
        # Non-HTTP traffic at the first request (a TLS handshake, a port scan) is
        # expected on an open port: aiohttp logs it at DEBUG, and so does the guard.
        quiet = isinstance(exc, BadHttpMethod) and self._hg_requests == 0
        self._hg_refuse(err, "refused a malformed request (%s)", quiet=quiet)
        self._hg_parse_exc, self._hg_refusal = exc, err
        current = self._hg_framer.current
        self._hg_stop(_CLOSING)
        if current is not None and not current.payload.is_eof():
            # The body is broken.  Its handler may be reading it: aiohttp would leave
            # it waiting for the rest forever.  The refusal reaches it through the
            # body instead, and aiohttp's own error response, queued behind, is
            # never sent.
            self._hg_end_body(current.payload, err)
            self._hg_close_after_current()
        # Otherwise aiohttp answers the queued error through handle_error.

    def _hg_classify(self, exc: BaseException, data: bytes) -> GlobeError:
        """The refusal for a parse error (its message quotes the input: never used)."""
        limits = self._hg.limits
        framer = self._hg_framer
        if framer.current is not None and not framer.current.payload.is_eof():
            return BadHttpRequest("the request body is not valid HTTP/1.1 framing")
        if isinstance(exc, LineTooLong):
            if framer.request_line_length(data) > limits.max_line_size:
                return UriTooLong(f"the request line exceeds {limits.max_line_size} bytes")
            return HeaderFieldsTooLarge(f"a header field exceeds {limits.max_field_size} bytes")
        # Both of aiohttp's parsers use this message; nothing else tells this case.
        if isinstance(exc, BadHttpMessage) and exc.message.startswith("Too many headers"):
            return HeaderFieldsTooLarge(f"the request has more than {limits.max_headers} fields")
        return BadHttpRequest("the request is not valid HTTP/1.1")

    def _hg_refuse(self, err: GlobeError, message: str | None, *, quiet: bool = False) -> None:
        """Count ``err``; log ``message`` (one ``%s``: the slug) at most once a minute."""
        guard = self._hg
        if guard.refused is not None:
            guard.refused(err)
        if message is None:
            return
        if quiet:
            guard.logger.debug(message, err.slug)
        else:
            guard.log.warning(f"refused:{err.slug}", message, err.slug)

    def _hg_track(self) -> None:
        """Arm the deadline of the request being received, if any."""
        framer = self._hg_framer
        if framer.phase not in (HEAD, BODY):
            self._hg_cancel_timer()
            return
        key = (framer.phase, framer.seq)
        if key != self._hg_armed:
            self._hg_armed = key
            limits = self._hg.limits
            timeout = limits.head_timeout if framer.phase == HEAD else limits.body_timeout
            self._hg_base = self._loop.time() + timeout
        self._hg_schedule()

    def _hg_deadline(self) -> float:
        framer = self._hg_framer
        if framer.phase == BODY:
            return self._hg_base + framer.body_bytes / self._hg.limits.body_min_rate
        return self._hg_base

    def _hg_schedule(self) -> None:
        """Have the timer fire at the deadline, or before it (it then re-arms)."""
        if self._hg_paused_at is not None:
            return  # resume_reading schedules it again
        when = self._hg_deadline()
        timer = self._hg_timer
        if timer is not None:
            if timer.when() <= when:
                return  # deadlines only move later while a request arrives
            timer.cancel()
        self._hg_timer = self._loop.call_at(when, self._hg_expired)

    def _hg_cancel_timer(self) -> None:
        if self._hg_timer is not None:
            self._hg_timer.cancel()
            self._hg_timer = None

    def _hg_stop(self, mode: int) -> None:
        self._hg_mode = mode
        self._hg_cancel_timer()

    def _hg_expired(self) -> None:
        """The timer fired: refuse the request being received if it is late."""
        self._hg_timer = None
        framer = self._hg_framer
        if (
            self._hg_mode != _GUARDING
            or self._hg_paused_at is not None
            or framer.phase not in (HEAD, BODY)
        ):
            return
        if self._loop.time() < self._hg_deadline():  # bytes arrived since it was set
            self._hg_schedule()
            return
        limits = self._hg.limits
        if framer.phase == HEAD:
            detail = f"the request head was not received within {limits.head_timeout:g} s"
        else:
            detail = "the request body was not received in time"
        err = RequestTimeout(detail)
        self._hg_refuse(err, "refused a slow request (%s)")
        current = framer.current
        self._hg_stop(_CLOSING)
        if current is not None:
            # The request's handler reads the refusal from the body (and its
            # problem middleware, or handle_error, answers 408).
            self._hg_refusal = err
            self._hg_end_body(current.payload, err)
            self._hg_close_after_current()
        elif self._hg_idle():
            self._hg_answer(err)
        else:
            # A response to an earlier request is under way: the 408 cannot go
            # before it, and after it the connection closes.
            self._hg_close_after_current()

    def _hg_end_body(self, payload: StreamReader, err: GlobeError) -> None:
        """End the body being received (nothing more is fed to it); a reader gets ``err``."""
        if payload is self._hg_answered:
            # Its response is out, and aiohttp reads and drops the rest of the body
            # before it closes ("lingering").  The client gets a FIN at once; that
            # read ends after _LINGER s, as in _hg_linger.
            if self.transport is not None:
                _half_close(self.transport)
            self._hg_timer = self._loop.call_later(_LINGER, payload.feed_eof)
            return
        payload.set_exception(err)
        # End of stream as well, so that aiohttp does not linger on this body after
        # the response (reading it would raise err, logged as unhandled); the
        # response itself is followed by _hg_linger.
        payload.feed_eof()

    def _hg_close_after_current(self) -> None:
        """Close once the response being sent is done (at once if there is none)."""
        self._hg_close_after = True
        if self._hg_idle():
            self.force_close()
        else:
            self.close()

    def _hg_idle(self) -> bool:
        """Whether the connection waits for a request (no handler runs, none is queued)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _hg_answer(self, err: GlobeError) -> None:
        """Write ``err`` as the response to a request never parsed, then close."""
        transport = self.transport
        if transport is None:
            return
        resp = problem(err, instance="/")
        body = resp.body
        if not isinstance(body, bytes):  # pragma: no cover - problem() renders bytes
            raise TypeError("problem() returned a body that is not bytes")
        status = HTTPStatus(resp.status)
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"Content-Type: {resp.content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\n"
            "Connection: close\r\n"
            "\r\n"
        )
        transport.write(head.encode("ascii") + body)
        _half_close(transport)
        # As _hg_linger does, but from a timer: no task waits here.  connection_lost
        # cancels it when the client closes first.
        self._hg_timer = self._loop.call_later(_LINGER, self.force_close)

    async def _hg_linger(self) -> None:
        """Read and drop what the client still sends until it closes, or for ``_LINGER`` s.

        Closing a socket while the client is still sending (a slow upload, a
        dribbler) makes the kernel reset the connection, and the client may lose
        the response before reading it (RFC 9112 §9.6).  So the response is
        followed by a FIN, and the socket stays open, reading, a little longer.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        _half_close(transport)
        self._hg_lingering = self._loop.create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hg_lingering, _LINGER)


def _half_close(transport: asyncio.Transport) -> None:
    """Send FIN once the response is written; input is still read (not over TLS)."""
    if transport.can_write_eof():
        transport.write_eof()


# --- the runner -------------------------------------------------------------------


class _GuardedServer(web.Server):
    """aiohttp's low-level server, making a guarded handler for each connection."""

    def __init__(self, base: web.Server, guard: _Guard) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **base._kwargs,
        )
        self._guard = guard

    def __call__(self) -> web.RequestHandler:
        """A handler for a new connection (the asyncio protocol factory)."""
        return _GuardedHandler(self, loop=self._loop, guard=self._guard, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """:class:`aiohttp.web.AppRunner` whose connections are guarded (see the module doc).

    ``limits`` bound each request (checked here: :class:`ConfigError`);
    ``refused`` is told of each refusal the HTTP layer makes (for metrics);
    ``logger`` gets its log lines.  Other keyword arguments go to
    :class:`aiohttp.web.AppRunner` (e.g. ``access_log=None``).

    A refusal made while a body is being received (too slow, broken chunked
    coding) reaches the request's handler as that :class:`GlobeError`, raised by
    the body stream; an application with a problem middleware renders (and
    counts) it like its own refusals.
    """

    __slots__ = ("_guard",)

    def __init__(
        self,
        app: web.Application,
        *,
        limits: HttpLimits | None = None,
        refused: Refused | None = None,
        logger: logging.Logger | None = None,
        **kwargs: Any,
    ) -> None:
        limits = HttpLimits() if limits is None else limits
        limits.check()
        if clash := sorted(_OWN_KWARGS & kwargs.keys()):
            raise TypeError(f"set {', '.join(clash)} through HttpLimits, not as an argument")
        logger = _LOGGER if logger is None else logger
        super().__init__(
            app,
            max_line_size=limits.max_line_size,
            max_field_size=limits.max_field_size,
            max_headers=limits.max_headers,
            logger=logger,
            **kwargs,
        )
        self._guard = _Guard(limits, refused, logger, LogLimiter(logger))
        if limits.trusted_proxies:  # outermost, so every later middleware sees the client
            app.middlewares.insert(0, forwarded_middleware(TrustedProxies(limits.trusted_proxies)))

    async def _make_server(self) -> web.Server:
        return _GuardedServer(await super()._make_server(), self._guard)


async def start_site(
    runner: web.BaseRunner, host: str, port: int, *, sock: socket.socket | None = None
) -> int:
    """Listen on ``host:port`` for ``runner`` (set up); the port bound (``port`` 0 picks one).

    With ``sock``, serve that already bound, listening socket instead (inherited
    from a supervisor such as systemd's socket activation, or bound by a test on
    port 0 before the node's endpoint is certified).  If ``host`` resolves to
    several addresses, the port bound for the first.  Any failure to listen (the
    address already in use, an address not on this host, a port below 1024 without
    the right to bind it) is a :class:`ConfigError` of one line naming the address
    and the reason, never a raw ``[Errno N]``.
    """
    known = set(runner.addresses)
    site: web.BaseSite = (
        web.TCPSite(runner, host, port) if sock is None else web.SockSite(runner, sock)
    )
    try:
        await site.start()
    except OSError as exc:
        await site.stop()
        raise ConfigError(f"cannot listen on {host}:{port}: {_listen_error(exc)}") from exc
    bound = [address for address in runner.addresses if address not in known]
    return int(bound[0][1])


def _listen_error(exc: OSError) -> str:
    """Why a socket could not listen, in words (asyncio's message repeats the address)."""
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__
