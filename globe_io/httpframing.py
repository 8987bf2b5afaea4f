"""Where each request begins and ends in a connection's byte stream (RFC 9112 §6).

aiohttp's parser reports a request only once its head is complete, so it cannot
tell when a request *began*; :mod:`globe_io.httpguard` needs that to time the
head.  :class:`Framer` follows the framing of the byte stream beside the parser
(a head ends at the first empty line; a body is ``Content-Length`` bytes or a
chunked body), taking each request's framing from the parser's own message for
it.  The parser stays the only judge of what is valid: the framer never refuses
anything, and if it loses track the guard falls back to following the parser.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs
from aiohttp.http import RawRequestMessage
from aiohttp.streams import StreamReader

__all__ = ["BODY", "HEAD", "HELD", "IDLE", "Framer", "Framing", "body_length"]

# Where the framer is in a connection's request stream.
IDLE: Final = 0  # between requests: nothing of the next one has arrived
HEAD: Final = 1  # receiving a request head
HELD: Final = 2  # a head is complete but the parser holds it back (its queue is full)
BODY: Final = 3  # receiving a request body

# Where the framer is in a chunked body (RFC 9112 §7.1).
_SIZE: Final = 0  # the chunk-size line
_DATA: Final = 1  # chunk data
_CRLF: Final = 2  # the CRLF after chunk data
_TRAILER: Final = 3  # the trailer section, up to its empty line

#: Body length of a request whose body ends when the parser says so.
_UNKNOWN: Final = -1
#: The end of a head or of a trailer section: an empty line.
_BLANK: Final = b"\r\n\r\n"
#: Bytes of a chunk-size line kept: enough for the size, not for extensions.
_SIZE_PREFIX: Final = 32


@dataclass(slots=True)
class Framing:
    """A request as the parser saw it: its body length and its body stream.

    ``length``: ``Content-Length``; ``None`` for a chunked body; ``_UNKNOWN``
    when only the parser knows where the body ends.
    """

    length: int | None
    payload: StreamReader


class Framer:
    """Where each request of a connection begins and ends in the bytes received.

    :meth:`feed` takes each chunk of bytes *after* the parser has, with the
    framing of the requests the parser found in it; the framer only counts.
    ``seq`` numbers the requests begun; ``body_bytes`` counts the bytes of the
    current body received so far.
    """

    __slots__ = (
        "_carry",
        "_chunk",
        "_left",
        "_line",
        "_line_done",
        "_pending",
        "_size",
        "body_bytes",
        "current",
        "phase",
        "seq",
    )

    def __init__(self) -> None:
        self.phase: int = IDLE
        self.seq = 0
        self.current: Framing | None = None
        self.body_bytes = 0
        self._carry = b""  # the last (at most 3) bytes scanned for an empty line
        self._line = 0  # bytes of the request line so far
        self._line_done = False
        self._left = 0  # bytes of the body, chunk data or chunk CRLF still to come
        self._chunk: int = _SIZE
        self._size = bytearray()
        self._pending = b""  # bytes after a held head, to frame once it is released

    def feed(self, data: bytes, framings: deque[Framing]) -> None:
        """Follow ``data``; a completed head takes the next of ``framings``."""
        if self._pending:
            data, self._pending = self._pending + data, b""
        pos, end = 0, len(data)
        while True:
            if self.phase == IDLE:
                pos = _skip_empty_lines(data, pos)
                if pos == end:
                    return
                self._begin_head()
            if self.phase == HEAD:
                pos = self._scan_head(data, pos)
                if pos < 0:
                    return
                self.phase = HELD
            if self.phase == HELD:
                if not framings:
                    self._pending = bytes(data[pos:])
                    return
                self._begin_body(framings.popleft())
                continue
            if pos == end:
                return
            pos = self._scan_body(data, pos)

    def resync(self, framing: Framing | None) -> None:
        """Follow the parser where the framer lost track: in ``framing``'s body, or idle."""
        self._pending = self._carry = b""
        if framing is None or framing.payload.is_eof():
            self._end_body()
            return
        framing.length = _UNKNOWN
        self.seq += 1
        self._begin_body(framing)

    def request_line_length(self, data: bytes) -> int:
        """Bytes of the request line being received, up to the end of ``data`` (not fed).

        0 when no request line is being received.  Tells a too-long request
        line from a too-long header field line: aiohttp's parser refuses both
        with the same exception.
        """
        if self.phase == IDLE:
            pos, line = _skip_empty_lines(data, 0), 0
        elif self.phase == HEAD and not self._line_done:
            pos, line = 0, self._line
        else:
            return 0
        lf = data.find(b"\n", pos)
        return line + (len(data) if lf < 0 else lf) - pos

    def _begin_head(self) -> None:
        self.phase = HEAD
        self.seq += 1
        self._carry = b""
        self._line = 0
        self._line_done = False

    def _scan_head(self, data: bytes, pos: int) -> int:
        """Past the end of the head, or -1 if ``data`` does not complete it."""
        if not self._line_done:
            lf = data.find(b"\n", pos)
            self._line_done = lf >= 0
            self._line += (len(data) if lf < 0 else lf) - pos
        return self._find_blank(data, pos)

    def _find_blank(self, data: bytes, pos: int) -> int:
        """Past the first empty line from ``pos`` (it may begin in the carry), or -1."""
        carry = self._carry
        if carry:
            at = (carry + data[pos : pos + 3]).find(_BLANK)
            if at >= 0:
                self._carry = b""
                return pos + at + len(_BLANK) - len(carry)
        at = data.find(_BLANK, pos)
        if at >= 0:
            self._carry = b""
            return at + len(_BLANK)
        self._carry = (carry + data[max(pos, len(data) - 3) :])[-3:]
        return -1

    def _begin_body(self, framing: Framing) -> None:
        self.current = framing
        self.body_bytes = 0
        if framing.length == 0:
            self._end_body()
            return
        self.phase = BODY
        if framing.length is None:
            self._chunk = _SIZE
            self._size.clear()
        else:
            self._left = framing.length

    def _end_body(self) -> None:
        self.phase = IDLE
        self.current = None
        self.body_bytes = 0

    def _scan_body(self, data: bytes, pos: int) -> int:
        """Past the bytes of the body in ``data`` from ``pos``."""
        framing = self.current
        if framing is None:  # pragma: no cover - BODY always has a current request
            raise RuntimeError("no body is being received")
        end = len(data)
        if framing.length is None:
            return self._scan_chunked(data, pos)
        if framing.length == _UNKNOWN:  # the payload's end of stream ends it (see resync)
            self.body_bytes += end - pos
            return end
        take = min(self._left, end - pos)
        self._left -= take
        self.body_bytes += take
        if self._left == 0:
            self._end_body()
        return pos + take

    def _scan_chunked(self, data: bytes, pos: int) -> int:
        start, end = pos, len(data)
        while pos < end and self.phase == BODY:
            if self._chunk == _SIZE:
                pos = self._scan_size_line(data, pos)
            elif self._chunk in (_DATA, _CRLF):
                take = min(self._left, end - pos)
                pos += take
                self._left -= take
                if self._left == 0:
                    self._chunk, self._left = (_CRLF, 2) if self._chunk == _DATA else (_SIZE, 0)
            else:
                at = self._find_blank(data, pos)
                if at < 0:
                    pos = end
                else:
                    pos = at
                    self._end_body()
        if self.phase == BODY:  # else the body ended: nothing to count any more
            self.body_bytes += pos - start
        return pos

    def _scan_size_line(self, data: bytes, pos: int) -> int:
        """Past the chunk-size line (or the end of ``data``); sets up what follows it."""
        end = len(data)
        lf = data.find(b"\n", pos)
        room = _SIZE_PREFIX - len(self._size)
        if room > 0:
            self._size += data[pos : min(end if lf < 0 else lf, pos + room)]
        if lf < 0:
            return end
        size = _chunk_size(self._size)
        self._size.clear()
        if size is None:  # not a size the framer can read: the parser says where it ends
            if self.current is not None:
                self.current.length = _UNKNOWN
            return end
        if size:
            self._chunk, self._left = _DATA, size
        else:
            # The last chunk: the trailer section follows its CRLF, which starts
            # the carry so that an empty trailer section is found at once.
            self._chunk, self._carry = _TRAILER, b"\r\n"
        return lf + 1


