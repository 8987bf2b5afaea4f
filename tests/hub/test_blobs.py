"""Attachment blobs (``hub.blobs``): streamed upload and download, access, quotas, removal.

Every test runs on SQLite and PostgreSQL (the ``db_url`` parametrization in
``conftest.py``).  The shared ``make_hub`` builds its app without a blob store,
so this module builds its own around the same pieces (``FakeClock``, network,
``Hub`` helpers) with a :class:`BlobStore` in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete as sa_delete
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import blobs, db
from hub.blobs import BlobStore
from hub.routing import Router
from hub.service import HubService
from hub.web import create_app
from protocol import canonical
from protocol.envelope import SealTo, seal_envelope
from protocol.errors import UsageError
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request
from tests.hub.conftest import T0, Applicant, FakeClock, Hub, HubFactory, Reply, make_network
from tests.support.waiting import eventually

NAMES = {
    "FR-PNF": "Parquet national financier",
    "DE-BKA": "Bundeskriminalamt",
    "ES-FCC": "Fiscalia contra la Corrupcion",
    "IT-GDF": "Guardia di Finanza",
}
MIB = 1 << 20


@dataclass
class BlobHub:
    """A running hub with a blob store, and the members the test admitted."""

    hub: Hub
    store: BlobStore
    directory: Path
    seq: dict[tuple[str, str], int]

    async def members(self, *authorities: str) -> list[Applicant]:
        return [await self.hub.admit(a, NAMES[a]) for a in authorities]

    async def put(self, member: Applicant, blob_id: str, data: bytes) -> Reply:
        return await self.hub.as_member(member, "PUT", f"/v1/blobs/{blob_id}", data)

    async def get(self, member: Applicant, blob_id: str) -> Reply:
        return await self.hub.as_member(member, "GET", f"/v1/blobs/{blob_id}")

    def seal(
        self, sender: Applicant, *to: Applicant, blobs: Sequence[str], lifetime: int = 3600
    ) -> bytes:
        recipients = []
        for r in to:
            pair = (str(sender.authority), str(r.authority))
            self.seq[pair] = self.seq.get(pair, 0) + 1
            recipients.append(SealTo(r.authority, self.seq[pair], r.ka.public_key))
        state = self.hub.service.state
        return seal_envelope(
            genesis=self.hub.genesis, sender=sender.authority, identity=sender.identity,
            recipients=recipients, content=b'{"text":"see attachment"}',
            created=self.hub.now(), expires=self.hub.now() + lifetime,
            dir_seq=state.seq, dir_head=state.head, blobs=blobs,
        )  # fmt: skip

    async def files(self) -> list[str]:
        return sorted(os.listdir(self.directory))

    async def rows(self) -> list[str]:
        return sorted(r.id for r in await self.hub.rows(db.Blob))

    async def links(self) -> list[tuple[int, str]]:
        return sorted((r.message, r.blob) for r in await self.hub.rows(db.MessageBlob))


BlobHubFactory = Callable[..., Awaitable[BlobHub]]


@pytest.fixture
async def make_blob_hub(db_url: str, tmp_path: Path) -> AsyncIterator[BlobHubFactory]:
    """Build a hub with a blob store on ``db_url``; keywords go to :class:`BlobStore`."""
    opened: list[tuple[TestClient[web.Request, web.Application], AsyncEngine]] = []

    async def make(**options: Any) -> BlobHub:
        clock = FakeClock(T0)
        genesis, admins, hub_key = make_network(clock)
        engine = db.make_engine(db_url)
        await db.migrate(engine)
        service = HubService(genesis=genesis, hub_key=hub_key, engine=engine, clock=clock)
        await service.start()
        router = Router(service)
        options.setdefault("sweep_interval", 3600)  # real seconds: tests call sweep()
        store = BlobStore(service, tmp_path / "blobs", **options)
        app = create_app(
            service, clock=clock, router=router, blobs=store, burst=10_000, expiry_interval=3600
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        opened.append((client, engine))
        hub = Hub(
            genesis=genesis, admins=admins, hub_key=hub_key, clock=clock, engine=engine,
            service=service, client=client, router=router,
        )  # fmt: skip
        return BlobHub(hub, store, tmp_path / "blobs", {})

    yield make
    for client, engine in opened:
        await client.close()
        await engine.dispose()


@pytest.fixture
async def bh(make_blob_hub: BlobHubFactory) -> BlobHub:
    return await make_blob_hub()


def new_id() -> str:
    return secrets.token_hex(16)


async def _none_left(bh: BlobHub) -> bool:
    """Whether the blob directory is empty (no blob, no part file)."""
    return await bh.files() == []


async def raw_request(bh: BlobHub, head: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send a hand-made request on a raw connection; the status and the problem body."""
    data = await bh.hub.raw_http([head.replace("\n", "\r\n").encode() + b"\r\n" + body])
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), orjson.loads(rest.partition(b"\r\n\r\n")[2])


