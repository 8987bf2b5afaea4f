"""What a node refuses or flags: forged senders, replays, conflicts, forked heads,
stale directories, bad peer requests; what a stolen node directory yields; and
forward secrecy by prekey erasure."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from globe_node import db
from globe_node.errors import DirectoryStale
from globe_node.keys import load_keys
from globe_node.views import HeldMessage
from protocol.envelope import SealTo, parse_envelope, seal_envelope
from protocol.errors import (
    BadSignature,
    ConflictError,
    DecryptionFailed,
    ForkDetected,
    MemberNotActive,
    NotCertified,
)
from protocol.ids import MessageId
from protocol.membership import Action, make_checkpoint
from protocol.messages import Kind
from tests.node.helpers import count, delivered, inbox_ids, info, post_inbox, seal
from tests.node.network import PASSPHRASE, Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
async def trio(net: Net) -> tuple[RunningNode, RunningNode, RunningNode]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    return fr, br, ke


async def test_forged_sender_is_refused_on_every_path(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, ke = trio
    # Kenya signs an envelope that names Brazil as its sender.
    forged = seal(br, fr, identity=ke)
    with pytest.raises((NotCertified, BadSignature)):
        await fr.n.receive(forged, via="hub")
    # On the direct path Kenya cannot deliver an envelope of Brazil's...
    status, problem = await post_inbox(fr, forged, signer=ke)
    assert status == 400
    assert str(problem["type"]).endswith("/malformed")
    # ...and a request signed for another audience, or not signed, is refused.
    genuine = seal(ke, fr)
    status, problem = await post_inbox(fr, genuine, signer=ke, audience="BR-PF")
    assert (status, str(problem["type"]).rsplit("/", 1)[1]) == (401, "unauthorized")
    status, problem = await post_inbox(fr, genuine, signer=None)
    assert (status, str(problem["type"]).rsplit("/", 1)[1]) == (401, "unauthorized")
    assert await inbox_ids(fr) == []


async def test_replay_returns_the_same_receipt_and_conflict_is_kept(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    mid = MessageId.new()
    envelope = seal(br, fr, message_id=mid)
    first = await fr.n.receive(envelope, via="direct")
    again = await fr.n.receive(envelope, via="hub")
    assert again == first
    assert await inbox_ids(fr) == [str(mid)]
    # Same id, other bytes (re-sealed): refused, kept as evidence with an alert.
    other = seal(br, fr, message_id=mid, subject="A different text")
    with pytest.raises(ConflictError):
        await fr.n.receive(other, via="hub")
    assert await inbox_ids(fr) == [str(mid)]
    assert await count(fr, db.Conflict) == 1
    assert [a.kind for a in await fr.n.alerts()] == ["conflict"]
    # Over HTTP a replay is answered with the original receipt, a conflict with 409.
    status, _ = await post_inbox(fr, envelope, signer=br)
    assert status == 200
    status, problem = await post_inbox(fr, other, signer=br)
    assert (status, str(problem["type"]).rsplit("/", 1)[1]) == (409, "conflict")


async def test_sequence_gaps_and_late_messages_are_marked(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    for seq in (1, 3, 2):
        await fr.n.receive(seal(br, fr, seq=seq), via="hub")
    async with fr.n.sessions() as s:
        rows = (await s.execute(select(db.InMessage.seq, db.InMessage.order))).all()
    assert sorted(rows) == [(1, "in-order"), (2, "old"), (3, "gap")]


async def test_forked_directory_head_in_an_envelope_raises_an_alert(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    envelope = seal(br, fr, dir_head=os.urandom(32))
    await fr.n.receive(envelope, via="hub")
    alerts = await fr.n.alerts()
    assert [a.kind for a in alerts] == ["directory-fork"]
    async with fr.n.sessions() as s:
        alert = (await s.execute(select(db.Alert))).scalar_one()
        row = (await s.execute(select(db.InMessage))).scalar_one()
    assert alert.evidence == envelope  # the peer's signed head is kept
    assert row.head_relation == "fork"


async def test_hub_checkpoint_that_forks_the_log_is_refused(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    seq_before, head_before = fr.n.state.seq, fr.n.state.head
    forged = make_checkpoint(
        genesis=net.genesis, hub=net.hub_key, seq=fr.n.state.seq, head=os.urandom(32),
        time=int(time.time()),
    )  # fmt: skip

    async def no_entries(since: int = 0) -> list[bytes]:
        return []

    async def checkpoint() -> bytes:
        return forged.signed.encode()

    fr.n.hub.log_entries = no_entries  # type: ignore[method-assign]
    fr.n.hub.checkpoint = checkpoint  # type: ignore[method-assign]
    with pytest.raises(ForkDetected):
        await fr.n.sync_directory()
    assert (fr.n.state.seq, fr.n.state.head) == (seq_before, head_before)
    assert "directory-fork" in [a.kind for a in await fr.n.alerts()]


async def test_stale_directory_refuses_to_send(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    real = fr.n.clock
    fr.n.clock = lambda: real() + fr.config.directory_max_age + 3600
    fr.n.directory.checkpoint_time = int(real())
    with pytest.raises(DirectoryStale):
        await fr.n.send([br.me], info())
    fr.n.clock = real


async def test_oversized_envelope_is_refused_before_reading(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    status, problem = await post_inbox(fr, bytes(3 * 1024 * 1024), signer=br)
    assert (status, str(problem["type"]).rsplit("/", 1)[1]) == (413, "payload-too-large")


async def test_a_copy_of_the_node_directory_yields_no_usable_key(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    secret = "The account number is 0042-7781-3319"  # noqa: S105
    mid = str(await br.n.send([fr.me], info(secret)))
    await eventually(lambda: delivered(br, mid, fr))
    copy = fr.config.directory
    with pytest.raises(DecryptionFailed):
        load_keys(copy / "keys.sealed", b"a guess")
    assert oct((copy / "keys.sealed").stat().st_mode & 0o777) == "0o600"
    # Nothing secret is readable in the files: not the content, not a private key.
    blob = b"".join(p.read_bytes() for p in copy.rglob("*") if p.is_file())
    assert secret.encode() not in blob
    keys = load_keys(copy / "keys.sealed", PASSPHRASE)
    for raw in (keys.identity.seed, keys.transport.seed, keys.ka.raw, keys.storage):
        assert raw not in blob
    for private in fr.n.prekeys.private.values():
        assert private.raw not in blob


async def test_prekey_rotation_erases_the_old_private_prekey(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    async with fr.n.sessions() as s:
        (old,) = (await s.execute(select(db.PrekeyRow))).scalars().all()
    old_public = next(
        k.public_key for kid, k in fr.n.prekeys.private.items() if str(kid) == old.key_id
    )
    # A message sealed to the current prekey (the sender fetches it from the hub).
    mid = str(await br.n.send([fr.me], info("before rotation")))
    await eventually(lambda: delivered(br, mid, fr))
    env = parse_envelope(await _stored_envelope(fr, mid))
    assert str(env.header.recipients[0].prekey) == old.key_id
    late = seal(br, fr, seq=50, prekey=old_public)

    new_kid = await fr.n.rotate_prekey()
    assert new_kid != old.key_id
    # Time passes: the old prekey expired longer ago than the grace period.  (The node's
    # sync loop erases expired prekeys too: its lock keeps it from doing so first.)
    async with fr.n.prekeys.lock:
        async with fr.n.sessions.begin() as s:
            aged = await s.get(db.PrekeyRow, old.key_id)
            assert aged is not None
            aged.not_after = fr.n.now() - fr.config.prekey_grace - 1
        assert await fr.n.erase_expired_prekeys() == [old.key_id]
    async with fr.n.sessions() as s:
        row = await s.get(db.PrekeyRow, old.key_id)
    assert row is not None
    assert row.private is None
    assert row.erased is not None
    assert old.key_id not in {str(k) for k in fr.n.prekeys.private}
    # An envelope to the erased prekey cannot be opened any more...
    with pytest.raises(DecryptionFailed):
        await fr.n.receive(late, via="hub")
    # ...and what was received before stays readable from the node's own store.
    direction, content, _ = await fr.n.content_of(mid)
    assert (direction, content.subject) == ("in", "before rotation")
    assert content.kind is Kind.INFORMATION


async def _stored_envelope(rn: RunningNode, mid: str) -> bytes:
    async with rn.n.sessions() as s:
        row = (
            await s.execute(select(db.InMessage).where(db.InMessage.message_id == mid))
        ).scalar_one()
    return row.envelope


async def test_attachment_travels_through_the_hub_and_decrypts_identically(
    trio: tuple[RunningNode, RunningNode, RunningNode], tmp_path: Path
) -> None:
    fr, br, ke = trio
    data = os.urandom(3 * 1024 * 1024 + 17)
    status, staged = await fr.upload(data, "ledger.bin")
    assert status == 201, staged
    assert (staged["name"], staged["size"]) == ("ledger.bin", len(data))
    status, sent = await fr.api(
        "POST", "/api/messages",
        {"to": ["BR-PF", "KE-EACC"], "kind": "request", "subject": "Ledger", "body": "see file",
         "attachments": [staged["id"]]},
    )  # fmt: skip
    assert status == 201, sent
    await eventually(lambda: delivered(fr, sent["id"], br, ke))
    for peer in (br, ke):
        url = f"/api/messages/{sent['id']}/attachments/1"
        status, body = await peer.api("GET", url)
        assert status == 200
        assert body == data
    # The stored blob is the ciphertext, never the plaintext.
    stored = br.n.blob_path(fr.me, sent_blob(await br.n.content_of(sent["id"]))).read_bytes()
    assert data[:4096] not in stored


def sent_blob(found: HeldMessage) -> str:
    return found.content.attachments[0].blob


async def test_bad_local_api_input_is_a_problem_not_a_traceback(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, _, _ = trio
    cases = [
        ("POST", "/api/messages", {"to": [], "subject": "s", "body": "b"}, 400),
        ("POST", "/api/messages", {"to": ["XX"], "subject": "s", "body": "b"}, 400),
        ("POST", "/api/messages", {"to": ["ZZ-NOBODY"], "subject": "s", "body": "b"}, 400),
        ("POST", "/api/messages", {"to": ["BR-PF"], "subject": 5, "body": "b"}, 400),
        (
            "POST",
            "/api/messages",
            {"to": ["BR-PF"], "subject": "s", "body": "b", "kind": "answer"},
            400,
        ),
        (
            "POST",
            "/api/messages",
            {
                "to": ["BR-PF"],
                "subject": "s",
                "body": "b",
                "attachments": [{"path": "relative.txt"}],
            },
            400,
        ),
        ("GET", "/api/messages/" + "0" * 32, None, 404),
        ("GET", "/api/nothing", None, 404),
    ]
    for method, path, body, want in cases:
        status, problem = await fr.api(method, path, body)
        assert status == want, (path, body, problem)
        assert isinstance(problem, dict)
        assert str(problem["type"]).startswith("https://globe-link.invalid/problems/")
    assert await fr.n.outbox() == []


async def test_a_log_a_peer_saw_but_the_hub_hides_raises_an_alert_and_marks_messages(
    net: Net, trio: tuple[RunningNode, RunningNode, RunningNode]
) -> None:
    """The malicious-hub case: Kenya is suspended, the hub hides that entry from France
    only.  Brazil's envelope proves a longer log exists: France alerts, keeps Brazil's
    envelope as evidence, and marks what it receives meanwhile (Kenya's message too) as
    suspect; once the hub serves the entry, the claim resolves and Kenya is refused."""
    fr, br, ke = trio
    hidden_at = fr.n.state.seq
    honest_head = fr.n.state.head
    real_entries, real_checkpoint = fr.n.hub.log_entries, fr.n.hub.checkpoint

    async def hiding_entries(since: int = 0) -> list[bytes]:
        return [e for i, e in enumerate(await real_entries(since), since + 1) if i <= hidden_at]

    async def hiding_checkpoint() -> bytes:
        forged = make_checkpoint(
            genesis=net.genesis, hub=net.hub_key, seq=hidden_at, head=honest_head,
            time=int(time.time()),
        )  # fmt: skip
        return forged.signed.encode()

    fr.n.hub.log_entries = hiding_entries  # type: ignore[method-assign]
    fr.n.hub.checkpoint = hiding_checkpoint  # type: ignore[method-assign]
    await net.set_status("KE-EACC", Action.SUSPEND, "under investigation")
    await net.synced(br)  # Brazil sees the suspension; France is shown the old log
    await fr.n.sync_directory()
    assert fr.n.state.seq == hidden_at
    assert (await fr.n.status()).behind_peer is None

    from_brazil = seal(br, fr, subject="routine update")
    await fr.n.receive(from_brazil, via="direct")
    await fr.n.sync_directory()  # the sync the claim triggers: the hub still hides the entry
    alerts = [a for a in await fr.n.alerts() if a.kind == "directory-behind-peer"]
    assert len(alerts) == 1
    assert f"BR-PF signed a message with a membership log of {hidden_at + 1} entries" in (
        alerts[0].detail
    )
    async with fr.n.sessions() as s:
        evidence = (
            await s.execute(
                select(db.Alert.evidence).where(db.Alert.kind == "directory-behind-peer")
            )
        ).scalar_one()
    assert evidence == from_brazil
    behind = (await fr.n.status()).behind_peer
    assert behind is not None
    assert (behind.peer, behind.seq) == ("BR-PF", hidden_at + 1)

    # Kenya (suspended in the hidden entry) still reaches France, but flagged as suspect
    from_kenya = seal(ke, fr, subject="please act on this")
    await fr.n.receive(from_kenya, via="hub")
    inbox = {m.subject: m for m in await fr.n.inbox()}
    assert "membership may have changed" in str(inbox["please act on this"].suspect)
    assert inbox["routine update"].suspect is None  # stored before the alert was raised
    await fr.n.sync_directory()  # no second alert for the same claim
    # no second alert for Brazil's claim (Kenya, once it synced, may have made its own)
    brazil = [a for a in await fr.n.alerts() if a.detail.startswith("BR-PF signed")]
    assert len(brazil) == 1

    # the hub serves the entry again: resolved, and Kenya is refused from now on
    fr.n.hub.log_entries = real_entries  # type: ignore[method-assign]
    fr.n.hub.checkpoint = real_checkpoint  # type: ignore[method-assign]
    await fr.n.sync_directory()
    assert fr.n.state.seq == hidden_at + 1
    assert (await fr.n.status()).behind_peer is None
    with pytest.raises(MemberNotActive):
        await fr.n.receive(seal(ke, fr, seq=2, subject="again"), via="hub")
    assert await count(fr, db.PeerHead) == 0


async def test_a_peer_head_that_differs_once_reached_is_a_fork(
    net: Net, trio: tuple[RunningNode, RunningNode, RunningNode]
) -> None:
    fr, br, _ = trio
    # Brazil claims one more entry than France holds, with a head nobody signed
    n = br.n
    now = n.now()
    claim = seal_envelope(
        genesis=n.genesis, sender=n.me, identity=br.keys.identity,
        recipients=[SealTo(fr.me, 1, fr.keys.ka.public_key)],
        content=info("ahead").encode(), created=now, expires=now + 3600,
        dir_seq=n.state.seq + 1, dir_head=os.urandom(32),
    )  # fmt: skip
    seq = n.state.seq
    # The real entry appears at the hub first: whether France's own sync loop reaches it
    # before the claim arrives (the claim is then a fork at once) or after (the claim is
    # ahead, and the sync that reaches the entry judges it), the verdict is one fork.
    # Received before the entry existed, a sync in between would rightly say France is
    # behind the peer (the previous test).
    await net.set_status("KE-EACC", Action.SUSPEND, "review")
    await fr.n.receive(claim, via="hub")
    await fr.n.sync_directory()
    assert fr.n.state.seq == seq + 1
    kinds = [a.kind for a in await fr.n.alerts()]
    assert kinds == ["directory-fork"]
    assert await count(fr, db.PeerHead) == 0
