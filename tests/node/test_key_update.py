"""A key update on a live network (PROTOCOL.md §6.8; globe_node/rekey.py, ``globe-node keys
update``): a real hub and real node daemons over loopback.

* A planned rotation of every key of a member while messages are in flight in both
  directions and on both paths: what it sealed with its old identity key before the
  update, and what others sealed to its old key-agreement key and prekeys, is delivered
  and opened after the switch, through the hub and directly; a receipt its old key
  signed before still verifies; the old key-agreement key is kept, then erased.
* The compromise drill: the admins suspend the member, the operator asks for new keys
  from a clean machine (its restored backup), the admins certify them and reinstate it;
  the stolen keys then open nothing new and sign nothing that verifies.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from globe_io.hubclient import HubClient
from globe_node import db
from globe_node.config import load_config
from globe_node.keys import NodeKeys, load_keys
from protocol import labels
from protocol.envelope import MAX_LIFETIME, SealTo, open_envelope, parse_envelope, seal_envelope
from protocol.errors import (
    AuthError,
    BadSignature,
    DecryptionFailed,
    MemberNotActive,
    NotCertified,
)
from protocol.ids import AuthorityId, MessageId
from protocol.membership import Action
from protocol.messages import MessageContent
from protocol.receipts import DeliveryReceipt, make_receipt
from protocol.signed import SignedObject
from tests.node.helpers import alerts, delivered, inbox_ids, info, recipient_states
from tests.node.network import PASSPHRASE, Net, RunningNode
from tests.support.cli import CliResult, cli_env, run_cli_async
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def keys_update(
    rn: RunningNode, *args: str | Path, directory: Path | None = None
) -> CliResult:
    """``globe-node keys update`` on the node's directory, as its operator runs it."""
    return await run_cli_async(
        "globe_node", "keys", "update", "--dir", directory or rn.config.directory, "--json",
        *args, env=cli_env({"GLOBE_PASSPHRASE": PASSPHRASE.decode()}),
    )  # fmt: skip


async def approve(net: Net, ku_id: str) -> int:
    """Two admins sign the draft update-keys of a key update; the log position."""
    async with net.admin_client(0) as admin:
        draft = (await admin.admin_key_update(ku_id)).draft
    assert draft is not None, "the hub prepared no update-keys"
    seq = None
    for i in (0, 1):
        container = SignedObject(draft, ()).with_signature(labels.MEMBERSHIP_ACTION, net.admins[i])
        async with net.admin_client(i) as admin:
            seq = (await admin.admin_submit_action(container.encode())).seq
    assert seq is not None
    return seq


async def send(rn: RunningNode, to: RunningNode, subject: str) -> str:
    status, sent = await rn.api(
        "POST", "/api/messages", {"to": [str(to.me)], "subject": subject, "body": "Details."}
    )
    assert status == 201, sent
    mid: str = sent["id"]
    return mid


async def in_row(rn: RunningNode, mid: str) -> db.InMessage:
    async with rn.n.sessions() as s:
        return (
            await s.execute(select(db.InMessage).where(db.InMessage.message_id == mid))
        ).scalar_one()


async def hub_accepted(rn: RunningNode, mid: str, who: RunningNode) -> bool:
    """Whether the hub accepted ``rn``'s message ``mid`` for ``who`` (no receipt yet)."""
    return (await recipient_states(rn, mid)).get(str(who.me)) == "sent"


