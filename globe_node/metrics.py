"""Prometheus metrics of a node, on a listener of their own (``metrics_host:metrics_port``).

What an operator alerts on (docs/OPERATIONS.md, "Monitor"; deploy/monitoring/): the
outbox depth by delivery state and the age of the oldest undelivered message, open
and overdue requests, the directory's age against its limit, alerts by kind, this
node's membership, whether the hub is reachable and the push stream open, and the
disk the node directory takes and has left.

Every value is a count, an age or a state: no authority id, subject, case
reference or any other case material is a label or a value, so the operator who
scrapes this learns how busy the node is and nothing of what it carries.  It is a
third listener, off by default (``metrics_port = 0``), rather than a route of the
peer listener, which faces the other members and the internet (the volume of
requests is itself metadata, R13), or of the local API, whose every route needs a
person's bearer token.  Bind it to loopback or the monitoring network only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Final, Protocol

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from globe_io.web import problem_middleware
from globe_node import db
from globe_node.states import Delivery
from globe_node.views import NodeStatus

__all__ = ["MEMBERSHIP_STATES", "NodeMetrics", "create_metrics_app", "render"]

log = logging.getLogger("globe.node.metrics")

#: The values of the ``status`` label of ``globe_node_membership``.
MEMBERSHIP_STATES: Final = ("active", "suspended", "revoked", "not admitted")
_UNDELIVERED: Final = (Delivery.QUEUED.value, Delivery.SENT.value)
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class NodeMetrics(Protocol):
    """What the metrics need of the node (the :class:`~globe_node.node.Node` façade)."""

    async def status(self) -> NodeStatus:
        """Membership, directory, hub, queues, requests and alerts."""
        ...  # pragma: no cover - a protocol

    def now(self) -> int:
        """The node's clock, in whole seconds."""
        ...  # pragma: no cover - a protocol


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {_num(value)}" for labels, value in samples]
    return lines


def render(status: NodeStatus, *, oldest_undelivered: float, alerts: dict[str, int]) -> str:
    """The exposition text (Prometheus text format 0.0.4) for one scrape."""
    age = math.inf if status.age_s is None else float(status.age_s)
    reachable = -1.0 if status.hub_reachable is None else float(status.hub_reachable)
    states = [d.value for d in Delivery]
    lines = [
        *_family(
            "globe_node_outbox_recipients", "gauge",
            "Recipients of sent messages, by delivery state.",
            ((f'{{state="{s}"}}', status.outbox.get(s, 0)) for s in states),
        ),
        *_family(
            "globe_node_oldest_undelivered_seconds", "gauge",
            "Age of the oldest message some recipient has not received yet (0: none).",
            [("", oldest_undelivered)],
        ),
        *_family("globe_node_requests_open", "gauge", "Open requests, both directions.",
                 [("", status.requests_open)]),
        *_family("globe_node_requests_overdue", "gauge", "Open requests past their deadline.",
                 [("", status.requests_overdue)]),
        *_family("globe_node_inbox_unread", "gauge", "Received messages nobody opened yet.",
                 [("", status.inbox_unread)]),
        *_family(
            "globe_node_directory_age_seconds", "gauge",
            "Seconds since a hub checkpoint last confirmed the verified log (+Inf: never).",
            [("", age)],
        ),
        *_family(
            "globe_node_directory_max_age_seconds", "gauge",
            "directory_max_age: beyond it sending is refused.", [("", status.max_age_s)],
        ),
        *_family("globe_node_directory_entries", "gauge", "Length of the verified log.",
                 [("", status.seq)]),
        *_family(
            "globe_node_alerts_total", "counter", "Alerts recorded, by kind.",
            ((f'{{kind="{k}"}}', n) for k, n in sorted(alerts.items())),
        ),
        *_family(
            "globe_node_membership", "gauge",
            "This node's membership in the verified directory (1 for its status).",
            ((f'{{status="{s}"}}', float(status.membership == s)) for s in MEMBERSHIP_STATES),
        ),
        *_family(
            "globe_node_hub_reachable", "gauge",
            "Whether the last request reached the hub (1, 0; -1: not tried yet).",
            [("", reachable)],
        ),
        *_family("globe_node_push_connected", "gauge", "Whether the hub's push stream is open.",
                 [("", float(status.push_connected))]),
        *_family(
            "globe_node_disk_bytes", "gauge",
            "Bytes the node directory takes: the database (with its WAL), attachment files,"
            " staged uploads.",
            [('{part="database"}', status.database_bytes), ('{part="blobs"}', status.blob_bytes),
             ('{part="uploads"}', status.upload_bytes)],
        ),
        *_family("globe_node_disk_free_bytes", "gauge",
                 "Bytes free on the node directory's file system.", [("", status.free_bytes)]),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


async def _oldest_undelivered(
    node: NodeMetrics, store_sessions: async_sessionmaker[AsyncSession]
) -> float:
    async with store_sessions() as session:
        created = await session.scalar(
            select(func.min(db.OutMessage.created))
            .join(db.OutRecipient, db.OutRecipient.message_id == db.OutMessage.message_id)
            .where(db.OutRecipient.state.in_(_UNDELIVERED))
        )
    return 0.0 if created is None else float(max(0, node.now() - created))


async def _alerts_by_kind(store_sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with store_sessions() as session:
        rows = await session.execute(select(db.Alert.kind, func.count()).group_by(db.Alert.kind))
    return {str(kind): int(n) for kind, n in rows.all()}


def create_metrics_app(
    node: NodeMetrics, sessions: async_sessionmaker[AsyncSession]
) -> web.Application:
    """``GET /metrics`` and nothing else."""

    async def metrics(_request: web.Request) -> web.Response:
        status = await node.status()
        text = render(
            status,
            oldest_undelivered=await _oldest_undelivered(node, sessions),
            alerts=await _alerts_by_kind(sessions),
        )
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(middlewares=[problem_middleware(logger=log)])
    app.router.add_get("/metrics", metrics)
    return app
