"""deploy/monitoring/: every metric the alert rules and the Grafana dashboard use exists in
the real ``/metrics`` of a running hub and of a running node's metrics listener."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import yaml

from globe_io.httpguard import GuardedRunner
from globe_node.metrics import create_metrics_app
from hub.config import load_config
from hub.server import open_hub
from tests.deploy.hubdir import PASSPHRASE, fill_database, make_hub_dir
from tests.node.network import Net
from tests.support.servers import serve_app, serve_runner

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
METRIC = re.compile(r"\bglobe_(?:hub|node)_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_sum", "_count")


def _families(text: str) -> set[str]:
    """Every series name the exposition offers (histograms with their three suffixes)."""
    out = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            out |= {name + s for s in SUFFIXES} if kind == "histogram" else {name}
    return out


def _used() -> set[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return {m for e in exprs for m in METRIC.findall(e)}


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_every_metric_in_the_rules_and_dashboard_exists(tmp_path: Path) -> None:
    hub = make_hub_dir(tmp_path)
    await fill_database(hub.config.database_url, hub.net)
    runtime = await open_hub(load_config(hub.directory), PASSPHRASE.encode())
    async with serve_runner(GuardedRunner(runtime.app, access_log=None)) as served:
        offered = _families(await _get(served.url + "/metrics"))
    (tmp_path / "net").mkdir()
    net = Net(tmp_path / "net")
    await net.start_hub()
    try:
        fr = await net.member("FR-PNF", "Parquet national financier")
        async with serve_app(create_metrics_app(fr.n, fr.n.sessions)) as served:
            offered |= _families(await _get(served.url + "/metrics"))
    finally:
        await net.close()
    used = _used()
    assert {m for m in used if m.startswith("globe_hub_")}, "the rules watch the hub"
    assert {m for m in used if m.startswith("globe_node_")}, "the rules watch the node"
    assert used - offered == set()
    # What the issue asks to watch is watched.
    for name in ("globe_hub_accept_latency_seconds_bucket", "globe_hub_mailbox_items",
                 "globe_hub_refused_total", "globe_hub_commit_batch_size_bucket",
                 "globe_hub_disk_free_bytes", "globe_node_outbox_recipients",
                 "globe_node_oldest_undelivered_seconds", "globe_node_requests_overdue",
                 "globe_node_directory_age_seconds", "globe_node_alerts_total"):  # fmt: skip
        assert name in used, name


def test_every_alert_says_what_it_means() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"page", "warn", "info"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
