"""Sign-in sessions of the web UIs.

The browser holds a random cookie (32 bytes); the server keeps only the cookie's
SHA-256, with the user's name, the SHA-256 of the secret it signed in with, when it
was opened and last seen, and the session's form token (CSRF).  Sessions live in the
server's memory only: a restart signs everybody out.

A session ends after :data:`IDLE_TIMEOUT` seconds without a request, after
:data:`LIFETIME` seconds whatever happens, on sign-out, and on "sign out everywhere"
(every session of the user).  What a session's user may do is the program's own
business: the node reads the user again from its users table on every request
(:meth:`globe_node.webui.app.WebUi.signed_in`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "IDLE_TIMEOUT",
    "LIFETIME",
    "MAX_SESSIONS",
    "Session",
    "SessionStore",
    "new_secret",
]

#: Seconds without a request after which a session ends.
IDLE_TIMEOUT: Final = 30 * 60
#: Seconds after sign-in after which a session ends, however busy.
LIFETIME: Final = 12 * 3600
#: Sessions held at once; opening one more ends the one least recently seen.
MAX_SESSIONS: Final = 10_000


def _digest(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


def new_secret() -> str:
    """A fresh random value for a cookie or a form token (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class Session:
    """One signed-in browser: whose, since when, and its form token."""

    user: str
    token_hash: bytes
    created: int
    last_seen: int
    csrf: str

    def accepts(self, token: str | None) -> bool:
        """Whether ``token`` is this session's form token (compared in constant time)."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    """The open sessions, by the SHA-256 of their cookie."""

    def __init__(
        self,
        *,
        clock: Callable[[], int],
        idle: int = IDLE_TIMEOUT,
        lifetime: int = LIFETIME,
        limit: int = MAX_SESSIONS,
        secret: Callable[[], str] = new_secret,
    ) -> None:
        self.clock = clock
        self.idle = idle
        self.lifetime = lifetime
        self.limit = limit
        self.secret = secret
        self._open: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._open)

    def _expired(self, session: Session, now: int) -> bool:
        return now - session.last_seen >= self.idle or now - session.created >= self.lifetime

    def open(self, user: str, token_hash: bytes) -> tuple[str, Session]:
        """A new session of ``user`` signed in with the token of ``token_hash``: the cookie
        (the only copy) and the session."""
        now = self.clock()
        self._open = {k: s for k, s in self._open.items() if not self._expired(s, now)}
        while len(self._open) >= self.limit:
            oldest = min(self._open, key=lambda k: self._open[k].last_seen)
            del self._open[oldest]
        cookie = self.secret()
        session = Session(user, token_hash, now, now, self.secret())
        self._open[_digest(cookie)] = session
        return cookie, session

    def find(self, cookie: str | None) -> Session | None:
        """The live session of ``cookie`` (now seen), or ``None``; an expired one ends."""
        if not cookie:
            return None
        key = _digest(cookie)
        session = self._open.get(key)
        if session is None:
            return None
        now = self.clock()
        if self._expired(session, now):
            del self._open[key]
            return None
        session.last_seen = now
        return session

    def close(self, cookie: str | None) -> None:
        """End the session of ``cookie`` (nothing if there is none)."""
        if cookie:
            self._open.pop(_digest(cookie), None)

    def close_user(self, user: str) -> int:
        """End every session of ``user``; how many there were."""
        keys = [k for k, s in self._open.items() if s.user == user]
        for key in keys:
            del self._open[key]
        return len(keys)

    def of_user(self, user: str) -> int:
        """How many sessions ``user`` has open."""
        now = self.clock()
        return sum(1 for s in self._open.values() if s.user == user and not self._expired(s, now))
