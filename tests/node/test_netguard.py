"""Peers are reached only at public addresses unless configured (THREAT-MODEL M7),
and the peer listener limits the request rate per address and per member."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from globe_node.config import load_config
from globe_node.errors import ConfigError
from globe_node.netguard import PublicOnlyResolver, check_literal
from protocol.errors import TransportError
from tests.node.helpers import info, post_inbox, recipient_states, seal
from tests.node.network import Net
from tests.support.waiting import eventually


class Fixed(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "::1", "fe80::1",
     "fd00::5", "0.0.0.0", "100.64.0.1", "224.0.0.1"],  # noqa: S104
)  # fmt: skip
async def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(TransportError, match="not public"):
        check_literal(address if ":" not in address else f"[{address}]")
    with pytest.raises(OSError, match="resolves to no public address"):
        await PublicOnlyResolver(Fixed(address)).resolve("peer.example", 443)


async def test_public_addresses_and_names_pass() -> None:
    check_literal("8.8.8.8")
    check_literal("[2001:4860:4860::8888]")
    check_literal("node.authority.example")  # a name: checked when resolved
    inner = Fixed("10.0.0.1", "8.8.8.8")
    kept = await PublicOnlyResolver(inner).resolve("node.authority.example", 443)
    assert [r["host"] for r in kept] == ["8.8.8.8"]  # the private answer is dropped
    await PublicOnlyResolver(inner).close()
    assert inner.closed is True


def test_the_setting_is_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(
        'authority = "FR-PNF"\nhub_url = "http://127.0.0.1:1"\nallow_private_endpoints = "yes"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert (
        err.value.detail
        == f"{tmp_path / 'node.toml'}: allow_private_endpoints must be true or false"
    )


@pytest.mark.slow
async def test_a_loopback_endpoint_is_not_posted_to_by_default(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", allow_private_endpoints=False)
    br = await net.member("BR-PF", "Policia Federal")  # its endpoint is http://127.0.0.1:…
    ping = await fr.n.ping(br.me)
    assert ping["direct"]["ok"] is False
    assert "not public" in ping["direct"]["error"]
    mid = str(await fr.n.send([br.me], info("relayed, not posted to loopback")))

    async def via_hub() -> bool:
        async with fr.n.sessions() as s:
            from globe_node import db  # noqa: PLC0415

            row = await s.get(db.OutRecipient, (mid, "BR-PF"))
            return row is not None and row.state == "delivered" and row.via == "hub"

    await eventually(via_hub)
    assert (await recipient_states(fr, mid)) == {"BR-PF": "delivered"}


@pytest.mark.slow
async def test_the_peer_listener_limits_each_address(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", peer_rate=0.5, peer_burst=2)
    br = await net.member("BR-PF", "Policia Federal")
    statuses = []
    for seq in (1, 2, 3):
        status, problem = await post_inbox(fr, seal(br, fr, seq=seq), signer=br)
        statuses.append((status, str(problem.get("type", "")).rsplit("/", 1)[-1]))
    assert statuses[:2] == [(200, ""), (200, "")]
    assert statuses[2] == (429, "rate-limited")