# --- upload, reference, fetch ---------------------------------------------------------------


async def test_recipient_fetches_the_exact_bytes_and_a_third_member_may_not(bh: BlobHub) -> None:
    fr, de, es, it = await bh.members("FR-PNF", "DE-BKA", "ES-FCC", "IT-GDF")
    blob_id, data = new_id(), secrets.token_bytes(300_000)
    stored = (await bh.put(fr, blob_id, data)).ok(201)
    assert stored == {
        "id": blob_id,
        "size": len(data),
        "sha256": canonical.b64e(hashlib.sha256(data).digest()),
    }
    assert await bh.files() == [blob_id]
    (await bh.hub.send(fr, bh.seal(fr, de, es, blobs=[blob_id]))).ok(201)
    assert len(await bh.links()) == 1
    for recipient in (de, es):
        got = await bh.get(recipient, blob_id)
        assert got.status == 200
        assert got.body == data
        assert got.content_type == "application/octet-stream"
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert got.headers["Repr-Digest"] == f"sha-256=:{digest}:"
    # A third member, the owner itself (not a recipient), an unknown and a malformed id:
    # the same 404, which reveals nothing about the blob's existence.
    details = set()
    for member, target in ((it, blob_id), (fr, blob_id), (de, new_id()), (de, "X" * 32)):
        problem = (await bh.get(member, target)).problem(404, "not-found")
        details.add(problem["detail"])
    assert details == {"no such blob"}


async def test_download_needs_authentication(bh: BlobHub) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"ciphertext")).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[blob_id]))).ok(201)
    (await bh.hub.get(f"/v1/blobs/{blob_id}")).problem(401, "unauthorized")


async def test_envelope_may_reference_only_the_senders_complete_blobs(bh: BlobHub) -> None:
    fr, de, es = await bh.members("FR-PNF", "DE-BKA", "ES-FCC")
    mine, theirs = new_id(), new_id()
    (await bh.put(fr, theirs, b"FR's ciphertext")).ok(201)
    (await bh.put(de, mine, b"DE's ciphertext")).ok(201)
    for listed in ([theirs], [mine, theirs], [new_id()]):
        reply = await bh.hub.send(de, bh.seal(de, es, blobs=listed))
        reply.problem(409, "state-conflict")
    assert await bh.hub.rows(db.Message) == []
    assert await bh.links() == []
    # es cannot get FR's blob by naming it in an envelope of its own either
    (await bh.get(es, theirs)).problem(404, "not-found")
    (await bh.hub.send(de, bh.seal(de, es, blobs=[mine]))).ok(201)
    assert (await bh.get(es, mine)).body == b"DE's ciphertext"


async def test_exact_resubmission_of_an_envelope_is_still_idempotent(bh: BlobHub) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"ciphertext")).ok(201)
    envelope = bh.seal(fr, de, blobs=[blob_id])
    first = await bh.hub.send(fr, envelope)
    assert first.status == 201
    again = await bh.hub.send(fr, envelope)
    assert (again.status, again.body) == (200, first.body)
    assert len(await bh.links()) == 1