def _skip_empty_lines(data: bytes, pos: int) -> int:
    """Past the CR and LF bytes at ``pos``: empty lines before a request are ignored.

    RFC 9112 §2.2 lets a server ignore them, and llhttp does.
    """
    if pos == len(data) or data[pos] not in b"\r\n":
        return pos  # the usual case, without copying anything
    # lstrip, not a loop: a flood of empty lines costs C time, not Python time.
    return len(data) - len(data[pos:].lstrip(b"\r\n"))


def _chunk_size(line: bytearray) -> int | None:
    """The size on a chunk-size line, ``None`` if the kept prefix does not show it."""
    digits, semicolon, _ = bytes(line).partition(b";")
    if not semicolon and len(line) >= _SIZE_PREFIX:
        return None  # cut before its end: the size itself may be longer
    try:
        return int(digits.strip(b" \t\r"), 16)
    except ValueError:
        return None


def body_length(message: RawRequestMessage) -> int | None:
    """The body framing the parser chose for ``message`` (see :class:`Framing`)."""
    if message.chunked:
        return None
    value = message.headers.get(hdrs.CONTENT_LENGTH)
    if value is None:
        return 0  # a request without Content-Length or chunked coding has no body
    try:
        return int(value)
    except ValueError:  # the parser accepted it, so it is a number; this is for safety
        return _UNKNOWN