async def test_rotation_with_messages_in_flight_both_ways_on_both_paths(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    de = await net.member("DE-BKA", "Bundeskriminalamt")
    it = await net.member("IT-ANAC", "Autorita Nazionale Anticorruzione")
    old = fr.n.keys
    m0 = await send(de, fr, "before the update")
    await eventually(lambda: delivered(de, m0, fr))
    async with de.n.sessions() as s:
        old_receipt = (await s.get(db.OutRecipient, (m0, "FR-PNF"))).receipt  # type: ignore[union-attr]
    assert old_receipt is not None

    # The operator asks for new keys while the daemon runs; the daemon takes them up.
    asked = (await keys_update(fr)).json()
    assert (asked["status"], asked["replaced"]) == (
        "pending", ["identity", "transport", "key-agreement"],
    )  # fmt: skip
    await eventually(lambda: fr.n.rotation.pending, what="the daemon took the next keys")
    nxt = fr.n.keys.next
    assert nxt is not None
    assert nxt.identity.key_id != old.identity.key_id
    again = (await keys_update(fr)).json()  # the same request again: harmless
    assert (again["id"], again["status"]) == (asked["id"], "pending")

    # FR -> DE, in flight through the hub: DE is down.
    await net.stop_node(de)
    m1 = await send(fr, de, "m1 through the hub")
    await eventually(lambda: hub_accepted(fr, m1, de), what="m1 accepted by the hub")
    # FR -> DE, in flight on the direct path: the hub is down too, it waits in FR's outbox.
    await net.stop_hub()
    m3 = await send(fr, de, "m3 directly")
    await eventually(lambda: _attempted(fr, m3, de), what="m3 tried")
    await net.stop_node(fr)
    # IT -> FR through the hub (FR down), then directly (FR and the hub down).
    await net.start_hub()
    m2 = await send(it, fr, "m2 through the hub")
    await eventually(lambda: hub_accepted(it, m2, fr), what="m2 accepted by the hub")
    await net.stop_hub()
    m4 = await send(it, fr, "m4 directly")
    await eventually(lambda: _attempted(it, m4, fr), what="m4 tried")
    await net.stop_node(it)

    # The admins certify FR's new keys, in a later second than any of those messages was
    # sealed (an envelope is valid if created before its key's retirement, to the second).
    sealed_by = int(time.time())
    await eventually(lambda: int(time.time()) > sealed_by, what="the next second")
    await net.start_hub()
    seq = await approve(net, asked["id"])
    assert net.service is not None
    retired = net.service.state.member(fr.me).retired_at[old.identity.key_id]
    # DE comes back, syncs and pulls m1, signed by FR's replaced key before its retirement.
    await net.start_node(de)
    await de.n.sync_directory()
    assert de.n.state.seq == seq
    await eventually(lambda: _has(de, m1), what="DE opened m1")
    m1_env = parse_envelope((await in_row(de, m1)).envelope).header
    assert (m1_env.sender_key, m1_env.created < retired) == (old.identity.key_id, True)
    # FR comes back: it switches before it sends anything, opens m2 (sealed to its old
    # prekey) from the hub and delivers m3 directly with its new transport key.
    await net.start_node(fr)
    assert fr.n.keys.identity.key_id == nxt.identity.key_id
    assert fr.n.keys.next is None
    await eventually(lambda: _has(fr, m2), what="FR opened m2")
    await eventually(lambda: delivered(fr, m3, de), what="m3 delivered")
    assert (await in_row(de, m3)).via == "direct"
    assert parse_envelope((await in_row(de, m3)).envelope).header.sender_key == old.identity.key_id
    await eventually(lambda: delivered(fr, m1, de), what="m1's receipt back at FR")
    # IT comes back and delivers m4 directly to FR, sealed to FR's old prekey.
    await net.start_node(it)
    await eventually(lambda: _has(fr, m4), what="FR opened m4")
    assert (await in_row(fr, m4)).via == "direct"
    await eventually(lambda: delivered(it, m4, fr), what="m4 receipted")
    await eventually(lambda: delivered(it, m2, fr), what="m2 receipted")
    for mid in (m2, m4):  # receipted with FR's new identity key
        row = await in_row(fr, mid)
        assert DeliveryReceipt.decode(row.receipt, fr.n.state).key == nxt.identity.key_id
        opened_to = parse_envelope(row.envelope).header.recipient(fr.me)[1].prekey
        assert opened_to in {k.key_id for k in fr.n.prekeys.private.values()}
        assert opened_to != nxt.ka.key_id

    # Afterwards both ways with the new keys.
    m5 = await send(fr, de, "after the update")
    m6 = await send(de, fr, "after the update, back")
    await eventually(lambda: delivered(fr, m5, de), what="m5")
    await eventually(lambda: delivered(de, m6, fr), what="m6")
    assert parse_envelope((await in_row(de, m5)).envelope).header.sender_key == nxt.identity.key_id
    assert parse_envelope((await in_row(fr, m6)).envelope).header.recipient(fr.me)[1].prekey != (
        old.ka.key_id
    )
    # A receipt FR's old key signed before the update still verifies.
    receipt = DeliveryReceipt.decode(old_receipt, de.n.state)
    assert (receipt.key, receipt.time < retired) == (old.identity.key_id, True)
    # keys.sealed holds the new keys only; the old key-agreement key waits in the store.
    on_disk = load_keys(fr.config.key_path, PASSPHRASE)
    assert (on_disk.identity.key_id, on_disk.next) == (nxt.identity.key_id, None)
    async with fr.n.sessions() as s:
        kept = await s.get(db.PrekeyRow, str(old.ka.key_id))
        switch = (
            await s.execute(select(db.AuditRow).where(db.AuditRow.action == "switch-keys"))
        ).scalar_one()
    assert kept is not None
    assert kept.signed == b""
    assert kept.private is not None
    assert kept.not_after == kept.not_before + MAX_LIFETIME + fr.config.directory_max_age
    assert (switch.user, switch.time) == ("node", kept.not_before)
    # ... and is erased once no envelope sealed to it can still arrive.
    async with fr.n.prekeys.lock:  # the sync loop, which erases them too, waits
        fr.n.clock = lambda: kept.not_after + fr.config.prekey_grace + 1
        assert str(old.ka.key_id) in await fr.n.erase_expired_prekeys()
    assert old.ka.key_id not in fr.n.prekeys.private


async def _attempted(rn: RunningNode, mid: str, who: RunningNode) -> bool:
    async with rn.n.sessions() as s:
        row = await s.get(db.OutRecipient, (mid, str(who.me)))
    return row is not None and row.attempts >= 1 and row.state == "queued"


async def _said(rn: RunningNode, alert: tuple[str, str]) -> bool:
    return alert in await alerts(rn)


async def _has(rn: RunningNode, mid: str) -> bool:
    return mid in await inbox_ids(rn)


def forge(net: Net, stolen: NodeKeys, to: RunningNode, subject: str, created: int) -> bytes:
    """An envelope the thief seals with the stolen identity key of FR-PNF to ``to``."""
    state = to.n.state
    return seal_envelope(
        genesis=net.genesis, sender=AuthorityId.parse("FR-PNF"), identity=stolen.identity,
        recipients=[SealTo(to.me, 99, to.keys.ka.public_key)],
        content=info(subject).encode(), created=created, expires=created + 3600,
        dir_seq=state.seq, dir_head=state.head,
    )  # fmt: skip


async def test_compromise_drill_suspend_rekey_from_a_clean_machine_reinstate(
    net: Net, tmp_path: Path
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    de = await net.member("DE-BKA", "Bundeskriminalamt")
    stolen = fr.n.keys  # what the thief copied from the node, with its database
    archive = tmp_path / "fr-backup.tar.gz"
    backed_up = await run_cli_async(
        "globe_node", "backup", "--dir", fr.config.directory, "--out", archive, "--json",
        env=cli_env(),
    )  # fmt: skip
    backed_up.json()
    stolen_prekeys = {k: v for k, v in fr.n.prekeys.private.items() if k != stolen.ka.key_id}
    assert stolen_prekeys
    # The theft is found: the node is shut down; a message sealed to its keys waits at the hub.
    await net.stop_node(fr)
    waiting = await send(de, fr, "sealed to the stolen keys")
    await eventually(lambda: hub_accepted(de, waiting, fr), what="accepted by the hub")

    # 1. The admins suspend FR-PNF at once (emergency quorum).
    await net.set_status("FR-PNF", Action.SUSPEND, "identity key reported stolen")
    await de.n.sync_directory()
    suspended_at = de.n.state.member(fr.me).suspended_at
    assert suspended_at is not None
    # The thief can neither pull the mailbox nor send: the hub refuses the stolen transport
    # key, members refuse what the stolen identity key signs.
    async with HubClient(net.hub_url, network=net.genesis.digest, key=stolen.transport) as hub:
        with pytest.raises(AuthError):
            await hub.mailbox()
    with pytest.raises(MemberNotActive):
        await de.n.receive(forge(net, stolen, de, "forged", int(time.time())), via="direct")
    # What waits in the mailbox was sealed to the stolen keys: whoever holds them and gets
    # the ciphertext can open it (the hub gives it to no one now).
    async with de.n.sessions() as s:
        out = await s.get(db.OutMessage, waiting)
    assert out is not None
    opened = open_envelope(
        parse_envelope(out.envelope), directory=de.n.state, me=fr.me,
        private_key=lambda kid: stolen_prekeys.get(kid, stolen.ka), now=int(time.time()),
    )  # fmt: skip
    assert MessageContent.decode(opened.content).subject == "sealed to the stolen keys"

    # 2. On a clean machine: the last backup restored, new keys asked for with it.
    clean = tmp_path / "clean"
    restored = await run_cli_async(
        "globe_node", "restore", archive, "--dir", clean, "--json",
        env=cli_env({"GLOBE_PASSPHRASE": PASSPHRASE.decode()}),
    )  # fmt: skip
    restored.json()
    asked = (await keys_update(fr, directory=clean)).json()
    assert asked["replaced"] == ["identity", "transport", "key-agreement"]
    # 3. The admins compare the fingerprint by telephone, certify the keys, reinstate FR.
    await approve(net, asked["id"])
    await net.set_status("FR-PNF", Action.REINSTATE, "keys replaced; fingerprint confirmed")
    await de.n.sync_directory()
    assert de.n.state.member(fr.me).retired_at == {stolen.identity.key_id: suspended_at}
    # The stolen identity key signs nothing that verifies any more: no envelope dated
    # after the suspension, no receipt.
    for created in (suspended_at, int(time.time())):
        with pytest.raises(NotCertified):
            await de.n.receive(forge(net, stolen, de, "forged", created), via="direct")
    late = make_receipt(
        genesis=net.genesis, identity=stolen.identity, message_id=MessageId(bytes(16)),
        envelope_hash=bytes(32), sender=de.me, recipient=fr.me, time=suspended_at,
    ).encode()  # fmt: skip
    with pytest.raises(BadSignature):
        DeliveryReceipt.decode(late, de.n.state)

    # The clean machine runs: it switches to the new keys and opens what waited with the
    # old ones it restored; its receipt is signed by the new identity key.
    config = load_config(clean)
    node = RunningNode(config, stolen, token=fr.token, api_port=fr.api_port, peer_port=fr.peer_port)
    await net.start_node(node)
    new = load_keys(config.key_path, PASSPHRASE)
    assert node.n.keys.identity.key_id == new.identity.key_id != stolen.identity.key_id
    await eventually(lambda: _has(node, waiting), what="the clean machine opened it")
    await eventually(lambda: delivered(de, waiting, node), what="receipted")
    row = await in_row(node, waiting)
    assert DeliveryReceipt.decode(row.receipt, de.n.state).key == new.identity.key_id
    # From now on members seal to the new keys: the stolen ones open nothing new.
    after = await send(de, node, "after the reinstatement")
    await eventually(lambda: delivered(de, after, node), what="sealed to the new keys")
    env = parse_envelope((await in_row(node, after)).envelope)
    sealed_to = env.header.recipient(node.me)[1].prekey
    assert sealed_to not in {stolen.ka.key_id, *stolen_prekeys}
    async with node.n.sessions() as s:
        prekey = await s.get(db.PrekeyRow, str(sealed_to))
    assert sealed_to == new.ka.key_id or (
        prekey is not None
        and SignedObject.decode(prekey.signed, max_size=4096, what="p").signatures[0].key_id
        == new.identity.key_id
    )
    with pytest.raises(DecryptionFailed):
        open_envelope(
            env, directory=de.n.state, me=node.me,
            private_key=lambda kid: stolen_prekeys.get(kid, stolen.ka), now=int(time.time()),
        )  # fmt: skip
    # The stolen transport key still pulls nothing.
    async with HubClient(net.hub_url, network=net.genesis.digest, key=stolen.transport) as hub:
        with pytest.raises(AuthError):
            await hub.mailbox()
    # Should the compromised machine run again, it says its keys are no longer certified.
    await net.stop_node(node)
    await net.start_node(fr)
    said = (
        "keys-not-certified",
        f"the log certifies other keys for FR-PNF (serial "
        f"{de.n.state.member(fr.me).certificate.serial}) than this node's: its keys were "
        "replaced elsewhere; stop this node",
    )
    await eventually(lambda: _said(fr, said), what="the old machine's alert")


async def test_a_node_switches_when_the_hub_refuses_its_old_transport_key(net: Net) -> None:
    # The sync loop waits an hour: only a refusal or a send makes the node look at the log.
    fr = await net.member("FR-PNF", "Parquet national financier", sync_interval=3600.0)
    asked = (await keys_update(fr)).json()
    await fr.n.rotation.check()  # takes up the next keys (the loop would, within the hour)
    nxt = fr.n.keys.next
    assert nxt is not None
    seq = await approve(net, asked["id"])
    assert fr.n.state.seq == seq - 1
    # The hub knows FR-PNF by its new transport key only: the pull is refused, the node
    # syncs, switches, and pulls again with the new key.
    assert await fr.n.pull() == 0
    assert (fr.n.keys.identity.key_id, fr.n.keys.next) == (nxt.identity.key_id, None)
    assert fr.n.hub.key is fr.n.keys.transport
    assert fr.n.state.seq == seq


async def test_a_node_with_an_update_pending_checks_the_log_before_sealing(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", sync_interval=3600.0)
    de = await net.member("DE-BKA", "Bundeskriminalamt")
    asked = (await keys_update(fr)).json()
    await fr.n.rotation.check()
    nxt = fr.n.keys.next
    assert nxt is not None
    await approve(net, asked["id"])
    mid = await send(fr, de, "sealed after the admins certified the new keys")
    async with fr.n.sessions() as s:
        out = await s.get(db.OutMessage, mid)
    assert out is not None
    assert parse_envelope(out.envelope).header.sender_key == nxt.identity.key_id
    await eventually(lambda: delivered(fr, mid, de), what="delivered")


async def test_keys_update_command(net: Net, tmp_path: Path) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    nothing = await keys_update(fr, "--status")
    assert nothing.json() == {"pending": False}
    refused = await keys_update(fr, "--keep", "identity", "--keep", "transport", "--keep", "ka")
    assert (refused.code, refused.err) == (
        1, "globe-node: error: --keep names every key: nothing would be replaced\n",
    )  # fmt: skip
    asked = (await keys_update(fr, "--keep", "identity")).json()
    assert (asked["status"], asked["replaced"]) == ("pending", ["transport", "key-agreement"])
    shown = (await keys_update(fr, "--status")).json()
    assert (shown["pending"], shown["id"], shown["status"]) == (True, asked["id"], "pending")
    assert shown["fingerprint"] == asked["fingerprint"]
    busy = await keys_update(fr, "--keep", "ka")
    assert (busy.code, busy.err) == (
        1,
        "globe-node: error: a key update is pending already: --keep applies to a new one "
        "(see --status)\n",
    )
    kept = await keys_update(fr, "--discard")
    assert (kept.code, kept.err) == (
        1,
        f"globe-node: error: key update {asked['id']} is pending: only rejected keys are "
        "discarded (ask the admins to reject it first)\n",
    )
    async with net.admin_client(0) as admin:
        await admin.admin_reject_key_update(asked["id"], "asked by mistake")
    again = (await keys_update(fr)).json()
    assert (again["id"], again["status"], again["reason"]) == (
        asked["id"], "rejected", "asked by mistake",
    )  # fmt: skip
    dropped = (await keys_update(fr, "--discard")).json()
    assert (dropped["pending"], dropped["status"]) == (False, "rejected")
    assert load_keys(fr.config.key_path, PASSPHRASE).next is None
    # A new request; a passphrase change then re-seals the next keys with the current ones.
    fresh = (await keys_update(fr)).json()
    assert fresh["id"] != asked["id"]
    pending = load_keys(fr.config.key_path, PASSPHRASE).next
    assert pending is not None
    new_pw = tmp_path / "new-passphrase"
    new_pw.write_text("a new and longer passphrase\n")
    changed = await run_cli_async(
        "globe_node", "passphrase", "change", "--dir", fr.config.directory,
        "--new-passphrase-file", new_pw, "--kdf", "interactive", "--json",
        env=cli_env({"GLOBE_PASSPHRASE": PASSPHRASE.decode()}),
    )  # fmt: skip
    changed.json()
    resealed = load_keys(fr.config.key_path, b"a new and longer passphrase")
    assert resealed.next is not None
    assert resealed.next.to_json() == pending.to_json()