async def test_a_blob_removed_before_the_commit_fails_only_its_envelope(
    bh: BlobHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The foreign key refuses the batch; committed one by one, only the envelope
    that lists the removed blob fails (503, retryable), and nothing of it is kept."""
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"ciphertext")).ok(201)
    router = bh.hub.router
    gate, batches = asyncio.Event(), []
    commit = router._commit

    async def gated(batch: Any) -> None:
        batches.append(len(batch))
        await gate.wait()
        await commit(batch)

    async def queued(count: int) -> None:
        await eventually(lambda: batches and router._queue.qsize() >= count, what=f"{count} queued")

    monkeypatch.setattr(router, "_commit", gated)
    blocker = asyncio.create_task(bh.hub.send(fr, bh.seal(fr, de, blobs=[])))
    await queued(0)
    listing, plain = bh.seal(fr, de, blobs=[blob_id]), bh.seal(fr, de, blobs=[])
    sends = []
    for i, env in enumerate((listing, plain)):
        sends.append(asyncio.create_task(bh.hub.send(fr, env)))
        await queued(i + 1)
    async with bh.hub.engine.begin() as conn:  # removed after the submission's check
        await conn.execute(sa_delete(db.Blob).where(db.Blob.id == blob_id))
    gate.set()
    (await blocker).ok(201)
    refused, accepted = await asyncio.gather(*sends)
    assert batches == [1, 2]
    refused.problem(503, "storage")
    accepted.ok(201)
    stored = [m.data for m in await bh.hub.rows(db.Message)]
    assert (len(stored), plain in stored, listing in stored) == (2, True, False)
    assert len(await bh.hub.rows(db.MailboxItem)) == 2  # the blocker's and plain's
    assert router.depth()["DE-BKA"][0] == 2  # the refused one's reservation was released
    assert await bh.links() == []
    # Retried, the envelope is refused for what it is: its blob is gone.
    (await bh.hub.send(fr, listing)).problem(409, "state-conflict")


# --- upload refusals --------------------------------------------------------------------------


async def test_resubmitting_a_blob_id_is_a_conflict(bh: BlobHub) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"original")).ok(201)
    (await bh.put(fr, blob_id, b"replacement")).problem(409, "state-conflict")
    (await bh.put(de, blob_id, b"someone else's")).problem(409, "state-conflict")
    assert await bh.files() == [blob_id]
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[blob_id]))).ok(201)
    assert (await bh.get(de, blob_id)).body == b"original"


async def test_oversize_content_length_is_refused_before_the_body_is_read(
    make_blob_hub: BlobHubFactory,
) -> None:
    bh = await make_blob_hub(max_blob=MIB)
    (fr,) = await bh.members("FR-PNF")
    blob_id = new_id()
    header = bh.hub.auth(fr.transport, "PUT", f"/v1/blobs/{blob_id}", b"x")
    # Claims more than the cap and sends nothing: the answer comes without waiting for a body.
    status, problem = await raw_request(
        bh,
        f"PUT /v1/blobs/{blob_id} HTTP/1.1\nHost: hub\n{HEADER}: {header}\n"
        f"Content-Length: {MIB + 1}\n",
    )
    assert (status, problem["type"].rsplit("/", 1)[1]) == (413, "payload-too-large")
    assert await bh.files() == []


async def test_default_cap_is_2_gib(bh: BlobHub) -> None:
    assert bh.store.max_blob == 2 * 1024 * MIB
    status, _ = await raw_request(
        bh, f"PUT /v1/blobs/{new_id()} HTTP/1.1\nHost: hub\nContent-Length: {2 * 1024 * MIB + 1}\n"
    )
    assert status == 413


async def test_upload_needs_a_content_length(bh: BlobHub) -> None:
    (fr,) = await bh.members("FR-PNF")
    blob_id = new_id()
    header = bh.hub.auth(fr.transport, "PUT", f"/v1/blobs/{blob_id}", b"abc")
    status, problem = await raw_request(
        bh,
        f"PUT /v1/blobs/{blob_id} HTTP/1.1\nHost: hub\n{HEADER}: {header}\n"
        "Transfer-Encoding: chunked\n",
        b"3\r\nabc\r\n0\r\n\r\n",
    )
    assert (status, problem["type"].rsplit("/", 1)[1]) == (411, "length-required")
    assert await bh.files() == []


async def test_bad_blob_id_is_refused(bh: BlobHub) -> None:
    (fr,) = await bh.members("FR-PNF")
    for bad in ("A" * 32, "0" * 31, "0" * 33, "g" * 32):
        (await bh.put(fr, bad, b"x")).problem(400, "invalid-identifier")
    assert await bh.files() == []


async def test_quota_per_authority(make_blob_hub: BlobHubFactory) -> None:
    bh = await make_blob_hub(quota_bytes=MIB)
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    first = new_id()
    (await bh.put(fr, first, bytes(600 * 1024))).ok(201)
    (await bh.put(fr, new_id(), bytes(600 * 1024))).problem(507, "blob-quota-exceeded")
    (await bh.put(de, new_id(), bytes(600 * 1024))).ok(201)  # a quota per authority
    assert len(await bh.files()) == 2
    # Once the first blob is gone, the room is back.
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[first]))).ok(201)
    env = (await bh.hub.pull(de))["items"][0]["data"]
    (await bh.hub.ack(de, [bh.hub.receipt(de, canonical.b64d(env, what="e"))])).ok()
    (await bh.put(fr, new_id(), bytes(600 * 1024))).ok(201)


async def test_bad_signature_over_the_streamed_body_is_refused_and_nothing_is_kept(
    bh: BlobHub,
) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    target = f"/v1/blobs/{blob_id}"
    data = secrets.token_bytes(1_000_000)  # aiohttp warns about larger raw bodies
    # Signed over other bytes: the last byte flipped (never equal to the real one).
    forged = bh.hub.auth(fr.transport, "PUT", target, data[:-1] + bytes([data[-1] ^ 1]))
    (await bh.hub.request("PUT", target, data, header=forged)).problem(401, "unauthorized")
    wrong_key = bh.hub.auth(de.identity, "PUT", target, data)  # an identity key, not transport
    (await bh.hub.request("PUT", target, data, header=wrong_key)).problem(401, "unauthorized")
    stale = bh.hub.auth(fr.transport, "PUT", target, data, created=bh.hub.now() - 3600)
    (await bh.hub.request("PUT", target, data, header=stale)).problem(401, "stale-request")
    (await bh.hub.request("PUT", target, data)).problem(401, "unauthorized")
    assert await bh.files() == []
    assert await bh.rows() == []
    (await bh.put(fr, blob_id, data)).ok(201)  # the id was not used up


async def test_replayed_upload_is_refused(bh: BlobHub) -> None:
    (fr,) = await bh.members("FR-PNF")
    blob_id = new_id()
    target = f"/v1/blobs/{blob_id}"
    header = bh.hub.auth(fr.transport, "PUT", target, b"data")
    (await bh.hub.request("PUT", target, b"data", header=header)).ok(201)
    reply = await bh.hub.request("PUT", target, b"data", header=header)
    assert reply.status == 409
    assert await bh.files() == [blob_id]


async def test_slow_upload_times_out_and_leaves_nothing(make_blob_hub: BlobHubFactory) -> None:
    bh = await make_blob_hub(read_timeout=0.3)
    (fr,) = await bh.members("FR-PNF")
    blob_id = new_id()
    body = bytes(1000)
    header = bh.hub.auth(fr.transport, "PUT", f"/v1/blobs/{blob_id}", body)
    status, problem = await raw_request(
        bh,
        f"PUT /v1/blobs/{blob_id} HTTP/1.1\nHost: hub\n{HEADER}: {header}\n"
        f"Content-Length: {len(body)}\n",
        body[:10],  # then nothing more
    )
    assert (status, problem["type"].rsplit("/", 1)[1]) == (408, "upload-timeout")
    assert await bh.files() == []
    assert await bh.rows() == []


async def test_client_that_disconnects_mid_upload_leaves_nothing(bh: BlobHub) -> None:
    (fr,) = await bh.members("FR-PNF")
    blob_id = new_id()
    body = bytes(10 * MIB)
    header = bh.hub.auth(fr.transport, "PUT", f"/v1/blobs/{blob_id}", body)
    assert bh.hub.client.port is not None
    _reader, writer = await asyncio.open_connection(bh.hub.client.host, bh.hub.client.port)
    head = (
        f"PUT /v1/blobs/{blob_id} HTTP/1.1\r\nHost: hub\r\n{HEADER}: {header}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body[: 2 * MIB])
    await writer.drain()
    await eventually(bh.files, what="the part file")
    writer.close()
    await writer.wait_closed()
    await eventually(lambda: _none_left(bh), what="the part file removed")
    assert await bh.rows() == []


# --- removal ---------------------------------------------------------------------------------


async def receive_and_ack(bh: BlobHub, member: Applicant) -> None:
    """Pull ``member``'s mailbox and receipt every envelope in it."""
    items = (await bh.hub.pull(member))["items"]
    receipts = [
        bh.hub.receipt(member, canonical.b64d(i["data"], what="e"))
        for i in items
        if i["kind"] == "envelope"
    ]
    reply = (await bh.hub.ack(member, receipts)).ok()
    assert len(reply["released"]) == len(receipts)


async def test_blob_goes_once_every_recipient_has_receipted(bh: BlobHub) -> None:
    fr, de, es = await bh.members("FR-PNF", "DE-BKA", "ES-FCC")
    blob_id, data = new_id(), secrets.token_bytes(10_000)
    (await bh.put(fr, blob_id, data)).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, es, blobs=[blob_id]))).ok(201)
    await receive_and_ack(bh, de)
    assert await bh.files() == [blob_id]  # es still waits
    assert (await bh.get(de, blob_id)).body == data  # delivered to de, may fetch again
    assert (await bh.get(es, blob_id)).body == data
    await receive_and_ack(bh, es)
    assert await bh.files() == []
    assert await bh.rows() == []
    assert await bh.links() == []
    for member in (de, es):
        (await bh.get(member, blob_id)).problem(404, "not-found")
    (await bh.put(fr, blob_id, b"the id may be used again")).ok(201)


