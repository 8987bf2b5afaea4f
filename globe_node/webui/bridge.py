"""The web UI's way into the node: the local API's own routes, called in process.

Every page gets its data, and every form makes its change, by calling a route of
:data:`globe_node.api.ROUTES` as the signed-in user: the route's permission is checked
against the user's role (:data:`globe_node.roles.GRANTS`), its declared inputs are
parsed by the route's own declarations (the same bounds, patterns and refusals as over
HTTP), every message id and case reference of the path is resolved against what the
user may see (:mod:`globe_node.compartments`), and the route's own handler runs.  The
answer is the JSON the API would have sent.  So the UI has no way in that the API
lacks: a page that needs more than the API gives needs the API to give it first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from globe_node.api import ROUTES, _resolved
from globe_node.apiapp import node_of
from globe_node.apiparams import ApiRoute, Call, JsonBody, Param, RawBody
from globe_node.errors import Forbidden
from globe_node.roles import GRANTS
from globe_node.users import Principal

__all__ = ["LocalApi", "route_for"]


def _plain(path: str) -> str:
    """``path`` without the patterns of its parameters (``{n:[0-9]{1,3}}`` is ``{n}``)."""
    return "/".join(
        "{" + seg[1:].split(":", 1)[0] + "}" if seg.startswith("{") and ":" in seg else seg
        for seg in path.split("/")
    )


_TABLE: Final[dict[tuple[str, str], ApiRoute]] = {(r.method, _plain(r.path)): r for r in ROUTES}


def route_for(method: str, path: str) -> ApiRoute:
    """The route declared for ``method`` and ``path`` (its parameters as ``{name}``)."""
    return _TABLE[(method, path)]


class LocalApi:
    """The local API as ``who``, for the page answering ``request``."""

    def __init__(self, request: web.Request, who: Principal) -> None:
        self.request = request
        self.who = who

    def may(self, method: str, path: str) -> bool:
        """Whether ``who``'s role holds the route's permission (to offer it on a page)."""
        return route_for(method, path).permission in GRANTS[self.who.role]

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        query: Mapping[str, str | None],
        body: Mapping[str, object] | None,
    ) -> web.StreamResponse:
        route = route_for(method, path)
        if route.permission not in GRANTS[self.who.role]:
            raise Forbidden(f"the {self.who.role.value} role may not do this")
        values: dict[Param[Any], object] = {}
        if isinstance(route.body, JsonBody):
            values.update(route.body.parse(dict(body or {})))
        elif isinstance(route.body, RawBody):  # the browser's own body: its size is stated
            route.body.check(self.request)
        for q in route.query:
            values[q] = q.shape.parse(query.get(q.name), q.name)
        for p in route.path_params:
            values[p] = p.shape.parse(params[p.name], p.name)
        call = await _resolved(node_of(self.request), route, Call(values), self.who)
        return await route.handler(self.request, self.who, call)

    async def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        query: Mapping[str, str | None] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> Any:
        """The route's JSON answer (``None`` for an empty one)."""
        resp = await self._call(method, path, params or {}, query or {}, body)
        if not isinstance(resp, web.Response) or not resp.body:
            return None
        raw = resp.body
        if not isinstance(raw, bytes):  # pragma: no cover - json_response renders bytes
            raise TypeError("the route answered a body that is not bytes")
        return orjson.loads(raw)

    async def stream(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        """The route's own response, streamed to the browser (attachments)."""
        return await self._call(method, path, params or {}, {}, None)
