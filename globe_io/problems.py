"""Reading RFC 9457 problems that a server answered: one mapping for every client.

The hub client, the node's peer client and the node's local API client all
turn a refusal into the same :class:`~protocol.errors.GlobeError`: the class
registered for the problem's ``type`` (so a caller can tell ``consent-required``
from ``rate-limited`` without comparing strings), with the problem's ``detail``
on one bounded line; an unknown type, a problem without a usable detail or an
answer that is no problem at all becomes the caller's fallback error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from globe_io.errors import RateLimited, RemoteError
from protocol import canonical
from protocol.errors import PROBLEM_BASE, GlobeError, error_class

__all__ = ["PROBLEM_TYPES", "error_for_problem", "one_line", "refusal"]

#: Content types a problem may arrive in (some proxies relabel it plain JSON).
PROBLEM_TYPES: Final = ("application/problem+json", "application/json")


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line, at most ``limit`` characters: fit for an error message."""
    return " ".join(text.split())[:limit]


def _detail(problem: Mapping[str, Any]) -> str | None:
    for name in ("detail", "title"):
        value = problem.get(name)
        if isinstance(value, str) and value.strip():
            return one_line(value)
    return None


def error_for_problem(
    status: int,
    problem: Mapping[str, Any],
    *,
    retry_after: str | None = None,
    unknown: Callable[[str, str | None], GlobeError] | None = None,
) -> GlobeError:
    """The error a problem object stands for.

    ``unknown(detail, type_uri)`` builds the error for a type no class of ours
    registers (default: :class:`~globe_io.errors.RemoteError`).  Hub-signed
    ``evidence`` in the problem is attached unverified (the caller decodes it).
    """
    type_uri = problem.get("type")
    detail = _detail(problem) or f"HTTP {status}"
    cls = None
    if isinstance(type_uri, str) and type_uri.startswith(PROBLEM_BASE):
        cls = error_class(type_uri[len(PROBLEM_BASE) :])
    uri = type_uri if isinstance(type_uri, str) else None
    err: GlobeError | None = None
    if cls is RateLimited:
        wait = int(retry_after) if retry_after is not None and retry_after.isdigit() else 1
        err = RateLimited(detail, retry_after=wait)
    elif cls is not None and cls is not GlobeError:
        with contextlib.suppress(TypeError):  # a class whose constructor needs more
            err = cls(detail)
    if err is None:
        err = (unknown or _remote(status))(detail, uri)
    raw = problem.get("evidence")
    if isinstance(raw, str) and len(raw) <= 8192:
        with contextlib.suppress(GlobeError):
            err.evidence = canonical.b64d(raw, what="evidence")
    return err


def _remote(status: int) -> Callable[[str, str | None], GlobeError]:
    return lambda detail, uri: RemoteError(detail, http_status=status, type_uri=uri)


def _known(problem: Mapping[str, Any]) -> bool:
    type_uri = problem.get("type")
    return (
        isinstance(type_uri, str)
        and type_uri.startswith(PROBLEM_BASE)
        and (error_class(type_uri[len(PROBLEM_BASE) :]) is not None)
    )


def refusal(
    status: int,
    content_type: str,
    body: bytes,
    *,
    otherwise: Callable[[], GlobeError],
    retry_after: str | None = None,
    unknown: Callable[[str, str | None], GlobeError] | None = None,
) -> GlobeError:
    """The error a non-2xx answer stands for: its problem's, else ``otherwise()``."""
    if content_type in PROBLEM_TYPES:
        try:
            problem = orjson.loads(body)
        except orjson.JSONDecodeError:
            problem = None
        if isinstance(problem, dict) and (_detail(problem) is not None or _known(problem)):
            return error_for_problem(status, problem, retry_after=retry_after, unknown=unknown)
    return otherwise()