async def test_blob_listed_by_two_envelopes_stays_until_both_are_done(bh: BlobHub) -> None:
    fr, de, es = await bh.members("FR-PNF", "DE-BKA", "ES-FCC")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"shared")).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[blob_id]))).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, es, blobs=[blob_id]))).ok(201)
    await receive_and_ack(bh, de)
    assert await bh.rows() == [blob_id]
    assert await bh.store.sweep() == 0  # the sweep agrees: es still waits
    (await bh.get(de, blob_id)).ok  # noqa: B018 - de's copy was delivered: still readable
    assert (await bh.get(de, blob_id)).body == b"shared"
    await receive_and_ack(bh, es)
    assert await bh.rows() == []
    assert await bh.files() == []


async def test_blob_goes_at_expiry(bh: BlobHub) -> None:
    fr, de, es = await bh.members("FR-PNF", "DE-BKA", "ES-FCC")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"ciphertext")).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, es, blobs=[blob_id], lifetime=600))).ok(201)
    await receive_and_ack(bh, de)
    bh.hub.clock.advance(601)
    assert await bh.hub.router.expire() == 1  # es's copy
    assert await bh.files() == []
    assert await bh.rows() == []
    (await bh.get(de, blob_id)).problem(404, "not-found")


async def test_sweep_removes_what_the_release_hook_missed(bh: BlobHub) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"ciphertext")).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[blob_id]))).ok(201)
    bh.hub.router.on_release = None  # e.g. a crash between the receipt and the removal
    await receive_and_ack(bh, de)
    assert await bh.rows() == [blob_id]
    assert await bh.store.sweep() == 1
    assert await bh.rows() == []
    assert await bh.files() == []


