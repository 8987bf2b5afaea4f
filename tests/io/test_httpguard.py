"""globe_io.httpguard: the HTTP layer's own refusals and time limits.

Real listeners on loopback, raw sockets: every refusal is problem+json with
``Connection: close``, the connection then closes, ``refused`` hears of it once,
the log gets at most one WARNING line per kind and never a byte received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
from aiohttp import ClientSession, WSMsgType, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from hypothesis import given
from hypothesis import strategies as st

from globe_io.errors import ConfigError
from globe_io.httpframing import Framer, Framing
from globe_io.httpguard import (
    BadHttpRequest,
    GuardedRunner,
    HeaderFieldsTooLarge,
    HttpLimits,
    RequestTimeout,
    UriTooLong,
    start_site,
)
from protocol.errors import PROBLEM_BASE, GlobeError

LOGGER = "tests.httpguard"
#: Put in every bad request: it must appear in no log record.
MARKER = b"MARKER-5d1e9c"
#: Upper bound on any wait for the server; generous, for a loaded machine.
WAIT = 20.0
#: Small limits for the timing tests.
FAST = HttpLimits(head_timeout=0.3, body_timeout=0.3, body_min_rate=100)


# --- a tiny listener --------------------------------------------------------------


@dataclass
class Listener:
    port: int
    refused: list[GlobeError]
    reading: asyncio.Event  # set when /echo starts reading its body


def make_app(reading: asyncio.Event) -> web.Application:
    """Handlers without any middleware: what reaches aiohttp is the guard's to answer."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def echo(request: web.Request) -> web.Response:
        reading.set()
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
        return web.Response(text=str(size))

    async def slow_consumer(request: web.Request) -> web.Response:
        await asyncio.sleep(2.0)  # the scenario: the application is slow to read
        return await echo(request)

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 800
        await resp.prepare(request)
        for _ in range(8):
            await resp.write(b"x" * 100)
            await asyncio.sleep(0.15)  # the scenario: a slow download
        return resp

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data)
        return ws

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("boom " + MARKER.decode())

    async def times_out(request: web.Request) -> web.Response:
        raise TimeoutError

    async def forgets(request: web.Request) -> web.Response:
        return None  # type: ignore[return-value]  # the bug under test

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_post("/echo", echo)
    app.router.add_post("/slow-consumer", slow_consumer)
    app.router.add_get("/stream", stream)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/boom", boom)
    app.router.add_get("/times-out", times_out)
    app.router.add_get("/forgets", forgets)
    return app


@contextlib.asynccontextmanager
async def listen(limits: HttpLimits | None = None) -> AsyncIterator[Listener]:
    reading = asyncio.Event()
    refused: list[GlobeError] = []
    runner = GuardedRunner(
        make_app(reading),
        limits=limits,
        refused=refused.append,
        logger=logging.getLogger(LOGGER),
        access_log=None,
    )
    await runner.setup()
    try:
        port = await start_site(runner, "127.0.0.1", 0)
        yield Listener(port, refused, reading)
    finally:
        await runner.cleanup()


# --- raw HTTP ---------------------------------------------------------------------


