"""Fixtures of the web UI tests: a real hub and two real nodes on loopback
(:class:`tests.node.network.Net`), each serving the UI under ``/ui`` on its local API
listener, and a raw HTTP client of the UI (:class:`tests.webui.client.UiClient`).

The browser fixtures are in :mod:`tests.webui.browser`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.node.network import Net, RunningNode, add_user


@dataclass
class Pair:
    """A hub and two members: France's PNF (``fr``) and Brazil's Federal Police (``br``),
    each with an investigator ``alice`` (its token is the node's ``token``)."""

    net: Net
    fr: RunningNode
    br: RunningNode


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    net = Net(tmp_path)
    await net.start_hub()
    try:
        fr = await net.member("FR-PNF", "Parquet national financier")
        br = await net.member("BR-PF", "Policia Federal")
        yield Pair(net, fr, br)
    finally:
        await net.close()


async def user(rn: RunningNode, name: str, role: str, *teams: str) -> str:
    """A new user of ``rn``; its token."""
    return await add_user(rn.n, name, role, *teams)


# The browser and its screenshots (tests/webui/browser.py), for every test here.
from tests.webui.browser import browser, shots  # noqa: E402, F401