async def test_unreferenced_blob_goes_after_the_grace_period(
    make_blob_hub: BlobHubFactory,
) -> None:
    bh = await make_blob_hub(grace=3600)
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    idle, used = new_id(), new_id()
    (await bh.put(fr, idle, b"never referenced")).ok(201)
    (await bh.put(fr, used, b"referenced")).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[used], lifetime=86400))).ok(201)
    bh.hub.clock.advance(3599)
    assert await bh.store.sweep() == 0
    bh.hub.clock.advance(2)
    assert await bh.store.sweep() == 1
    assert await bh.rows() == [used]  # de's copy still waits
    assert await bh.files() == [used]


async def test_sweep_removes_orphan_and_stale_part_files(bh: BlobHub) -> None:
    (fr,) = await bh.members("FR-PNF")
    kept = new_id()
    (await bh.put(fr, kept, b"a real blob")).ok(201)
    orphan, part, fresh = new_id(), f"{new_id()}.{secrets.token_hex(8)}.part", new_id()
    for name in (orphan, part, fresh, "README"):
        (bh.directory / name).write_bytes(b"left over")
    old = time.time() - 2 * 3600
    for name in (orphan, part, kept, "README"):
        os.utime(bh.directory / name, (old, old))
    await bh.store.sweep()
    # A file without a row and a part file nobody writes go once old; a young one (an
    # upload committing in another process) and files the hub does not name stay.
    assert await bh.files() == sorted([kept, fresh, "README"])