@dataclass
class Response:
    status_line: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def problem(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/problem+json"
        value = orjson.loads(self.body)
        assert isinstance(value, dict)
        return value


def head(*lines: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


def split_response(data: bytes) -> tuple[Response, bytes]:
    """The first response in ``data`` (framed by Content-Length) and what follows it."""
    head_end = data.index(b"\r\n\r\n")
    status_line, *lines = data[:head_end].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    body = data[head_end + 4 : head_end + 4 + length]
    assert len(body) == length
    return Response(status_line, headers, body), data[head_end + 4 + length :]


def only_response(data: bytes) -> Response:
    resp, rest = split_response(data)
    assert rest == b""
    return resp


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes (the test fails if it does not)."""
    return await asyncio.wait_for(reader.read(), WAIT)


async def read_response(reader: asyncio.StreamReader) -> Response:
    """One response from a connection kept alive."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    length = next(
        int(line.split(b":", 1)[1])
        for line in raw.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await asyncio.wait_for(reader.readexactly(length), WAIT)
    return only_response(raw + body)


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await connect(port)
    try:
        writer.write(data)
        return await read_to_eof(reader)
    finally:
        await close(writer)


async def dribble(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, data: bytes) -> None:
    """Send ``data`` a byte every 0.1 s, until the server closes."""
    with contextlib.suppress(ConnectionError):
        for i in range(len(data)):
            if reader.at_eof():
                return
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.1)  # the scenario: a client sending 10 bytes/s


async def dribbled(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> tuple[bytes, float]:
    """What the server sends (until it closes) while ``data`` is dribbled; seconds taken."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    sender = asyncio.create_task(dribble(writer, reader, data))
    try:
        received = await read_to_eof(reader)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return received, loop.time() - started


def assert_problem(
    resp: Response, status_line: str, cls: type[GlobeError], detail: str, instance: str
) -> None:
    assert resp.status_line == status_line
    assert resp.headers["connection"] == "close"
    assert resp.problem() == {
        "type": PROBLEM_BASE + cls.slug,
        "title": cls.title,
        "status": cls.status,
        "detail": detail,
        "instance": instance,
    }


def assert_clean_log(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing at ERROR, and no byte received in any record (tracebacks included)."""
    formatter = logging.Formatter()
    for record in caplog.records:
        assert record.levelno < logging.ERROR, record.getMessage()
        assert MARKER.decode() not in formatter.format(record)


def guard_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


# --- refusals by the parser -------------------------------------------------------

POST_CHUNKED = (b"POST /echo HTTP/1.1", b"Host: a", b"Transfer-Encoding: chunked")
MARKED = b"X-Marker: " + MARKER

#: The details of the guard's refusals (never anything received).
MALFORMED_HEAD = "the request is not valid HTTP/1.1"
MALFORMED_BODY = "the request body is not valid HTTP/1.1 framing"
FIELD_TOO_LONG = "a header field exceeds 8190 bytes"
HEAD_TIMEOUT = "the request head was not received within 0.3 s"
BODY_TIMEOUT = "the request body was not received in time"
INTERNAL = "internal error; nothing was applied"

_431 = ("431 Request Header Fields Too Large", HeaderFieldsTooLarge)
_400 = ("400 Bad Request", BadHttpRequest)


@dataclass(frozen=True)
class Malformed:
    request: bytes
    status: str  # code and reason of the status line
    cls: type[GlobeError]
    detail: str
    quiet: bool  # logged at DEBUG only


def case(
    name: str,
    request: bytes,
    answer: tuple[str, type[GlobeError]],
    detail: str,
    quiet: bool = False,
) -> object:
    return pytest.param(Malformed(request, *answer, detail, quiet), id=name)


GET = (b"GET /ok HTTP/1.1", b"Host: a")
POST = (b"POST /echo HTTP/1.1", b"Host: a", MARKED)
MALFORMED = [
    case(
        "101-fields",
        head(*GET, *(b"X-%d: %s" % (i, MARKER) for i in range(100))),
        _431,
        "the request has more than 100 fields",
    ),
    case("field-value-8191", head(*GET, b"X-Long: " + MARKER + b"v" * 8191), _431, FIELD_TOO_LONG),
    case("field-name-8191", head(*GET, MARKER + b"n" * 8191 + b": v"), _431, FIELD_TOO_LONG),
    case("nul-in-value", head(*GET, b"X-Nul: " + MARKER + b"\x00v"), _400, MALFORMED_HEAD),
    case("bare-lf", b"GET /ok HTTP/1.1\r\nHost: a\n" + MARKED + b"\r\n\r\n", _400, MALFORMED_HEAD),
    case("field-name-chars", head(*GET, b"X(" + MARKER + b"): v"), _400, MALFORMED_HEAD),
    case("version", head(b"GET /" + MARKER + b" HTTP/9.Z", b"Host: a"), _400, MALFORMED_HEAD),
    case("target", head(b"GET http:/" + MARKER + b" HTTP/1.1", b"Host: a"), _400, MALFORMED_HEAD),
    case(
        "request-line-8191",
        head(b"GET /" + MARKER + b"u" * 8191 + b" HTTP/1.1", b"Host: a"),
        ("414 Request-URI Too Long", UriTooLong),
        "the request line exceeds 8190 bytes",
    ),
    case("no-host", head(b"GET /ok HTTP/1.1", MARKED), _400, MALFORMED_HEAD),
    case("content-length-abc", head(*POST, b"Content-Length: abc"), _400, MALFORMED_HEAD),
    case("content-length-negative", head(*POST, b"Content-Length: -1"), _400, MALFORMED_HEAD),
    case(
        "content-length-twice",
        head(*POST, b"Content-Length: 1", b"Content-Length: 2") + b"ab",
        _400,
        MALFORMED_HEAD,
    ),
    # With the head in the same read, aiohttp's parser loses the request: a head refusal.
    case("chunk-size", head(*POST_CHUNKED) + b"zz" + MARKER + b"\r\n", _400, MALFORMED_HEAD),
    case(
        "chunk-overrun",
        head(*POST_CHUNKED) + b"3\r\nabc" + MARKER + b"\r\n0\r\n\r\n",
        _400,
        MALFORMED_HEAD,
    ),
    # Non-HTTP traffic is routine on an open port: DEBUG only, as aiohttp does.
    case(
        "tls-handshake",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + MARKER,
        _400,
        MALFORMED_HEAD,
        True,
    ),
    case("bad-method", head(b"G@T /ok HTTP/1.1", b"Host: a", MARKED), _400, MALFORMED_HEAD, True),
]


@pytest.mark.parametrize("bad", MALFORMED)
async def test_parser_refusals_are_problems(
    caplog: pytest.LogCaptureFixture, bad: Malformed
) -> None:
    caplog.set_level(logging.DEBUG)
    async with listen() as srv:
        for _ in range(50):
            resp = only_response(await exchange(srv.port, bad.request))
            # The request was never parsed: aiohttp answers as HTTP/1.0, path unknown.
            assert_problem(resp, "HTTP/1.0 " + bad.status, bad.cls, bad.detail, "/")
        assert [type(err) for err in srv.refused] == [bad.cls] * 50
    assert_clean_log(caplog)
    line = f"refused a malformed request ({bad.cls.slug})"
    if bad.quiet:
        assert guard_lines(caplog, logging.WARNING) == []
        assert guard_lines(caplog, logging.DEBUG) == [line] * 50
    else:
        assert guard_lines(caplog, logging.WARNING) == [line]  # not 50: once a minute


async def test_a_head_at_every_limit_is_accepted() -> None:
    """100 fields, a field of 8190 bytes (name and value), a target of 8190 bytes."""
    fields = [b"X-%02d: v" % i for i in range(97)]
    long_field = b"X-Long: " + b"v" * (8190 - len(b"X-Long"))
    request = head(b"GET /ok?" + b"q" * 8186 + b" HTTP/1.1", b"Host: a", long_field, *fields)
    assert request.count(b"\r\n") - 2 == 99  # + Connection below: 100 fields
    async with listen() as srv:
        data = await exchange(srv.port, request[:-2] + b"Connection: close\r\n\r\n")
        resp = only_response(data)
        assert (resp.status_line, resp.body) == ("HTTP/1.1 200 OK", b"ok")
        assert srv.refused == []


async def test_a_bad_method_after_a_request_is_not_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Only the first request of a connection may be non-HTTP traffic."""
    caplog.set_level(logging.DEBUG)
    async with listen() as srv:
        reader, writer = await connect(srv.port)
        try:
            writer.write(head(*GET))
            first = await read_response(reader)
            writer.write(head(b"G@T /ok HTTP/1.1", b"Host: a", MARKED))
            rest = await read_to_eof(reader)
        finally:
            await close(writer)
        assert (first.status_line, first.body) == ("HTTP/1.1 200 OK", b"ok")
        assert_problem(
            only_response(rest), "HTTP/1.0 400 Bad Request", BadHttpRequest, MALFORMED_HEAD, "/"
        )
    assert_clean_log(caplog)
    assert guard_lines(caplog, logging.WARNING) == [
        "refused a malformed request (bad-http-request)"
    ]


async def test_a_refused_client_still_sending_gets_the_response_and_a_clean_close() -> None:
    """Closing with input unread would reset the connection (RFC 9112 §9.6)."""
    request = head(b"POST /echo HTTP/1.1", b"Host: a", b"X-Nul: \x00", b"Content-Length: 1000000")
    async with listen() as srv:
        data = await exchange(srv.port, request + b"g" * 1_000_000)
        assert_problem(
            only_response(data), "HTTP/1.0 400 Bad Request", BadHttpRequest, MALFORMED_HEAD, "/"
        )


async def test_a_broken_chunked_body_reaches_its_reading_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp alone leaves the handler waiting for the rest of the body forever."""
    caplog.set_level(logging.DEBUG)
    async with listen() as srv:
        reader, writer = await connect(srv.port)
        try:
            writer.write(head(*POST_CHUNKED) + b"3\r\nabc\r\n")
            await asyncio.wait_for(srv.reading.wait(), WAIT)
            writer.write(b"zz" + MARKER + b"\r\n")
            resp = only_response(await read_to_eof(reader))
        finally:
            await close(writer)
        assert_problem(resp, "HTTP/1.1 400 Bad Request", BadHttpRequest, MALFORMED_BODY, "/echo")
        assert [type(err) for err in srv.refused] == [BadHttpRequest]
    assert_clean_log(caplog)
    assert guard_lines(caplog, logging.WARNING) == [
        "refused a malformed request (bad-http-request)"
    ]


@pytest.mark.parametrize(
    ("path", "line", "traceback"),
    [
        ("/boom", "internal error escaped the application (RuntimeError)", True),
        # aiohttp asks for a 504 here: an exception escaping the app all the same.
        ("/times-out", "internal error escaped the application (TimeoutError)", True),
        ("/forgets", "a request handler returned NoneType, not a response", False),
    ],
)
async def test_a_bug_in_the_app_is_a_logged_500(
    caplog: pytest.LogCaptureFixture, path: str, line: str, traceback: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    async with listen() as srv:
        for _ in range(3):
            data = await exchange(srv.port, head(b"GET %s HTTP/1.1" % path.encode(), b"Host: a"))
            resp = only_response(data)
            assert_problem(resp, "HTTP/1.1 500 Internal Server Error", GlobeError, INTERNAL, path)
        assert [type(err) for err in srv.refused] == [GlobeError] * 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [(r.name, r.getMessage()) for r in errors] == [(LOGGER, line)]  # once a minute
    assert (errors[0].exc_info is not None) == traceback


# --- time limits ------------------------------------------------------------------


async def test_a_dribbled_head_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request = head(b"GET /ok HTTP/1.1", b"Host: a", MARKED, b"X-Padding: " + b"p" * 40)
    assert len(request) > 60  # 6 s at 10 bytes/s: far longer than head_timeout
    async with listen(FAST) as srv:
        reader, writer = await connect(srv.port)
        try:
            received, took = await dribbled(reader, writer, request)
        finally:
            await close(writer)
        assert_problem(
            only_response(received),
            "HTTP/1.1 408 Request Timeout",
            RequestTimeout,
            HEAD_TIMEOUT,
            "/",
        )
        assert took < 4.0
        assert [type(err) for err in srv.refused] == [RequestTimeout]
    assert_clean_log(caplog)
    assert guard_lines(caplog, logging.WARNING) == ["refused a slow request (request-timeout)"]


async def test_a_dribbled_body_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with listen(FAST) as srv:
        reader, writer = await connect(srv.port)
        try:
            writer.write(head(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 1000"))
            received, took = await dribbled(reader, writer, MARKER + b"b" * 987)
        finally:
            await close(writer)
        # The handler read the refusal from the body; it escaped to the HTTP layer.
        resp = only_response(received)
        assert_problem(resp, "HTTP/1.1 408 Request Timeout", RequestTimeout, BODY_TIMEOUT, "/echo")
        assert took < 4.0
        assert [type(err) for err in srv.refused] == [RequestTimeout]
    assert_clean_log(caplog)
    assert guard_lines(caplog, logging.WARNING) == ["refused a slow request (request-timeout)"]


async def test_a_dribbled_body_after_the_response_is_cut_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler answered without reading the body; aiohttp reads and drops the rest."""
    caplog.set_level(logging.DEBUG)
    async with listen(FAST) as srv:
        reader, writer = await connect(srv.port)
        try:
            writer.write(head(b"GET /ok HTTP/1.1", b"Host: a", b"Content-Length: 1000"))
            received, took = await dribbled(reader, writer, MARKER + b"b" * 987)
        finally:
            await close(writer)
        resp = only_response(received)
        assert (resp.status_line, resp.body) == ("HTTP/1.1 200 OK", b"ok")
        assert took < 4.0
        assert [type(err) for err in srv.refused] == [RequestTimeout]
    assert_clean_log(caplog)
    assert guard_lines(caplog, logging.WARNING) == ["refused a slow request (request-timeout)"]


async def test_a_large_body_at_a_good_rate_is_not_cut() -> None:
    body = b"u" * 2_000_000  # 20,000 s of credit at 100 bytes/s
    async with listen(FAST) as srv:
        request = head(
            b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 2000000", b"Connection: close"
        )
        resp = only_response(await exchange(srv.port, request + body))
        assert resp.status_line == "HTTP/1.1 200 OK"
        assert resp.body == b"2000000"
        assert srv.refused == []


async def test_time_the_application_holds_the_client_back_does_not_count() -> None:
    """Reading pauses while a body waits for a slow handler; the deadline waits too.

    Before the pause at most 256 KiB arrive (0.26 s of credit): unpaused, the
    deadline would pass at about 1.1 s, while the handler starts reading after
    2 s and the rest of the body takes several reads.
    """
    limits = HttpLimits(body_timeout=0.8, body_min_rate=1_000_000)
    body = b"s" * 2 * 1024 * 1024
    async with listen(limits) as srv:
        request = head(
            b"POST /slow-consumer HTTP/1.1",
            b"Host: a",
            b"Content-Length: %d" % len(body),
            b"Connection: close",
        )
        resp = only_response(await exchange(srv.port, request + body))
        assert resp.status_line == "HTTP/1.1 200 OK"
        assert resp.body == b"%d" % len(body)
        assert srv.refused == []


async def test_a_slow_download_is_not_cut() -> None:
    async with listen(FAST) as srv:
        data = await exchange(
            srv.port, head(b"GET /stream HTTP/1.1", b"Host: a", b"Connection: close")
        )
        resp = only_response(data)
        assert resp.status_line == "HTTP/1.1 200 OK"
        assert resp.body == b"x" * 800
        assert srv.refused == []


async def test_a_websocket_outlives_the_timeouts() -> None:
    async with listen(FAST) as srv, ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{srv.port}/ws") as ws:
            for word in ("one", "two"):
                await asyncio.sleep(1.0)  # the scenario: idle longer than every timeout
                await ws.send_str(word)
                msg = await asyncio.wait_for(ws.receive(), WAIT)
                assert (msg.type, msg.data) == (WSMsgType.TEXT, word)
        assert srv.refused == []


async def test_keep_alive_rearms_per_request_and_idle_is_not_timed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with listen(FAST) as srv:
        reader, writer = await connect(srv.port)
        try:
            for _ in range(2):
                writer.write(head(b"GET /ok HTTP/1.1", b"Host: a"))
                resp = await read_response(reader)
                assert (resp.status_line, resp.body) == ("HTTP/1.1 200 OK", b"ok")
            await asyncio.sleep(0.8)  # the scenario: idle longer than every timeout
            writer.write(head(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 5") + b"hello")
            resp = await read_response(reader)
            assert (resp.status_line, resp.body) == ("HTTP/1.1 200 OK", b"5")
            await asyncio.sleep(0.8)
            assert srv.refused == []
            received, _ = await dribbled(reader, writer, head(b"GET /ok HTTP/1.1", MARKED))
        finally:
            await close(writer)
        assert_problem(
            only_response(received),
            "HTTP/1.1 408 Request Timeout",
            RequestTimeout,
            HEAD_TIMEOUT,
            "/",
        )
        assert [type(err) for err in srv.refused] == [RequestTimeout]
    assert_clean_log(caplog)


async def test_pipelined_requests_then_a_partial_head() -> None:
    """The head after complete requests in the same write is timed from its first byte."""
    batch = (
        head(*POST_CHUNKED)
        + b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n"
        + head(b"POST /echo HTTP/1.1", b"Host: a", b"Content-Length: 7")
        + b"\r\n\r\n\r\nx"
        + head(b"GET /ok HTTP/1.1", b"Host: a")
        + b"GET /ok HT"
    )
    async with listen(FAST) as srv:
        reader, writer = await connect(srv.port)
        try:
            writer.write(batch)
            bodies = [(await read_response(reader)).body for _ in range(3)]
            rest = await read_to_eof(reader)
        finally:
            await close(writer)
        assert bodies == [b"5", b"7", b"ok"]
        assert_problem(
            only_response(rest), "HTTP/1.1 408 Request Timeout", RequestTimeout, HEAD_TIMEOUT, "/"
        )
        assert [type(err) for err in srv.refused] == [RequestTimeout]


async def test_a_late_head_behind_a_response_closes_after_it() -> None:
    """The 408 cannot go before the download under way; the connection closes after it."""
    async with listen(FAST) as srv:
        data = await exchange(srv.port, head(b"GET /stream HTTP/1.1", b"Host: a") + b"GET /ok HT")
        resp = only_response(data)
        assert resp.status_line == "HTTP/1.1 200 OK"
        assert resp.body == b"x" * 800
        assert [type(err) for err in srv.refused] == [RequestTimeout]


async def test_a_declined_upgrade_closes_the_connection() -> None:
    """aiohttp would parse what follows a declined upgrade as HTTP, unseen by the guard."""
    upgrade = head(
        b"GET /ok HTTP/1.1",
        b"Host: a",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: 13",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    )
    async with listen(FAST) as srv:
        data = await exchange(srv.port, upgrade + head(b"GET /ok HTTP/1.1", b"Host: a"))
        resp = only_response(data)
        assert (resp.status_line, resp.headers["connection"], resp.body) == (
            "HTTP/1.1 200 OK",
            "close",
            b"ok",
        )
        assert srv.refused == []


# --- limits and sites -------------------------------------------------------------


def test_default_limits() -> None:
    limits = HttpLimits()
    limits.check()
    assert (
        limits.head_timeout,
        limits.body_timeout,
        limits.body_min_rate,
        limits.max_line_size,
        limits.max_field_size,
        limits.max_headers,
    ) == (10.0, 30.0, 8192, 8190, 8190, 100)


SECONDS = "a number of seconds in (0, 3600]"
BAD_LIMITS = [
    ("head_timeout", 0, SECONDS),
    ("head_timeout", -1.0, SECONDS),
    ("head_timeout", math.nan, SECONDS),
    ("head_timeout", math.inf, SECONDS),
    ("head_timeout", 3601, SECONDS),
    ("head_timeout", True, SECONDS),
    ("head_timeout", "10", SECONDS),
    ("body_timeout", 0.0, SECONDS),
    ("body_timeout", 7200.0, SECONDS),
    ("body_min_rate", 0, "an integer in (0, 1073741824]"),
    ("body_min_rate", 100.5, "an integer in (0, 1073741824]"),
    ("body_min_rate", (1 << 30) + 1, "an integer in (0, 1073741824]"),
    ("max_line_size", -8190, "an integer in (0, 65536]"),
    ("max_line_size", 65537, "an integer in (0, 65536]"),
    ("max_field_size", 0, "an integer in (0, 65536]"),
    ("max_field_size", None, "an integer in (0, 65536]"),
    ("max_headers", 0, "an integer in (0, 1000]"),
    ("max_headers", 1001, "an integer in (0, 1000]"),
    ("max_headers", False, "an integer in (0, 1000]"),
]


@pytest.mark.parametrize(("name", "value", "range_text"), BAD_LIMITS)
def test_limits_out_of_range(name: str, value: object, range_text: str) -> None:
    limits = HttpLimits(**{name: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        limits.check()
    assert str(info.value) == f"HTTP limit {name} must be {range_text}; got {value!r}"


def test_limits_check_names_the_first_bad_value() -> None:
    with pytest.raises(ConfigError, match=r"^HTTP limit body_timeout "):
        HttpLimits(body_timeout=0, max_headers=0).check()


def test_runner_checks_its_arguments() -> None:
    app = web.Application()
    with pytest.raises(ConfigError, match=r"^HTTP limit max_headers "):
        GuardedRunner(app, limits=HttpLimits(max_headers=0))
    with pytest.raises(TypeError, match=r"^set max_headers through HttpLimits"):
        GuardedRunner(app, max_headers=5)


async def test_start_site_on_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runner = GuardedRunner(web.Application(), access_log=None)
        await runner.setup()
        try:
            with pytest.raises(ConfigError) as info:
                await start_site(runner, "127.0.0.1", port)
            assert str(info.value) == (
                f"cannot listen on 127.0.0.1:{port}: the address is already in use"
            )
            assert runner.addresses == []  # the failed site was unregistered
        finally:
            await runner.cleanup()


async def test_start_site_returns_the_port_bound() -> None:
    runner = GuardedRunner(web.Application(), access_log=None)
    await runner.setup()
    try:
        port = await start_site(runner, "127.0.0.1", 0)
        assert port > 0
        assert runner.addresses == [("127.0.0.1", port)]
    finally:
        await runner.cleanup()


# --- the framer -------------------------------------------------------------------

#: A stream of requests covering each framing; bodies hold blank lines to mislead.
REQUESTS = [
    # (bytes, empty lines before the head, head length, body length or None: chunked)
    (head(b"GET /a HTTP/1.1", b"Host: x"), 0, 28, 0),
    (head(b"POST /b HTTP/1.1", b"Host: x", b"Content-Length: 7") + b"\r\n\r\n\r\nx", 0, 48, 7),
    (
        b"\r\n" + head(*POST_CHUNKED) + b"4;e=1\r\n\r\n\r\n\r\n0\r\nT: v\r\n\r\n",
        2,
        60,
        None,
    ),
    (
        head(b"POST /d HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked") + b"0\r\n\r\n",
        0,
        57,
        None,
    ),
]
STREAM = b"".join(r[0] for r in REQUESTS)


def expected_at(offset: int) -> tuple[str, int, int]:
    """(phase, requests begun, body bytes) after the first ``offset`` bytes of STREAM."""
    start = 0
    for seq, (raw, skip, head_len, _) in enumerate(REQUESTS, start=1):
        head_start, head_end, end = start + skip, start + skip + head_len, start + len(raw)
        if offset <= head_start:
            return "idle", seq - 1, 0
        if offset < head_end:
            return "head", seq, 0
        if offset < end:
            return "body", seq, offset - head_end
        start = end
    return "idle", len(REQUESTS), 0


def test_the_expected_phases_match_the_stream() -> None:
    for raw, skip, head_len, length in REQUESTS:
        assert raw[skip : skip + head_len].endswith(b"\r\n\r\n")
        assert b"\r\n\r\n" not in raw[skip : skip + head_len - 1]
        if length is not None:
            assert len(raw) == skip + head_len + length


def framing(length: int | None) -> Framing:
    return Framing(length, EMPTY_PAYLOAD)


class ParserStandIn:
    """Releases a request's framing once its head is complete, as aiohttp's parser does."""

    def __init__(self) -> None:
        self.framer = Framer()
        self.framings: deque[Framing] = deque()
        self.released = 0
        self.fed = 0

    def feed(self, data: bytes) -> None:
        self.fed += len(data)
        start = 0
        for i, (raw, skip, head_len, length) in enumerate(REQUESTS):
            if i >= self.released and self.fed >= start + skip + head_len:
                self.framings.append(framing(length))
                self.released += 1
            start += len(raw)
        self.framer.feed(data, self.framings)

    def state(self) -> tuple[str, int, int]:
        names = {0: "idle", 1: "head", 3: "body"}
        return names[self.framer.phase], self.framer.seq, self.framer.body_bytes


def test_framer_follows_every_split_in_two() -> None:
    for cut in range(len(STREAM) + 1):
        parser = ParserStandIn()
        parser.feed(STREAM[:cut])
        assert parser.state() == expected_at(cut), cut
        parser.feed(STREAM[cut:])
        assert parser.state() == ("idle", len(REQUESTS), 0)
        assert not parser.framings


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_framer_follows_any_split(cuts: list[int]) -> None:
    parser = ParserStandIn()
    previous = 0
    for cut in [*sorted(cuts), len(STREAM)]:
        parser.feed(STREAM[previous:cut])
        previous = cut
        assert parser.state() == expected_at(cut)


def test_framer_holds_heads_the_parser_holds() -> None:
    """aiohttp's parser stops releasing requests while its queue is full."""
    framer = Framer()
    framings: deque[Framing] = deque()
    framer.feed(STREAM, framings)
    assert (framer.phase, framer.seq) == (2, 1)  # the first head is complete, held back
    framings.extend(framing(r[3]) for r in REQUESTS)
    framer.feed(b"", framings)
    assert (framer.phase, framer.seq, len(framings)) == (0, len(REQUESTS), 0)


def test_request_line_length() -> None:
    framer = Framer()
    assert framer.request_line_length(b"\r\nGET /abc HTTP/1.1\r\nHost") == 18
    framer.feed(b"GET /ab", deque())
    assert framer.request_line_length(b"cdef") == 11
    framer.feed(b"c HTTP/1.1\r\nHo", deque())
    assert framer.request_line_length(b"st: a") == 0  # the request line is complete


async def test_framer_resync_follows_the_parser() -> None:
    """Should the framer miss a head, it follows the body stream the parser made."""
    loop = asyncio.get_running_loop()
    body = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    framer = Framer()
    framer.resync(Framing(5, body))
    assert (framer.phase, framer.seq, framer.body_bytes) == (3, 1, 0)
    framer.feed(b"any number of bytes", deque())
    assert (framer.phase, framer.body_bytes) == (3, 19)  # the length is not trusted
    body.feed_eof()
    framer.resync(None)
    assert (framer.phase, framer.current) == (0, None)


@pytest.mark.parametrize("size_line", [b"zz\r\n", b"0" * 40 + b"5\r\n"])
def test_framer_leaves_an_unreadable_chunk_size_to_the_parser(size_line: bytes) -> None:
    framer = Framer()
    framings = deque([framing(None)])
    framer.feed(head(*POST_CHUNKED) + size_line + b"more", framings)
    assert framer.phase == 3
    assert framer.current is not None
    assert framer.current.length == -1  # the body ends when the parser says so
