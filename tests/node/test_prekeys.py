"""The prekeys a node seals to and publishes: a sender picks the newest valid prekey
of the recipient and skips junk, expired and forged ones; a prekey made while the hub
is down is published once it is back, and an erased one is not loaded again."""

from __future__ import annotations

import time
from typing import Any

import pytest

from globe_node import db
from protocol.envelope import parse_envelope
from protocol.keys import KemPrivateKey
from protocol.prekeys import SignedPrekey, make_prekey
from tests.node.helpers import info
from tests.node.network import Net
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_the_newest_valid_prekey_is_used_and_junk_is_skipped(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    now = int(time.time())

    def prekey(not_after: int) -> SignedPrekey:
        return make_prekey(
            genesis=net.genesis, authority=br.me, identity=br.keys.identity,
            key=KemPrivateKey.generate().public_key, not_before=now - 60, not_after=not_after,
        )  # fmt: skip

    newer, older = prekey(now + 5000), prekey(now + 1000)
    forged = make_prekey(
        genesis=net.genesis, authority=br.me, identity=fr.keys.identity,
        key=KemPrivateKey.generate().public_key, not_before=now - 60, not_after=now + 9000,
    )  # fmt: skip

    async def prekeys(_authority: Any) -> list[bytes]:
        return [b"junk", newer.signed.encode(), forged.signed.encode(), older.signed.encode()]

    fr.n.hub.get_prekeys = prekeys  # type: ignore[method-assign,assignment]
    mid = str(await fr.n.send([br.me], info()))
    async with fr.n.sessions() as s:
        msg = await s.get(db.OutMessage, mid)
    assert msg is not None
    (to,) = parse_envelope(msg.envelope).header.recipients
    assert to.prekey == newer.key.key_id


async def test_a_prekey_made_while_the_hub_is_down_is_published_later(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_hub()
    kid = await fr.n.rotate_prekey()
    async with fr.n.sessions() as s:
        row = await s.get(db.PrekeyRow, kid)
    assert row is not None
    assert row.published is False
    await net.start_hub()

    async def published() -> bool:
        async with fr.n.sessions() as s:
            r = await s.get(db.PrekeyRow, kid)
        return r is not None and r.published

    await eventually(published)
    at_hub = [
        str(SignedPrekey.decode(d, net.genesis, fr.keys.identity.verify_key, authority=fr.me).key
            .key_id)
        for d in await br.n.hub.get_prekeys(fr.me)
    ]  # fmt: skip
    assert kid in at_hub

    # an erased private prekey is not loaded again when the node restarts (the sync loop
    # erases expired prekeys too: its lock keeps it from doing so first)
    async with fr.n.prekeys.lock:
        async with fr.n.sessions.begin() as s:
            aged = await s.get(db.PrekeyRow, kid)
            assert aged is not None
            aged.not_after = fr.n.now() - fr.config.prekey_grace - 1
        assert await fr.n.erase_expired_prekeys() == [kid]
    await net.stop_node(fr)
    await net.start_node(fr)
    assert kid not in {str(k) for k in fr.n.prekeys.private}
    assert len(fr.n.prekeys.private) >= 2  # the certified KA key and the live prekey