async def test_blob_store_needs_the_router(bh: BlobHub) -> None:
    with pytest.raises(UsageError):
        create_app(bh.hub.service, clock=bh.hub.clock, blobs=bh.store)


# --- constant memory ------------------------------------------------------------------------


@pytest.mark.slow
async def test_64_mib_blob_streams_with_constant_memory(bh: BlobHub, tmp_path: Path) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    target = f"/v1/blobs/{blob_id}"
    source = tmp_path / "upload.bin"
    digest = hashlib.sha256()
    with source.open("wb") as f:
        for _ in range(64):
            chunk = secrets.token_bytes(MIB)
            digest.update(chunk)
            f.write(chunk)
    expected = digest.digest()
    client = bh.hub.client

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        header = sign_request(
            key=fr.transport, network=bh.hub.genesis.digest, audience=HUB_AUDIENCE,
            method="PUT", target=target, body=b"", body_digest=expected, created=bh.hub.now(),
        )  # fmt: skip
        with source.open("rb") as f:
            async with client.put(target, data=f, headers={HEADER: header}) as resp:
                assert resp.status == 201, await resp.read()
                assert (await resp.json())["sha256"] == canonical.b64e(expected)
        upload_peak = tracemalloc.get_traced_memory()[1] - base

        (await bh.hub.send(fr, bh.seal(fr, de, blobs=[blob_id]))).ok(201)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        got, size = hashlib.sha256(), 0
        header = bh.hub.auth(de.transport, "GET", target)
        async with client.get(target, headers={HEADER: header}) as resp:
            assert resp.status == 200
            assert resp.content_length == 64 * MIB
            async for chunk in resp.content.iter_chunked(256 * 1024):
                got.update(chunk)
                size += len(chunk)
        download_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert (size, got.digest()) == (64 * MIB, expected)
    assert (bh.directory / blob_id).stat().st_size == 64 * MIB
    # Client and server share this process: neither side held the blob.
    assert upload_peak < 16 * MIB, upload_peak
    assert download_peak < 16 * MIB, download_peak


# --- slow clients, in-flight quota, storage failures ----------------------------------------------


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), timeout=10)
    return int(head.split()[1]), orjson.loads(body)


