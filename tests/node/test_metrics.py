"""The node's Prometheus metrics (globe_node/metrics.py): counts and ages from a real node,
no case material in any label or value."""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from globe_node.metrics import create_metrics_app, render
from tests.node.helpers import info
from tests.node.network import Net
from tests.support.servers import serve_app


async def _scrape(node) -> dict[str, float]:
    async with (
        serve_app(create_metrics_app(node, node.sessions)) as served,
        aiohttp.ClientSession() as session,
        session.get(served.url + "/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
    samples = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_metrics_of_a_node_that_sends(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Polícia Federal", endpoint=False)
    await net.synced(fr, br)
    await net.stop_hub()  # no direct path, no hub: the message stays queued
    await fr.n.send([br.me], info("Ledger"))
    got = await _scrape(fr.n)
    assert got['globe_node_outbox_recipients{state="queued"}'] == 1
    assert got['globe_node_outbox_recipients{state="delivered"}'] == 0
    assert got["globe_node_oldest_undelivered_seconds"] >= 0
    assert got['globe_node_membership{status="active"}'] == 1
    assert got['globe_node_membership{status="revoked"}'] == 0
    assert got["globe_node_directory_max_age_seconds"] == fr.config.directory_max_age
    assert got["globe_node_directory_entries"] == 2
    assert got["globe_node_requests_overdue"] == 0
    assert got["globe_node_push_connected"] in (0, 1)
    assert "Ledger" not in str(got)
    assert "FR-PNF" not in str(got)
    assert "BR-PF" not in str(got)


async def test_metrics_of_a_node_never_confirmed(net: Net) -> None:
    rn = net.make_node("BR-PF", "Polícia Federal")
    await net.start_node(rn)
    await rn.n.alert("conflict", "test conflict", b"evidence")
    got = await _scrape(rn.n)
    assert got["globe_node_oldest_undelivered_seconds"] == 0
    assert got['globe_node_membership{status="not admitted"}'] == 1
    assert got['globe_node_alerts_total{kind="conflict"}'] == 1
    assert got["globe_node_directory_age_seconds"] >= 0


async def test_a_head_never_confirmed_and_a_hub_not_tried_yet(net: Net) -> None:
    rn = net.make_node("BR-PF", "Polícia Federal")
    await net.start_node(rn)
    status = replace(await rn.n.status(), age_s=None, hub_reachable=None)
    lines = render(status, oldest_undelivered=0.0, alerts={}).splitlines()
    assert "globe_node_directory_age_seconds +Inf" in lines
    assert "globe_node_hub_reachable -1" in lines
    assert "globe_node_oldest_undelivered_seconds 0" in lines
    assert [x for x in lines if x.startswith("globe_node_alerts_total")] == []
