"""What the local API's handlers share: the keys of the node and the audit log in the
aiohttp application (:func:`globe_node.api.create_api_app` sets them)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from globe_node.audit import AuditLog
from globe_node.node import Node

__all__ = ["AUDIT_KEY", "NODE_KEY", "node_of"]

NODE_KEY: Final = web.AppKey("node", Node)
AUDIT_KEY: Final = web.AppKey("audit", AuditLog)


def node_of(request: web.Request) -> Node:
    """The node a request is for."""
    return request.app[NODE_KEY]