async def open_upload(
    bh: BlobHub, member: Applicant, blob_id: str, body: bytes, first: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Start an upload on a raw connection and send only the first ``first`` body bytes."""
    header = bh.hub.auth(member.transport, "PUT", f"/v1/blobs/{blob_id}", body)
    assert bh.hub.client.port is not None
    reader, writer = await asyncio.open_connection(bh.hub.client.host, bh.hub.client.port)
    head = (
        f"PUT /v1/blobs/{blob_id} HTTP/1.1\r\nHost: hub\r\n{HEADER}: {header}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body[:first])
    await writer.drain()
    return reader, writer


@pytest.mark.slow
async def test_trickling_upload_is_bounded_by_the_minimum_rate(
    make_blob_hub: BlobHubFactory,
) -> None:
    bh = await make_blob_hub(read_timeout=1.0, min_rate=100)
    (fr,) = await bh.members("FR-PNF")
    body = bytes(100)  # must arrive within 1.0 + 100 / 100 = 2 s
    reader, writer = await open_upload(bh, fr, new_id(), body, 1)
    sent = [1]

    async def trickle() -> None:
        # A byte every 0.05 s, 20 times faster than the read timeout (so no single
        # read is late), yet 5 s for the whole body: only the rate bound can cut it.
        for i in range(1, len(body)):
            await asyncio.sleep(0.05)  # the scenario: a client sending 20 bytes/s
            writer.write(body[i : i + 1])
            await writer.drain()
            sent[0] += 1

    task = asyncio.create_task(trickle())
    try:
        status, problem = await read_reply(reader)
        still_sending = not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await task
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert (status, problem["type"].rsplit("/", 1)[1]) == (408, "upload-timeout")
    assert still_sending, "the hub answered only after the whole body arrived"
    assert sent[0] < len(body)
    assert await bh.files() == []


async def test_quota_counts_uploads_in_flight(make_blob_hub: BlobHubFactory) -> None:
    bh = await make_blob_hub(quota_bytes=MIB)
    (fr,) = await bh.members("FR-PNF")
    body = bytes(600 * 1024)
    _reader, writer = await open_upload(bh, fr, new_id(), body, 1000)
    await eventually(bh.files, what="the hub streaming the upload")
    (await bh.put(fr, new_id(), body)).problem(507, "blob-quota-exceeded")
    writer.close()
    await writer.wait_closed()
    # The abandoned upload releases its reservation.
    await eventually(lambda: _none_left(bh), what="the abandoned part file removed")
    (await bh.put(fr, new_id(), body)).ok(201)


async def test_full_disk_is_refused_before_reading(
    bh: BlobHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fr,) = await bh.members("FR-PNF")
    full = SimpleNamespace(total=MIB, used=MIB - 100, free=100)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: full)
    (await bh.put(fr, new_id(), bytes(101))).problem(507, "blob-quota-exceeded")
    assert await bh.files() == []


async def test_storage_failure_while_writing_keeps_nothing(
    bh: BlobHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fr,) = await bh.members("FR-PNF")

    def no_space(_file: Any, _tail: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs, "finish_part", no_space)
    (await bh.put(fr, new_id(), b"ciphertext")).problem(503, "storage")
    monkeypatch.setattr(blobs, "create_part", lambda _path, **_kw: no_space(None, b""))
    (await bh.put(fr, new_id(), b"ciphertext")).problem(503, "storage")
    assert await bh.files() == []
    assert await bh.rows() == []


async def test_damaged_or_missing_file_is_not_served(bh: BlobHub) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"ciphertext")).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[blob_id]))).ok(201)
    (bh.directory / blob_id).write_bytes(b"cipher")
    (await bh.get(de, blob_id)).problem(503, "storage")
    (bh.directory / blob_id).unlink()
    (await bh.get(de, blob_id)).problem(404, "not-found")


async def test_failed_removal_does_not_fail_the_receipt(
    bh: BlobHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, de = await bh.members("FR-PNF", "DE-BKA")
    blob_id = new_id()
    (await bh.put(fr, blob_id, b"ciphertext")).ok(201)
    (await bh.hub.send(fr, bh.seal(fr, de, blobs=[blob_id]))).ok(201)

    async def broken(_ids: Any) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(bh.store, "_remove_all", broken)
    await receive_and_ack(bh, de)  # released all the same
    assert await bh.store.sweep() == 0  # still broken: logged, retried next round
    monkeypatch.undo()
    assert await bh.store.sweep() == 1
    assert await bh.files() == []


def test_limits_must_be_positive(tmp_path: Path) -> None:
    for bad in ({"max_blob": 0}, {"quota_bytes": 0}, {"read_timeout": 0}, {"min_rate": 0}):
        with pytest.raises(UsageError):
            BlobStore(None, tmp_path, **bad)  # type: ignore[arg-type]


async def test_hub_without_a_blob_store_refuses_envelopes_listing_blobs(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub()
    fr, de = await hub.admit("FR-PNF", NAMES["FR-PNF"]), await hub.admit("DE-BKA", NAMES["DE-BKA"])
    state = hub.service.state
    envelope = seal_envelope(
        genesis=hub.genesis, sender=fr.authority, identity=fr.identity,
        recipients=[SealTo(de.authority, 1, de.ka.public_key)], content=b"{}",
        created=hub.now(), expires=hub.now() + 60, dir_seq=state.seq, dir_head=state.head,
        blobs=[new_id()],
    )  # fmt: skip
    (await hub.send(fr, envelope)).problem(409, "state-conflict")
    (await hub.as_member(de, "GET", f"/v1/blobs/{new_id()}")).problem(404, "not-found")
