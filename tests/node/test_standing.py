"""A suspended or revoked node says so once, in words, from its own verified log; stops the
requests that can only be refused; shows it in ``status`` and the alerts feed; and says
when it is active again (globe_node/standing.py)."""

from __future__ import annotations

import logging

import pytest

from globe_node.cli import render
from globe_node.standing import INACTIVE_SYNC, Standing
from protocol.ids import AuthorityId
from protocol.membership import Action
from tests.node.network import Net, RunningNode

FR = AuthorityId.parse("FR-PNF")


@pytest.fixture
async def fr(net: Net) -> RunningNode:
    return await net.member("FR-PNF", "Parquet national financier")


def _said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "globe.node"]


async def test_a_revoked_node_says_what_happened_once(
    fr: RunningNode, net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="globe.node")
    await net.set_status("FR-PNF", Action.REVOKE, "key compromise")
    detail = (
        "this node (FR-PNF) was revoked at log entry 2 (reason: key compromise): it will not "
        "send or receive again; revocation is final; see docs/OPERATIONS.md, 'A suspended or "
        "revoked node'"
    )
    for _ in range(3):  # however often it syncs, and whichever loop gets there first
        assert (await fr.n.sync_now())[1] is None
    assert [m for m in _said(caplog) if "revoked" in m[1]] == [("ERROR", detail)]
    assert [(a.kind, a.detail) for a in await fr.n.alerts()] == [("membership-revoked", detail)]
    assert fr.n.standing == Standing(FR, "revoked", 2, "key compromise")
    assert fr.n.push.may_connect() is False  # no stream the hub can only refuse
    status = (await fr.n.status()).to_json()
    assert status["membership"] == "revoked"
    assert (
        "WARNING:    this node is revoked: the hub and every peer refuse what it sends and it "
        "receives nothing; 'globe-node alerts' says at which log entry and why"
    ) in render.status(status)


async def test_a_suspended_node_backs_off_and_comes_back(
    fr: RunningNode, net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="globe.node")
    await net.set_status("FR-PNF", Action.SUSPEND, "audit pending")
    _added, pulled = await fr.n.sync_now()
    assert pulled is None  # no mailbox pull: the hub would refuse it
    assert fr.n.standing.alert_kind == "membership-suspended"
    assert fr.n.standing.explain() == (
        "this node (FR-PNF) was suspended at log entry 2 (reason: audit pending): it will not "
        "send or receive until the admins reinstate it; see docs/OPERATIONS.md, 'A suspended "
        "or revoked node'"
    )
    assert fr.config.sync_interval <= INACTIVE_SYNC
    await net.set_status("FR-PNF", Action.REINSTATE, "audit closed")
    _, pulled = await fr.n.sync_now()
    assert pulled == 0
    assert fr.n.standing == Standing(FR, "active", 3, "audit closed")
    assert fr.n.push.may_connect() is True
    assert ("WARNING", "this node (FR-PNF) is active again (log entry 3)") in _said(caplog)
    kinds = [a.kind for a in await fr.n.alerts()]
    assert kinds == ["membership-suspended"]


def test_standings_that_need_no_words() -> None:
    assert Standing(FR, "active", 1).explain() is None
    assert Standing(FR, "not admitted").explain() is None
    assert Standing(FR, "not admitted").alert_kind is None
    assert Standing(FR, "revoked", 4).explain() == (
        "this node (FR-PNF) was revoked at log entry 4: it will not send or receive again; "
        "revocation is final; see docs/OPERATIONS.md, 'A suspended or revoked node'"
    )
    assert not [x for x in render.status({"membership": "active"}) if x.startswith("WARNING")]
