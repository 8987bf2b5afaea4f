"""The member side of :class:`globe_io.hubclient.HubClient`, against a real hub over loopback HTTP.

Every test runs on SQLite and PostgreSQL (the ``db_url`` parametrization in
``conftest.py``).  The hub is built as in ``test_blobs.py``: the ``conftest``
pieces (``FakeClock``, network, :class:`Hub` helpers) plus a
:class:`BlobStore` in ``tmp_path``, served by :func:`hub.web.create_app`.  Each
member talks to it through its own :class:`HubClient`, signing with its
transport key on the hub's fake clock.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from globe_io.errors import Conflict, NotFound
from globe_io.hubclient import HubClient, MailboxItem, RemoteError
from hub import db
from hub.blobs import BlobStore
from hub.routing import Router
from hub.service import HubService
from hub.web import create_app
from protocol import canonical
from protocol.envelope import SealTo, envelope_hash, parse_envelope, seal_envelope
from protocol.errors import (
    InvalidIdentifier,
    MalformedError,
    SizeLimitExceeded,
    StorageError,
    TransportError,
    UsageError,
)
from protocol.keys import SigningKey
from protocol.receipts import Evidence, EvidenceKind
from tests.hub.conftest import T0, Applicant, FakeClock, Hub, make_network

NAMES = {
    "FR-PNF": "Parquet national financier",
    "DE-BKA": "Bundeskriminalamt",
    "ES-FCC": "Fiscalia contra la Corrupcion",
}
MIB = 1 << 20


@dataclass
class Net:
    """A running hub with a blob store, and a way to get a client per member."""

    hub: Hub
    store: BlobStore
    tmp: Path
    #: Response headers to override on blob downloads (set by a test; ``"chunked"``
    #: drops the Content-Length and sends the body in chunked encoding).
    headers: dict[str, str | None] = field(default_factory=dict)
    seq: dict[tuple[str, str], int] = field(default_factory=dict)
    clients: list[HubClient] = field(default_factory=list)

    async def members(self, *authorities: str) -> list[Applicant]:
        return [await self.hub.admit(a, NAMES[a]) for a in authorities]

    def client(self, member: Applicant | None) -> HubClient:
        base = str(self.hub.client.make_url("")).rstrip("/")
        client = HubClient(
            base,
            network=self.hub.genesis.digest,
            key=member.transport if member is not None else None,
            clock=self.hub.clock,
        )
        self.clients.append(client)
        return client

    def seal(self, sender: Applicant, *to: Applicant, blobs: Sequence[str] = ()) -> bytes:
        recipients = []
        for r in to:
            pair = (str(sender.authority), str(r.authority))
            self.seq[pair] = self.seq.get(pair, 0) + 1
            recipients.append(SealTo(r.authority, self.seq[pair], r.ka.public_key))
        state = self.hub.service.state
        return seal_envelope(
            genesis=self.hub.genesis, sender=sender.authority, identity=sender.identity,
            recipients=recipients, content=b'{"text":"see attachment"}',
            created=self.hub.now(), expires=self.hub.now() + 3600,
            dir_seq=state.seq, dir_head=state.head, blobs=blobs,
        )  # fmt: skip

    def leftovers(self, out: Path) -> list[str]:
        """Files in ``out``'s directory named after it (the file itself or a part file)."""
        return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name))


@pytest.fixture
async def net(db_url: str, tmp_path: Path) -> AsyncIterator[Net]:
    opened: list[tuple[TestClient[web.Request, web.Application], AsyncEngine]] = []
    clock = FakeClock(T0)
    genesis, admins, hub_key = make_network(clock)
    engine = db.make_engine(db_url)
    await db.migrate(engine)
    service = HubService(genesis=genesis, hub_key=hub_key, engine=engine, clock=clock)
    await service.start()
    router = Router(service)
    store = BlobStore(service, tmp_path / "blobs", sweep_interval=3600)
    app = create_app(
        service, clock=clock, router=router, blobs=store, burst=10_000, expiry_interval=3600
    )
    overrides: dict[str, str | None] = {}

    async def override(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/v1/blobs/") and response.status == 200:
            for name, value in overrides.items():
                if name == "chunked":  # as a proxy re-chunking the body would send it
                    # The headers are prepared already: switch the writer itself.
                    del response.headers["Content-Length"]
                    response.headers["Transfer-Encoding"] = "chunked"
                    writer = response._payload_writer
                    assert writer is not None
                    writer.enable_chunking()
                elif value is None:
                    response.headers.pop(name, None)
                else:
                    response.headers[name] = value

    app.on_response_prepare.append(override)
    client = TestClient(TestServer(app))
    await client.start_server()
    opened.append((client, engine))
    hub = Hub(
        genesis=genesis, admins=admins, hub_key=hub_key, clock=clock, engine=engine,
        service=service, client=client, router=router,
    )  # fmt: skip
    state = Net(hub, store, tmp_path, overrides)
    try:
        yield state
    finally:
        for c in state.clients:
            await c.close()
        await client.close()
        await engine.dispose()


def random_file(path: Path, size: int) -> bytes:
    """Write ``size`` random bytes to ``path``; return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, MIB))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.digest()


def new_id() -> str:
    return secrets.token_hex(16)


# --- messages, mailbox, acknowledgements ------------------------------------------------------


async def test_submit_then_resubmit_returns_identical_evidence(net: Net) -> None:
    fr, de = await net.members("FR-PNF", "DE-BKA")
    env = net.seal(fr, de)
    sender = net.client(fr)

    status, evidence = await sender.submit_message(env)
    assert status == 201
    decoded = Evidence.decode(evidence, net.hub.genesis)
    assert decoded.kind is EvidenceKind.ACCEPTED
    assert decoded.envelope_hash == envelope_hash(env)
    assert decoded.sender == fr.authority
    assert decoded.recipients == (de.authority,)

    net.hub.clock.advance(30)
    again_status, again = await sender.submit_message(env)
    assert (again_status, again) == (200, evidence)
    assert len(await net.hub.rows(db.Message)) == 1


async def test_submit_errors_are_typed(net: Net) -> None:
    fr, de = await net.members("FR-PNF", "DE-BKA")
    with pytest.raises(UsageError, match="needs a signing key"):
        await net.client(None).submit_message(net.seal(fr, de))
    # An envelope signed by FR but submitted by DE: the hub refuses it as malformed.
    with pytest.raises(MalformedError):
        await net.client(de).submit_message(net.seal(fr, de))
    # A blob that does not exist: 409 state-conflict, nothing stored.
    with pytest.raises(Conflict):
        await net.client(fr).submit_message(net.seal(fr, de, blobs=[new_id()]))
    assert await net.hub.rows(db.Message) == []


async def test_mailbox_delivers_the_envelope_and_ack_releases_it(net: Net) -> None:
    fr, de = await net.members("FR-PNF", "DE-BKA")
    env = net.seal(fr, de)
    sender, recipient = net.client(fr), net.client(de)
    assert (await sender.submit_message(env))[0] == 201

    items, cursor = await recipient.mailbox()
    assert len(items) == 1
    (item,) = items
    assert item == MailboxItem(item.cursor, "envelope", env)
    assert cursor == item.cursor
    assert await recipient.mailbox(after=cursor) == ([], cursor)

    receipt = net.hub.receipt(de, env)
    result = await recipient.ack(receipts=[receipt])
    assert result == {
        "released": [str(parse_envelope(env).header.message_id)],
        "refused": [],
        "notices": 0,
    }
    items, _ = await recipient.mailbox()
    assert [i for i in items if i.kind == "envelope"] == []

    # The sender gets the receipt (with the hub's delivered evidence) as a notice.
    notices, next_cursor = await sender.mailbox()
    assert [n.kind for n in notices] == ["receipt"]
    notice = orjson.loads(notices[0].data)
    assert canonical.b64d(notice["receipt"], what="receipt") == receipt
    delivered = Evidence.decode(canonical.b64d(notice["evidence"], what="e"), net.hub.genesis)
    assert delivered.kind is EvidenceKind.DELIVERED
    assert next_cursor == notices[0].cursor
    assert await sender.ack(notices=[notices[0].cursor]) == {
        "released": [],
        "refused": [],
        "notices": 1,
    }
    assert (await sender.mailbox())[0] == []

    # A receipt for an envelope no longer waiting is refused, not an error.
    again = await recipient.ack(receipts=[receipt])
    assert again["released"] == []
    assert len(again["refused"]) == 1


async def test_mailbox_pages_by_cursor(net: Net) -> None:
    fr, de = await net.members("FR-PNF", "DE-BKA")
    sender, recipient = net.client(fr), net.client(de)
    envelopes = [net.seal(fr, de) for _ in range(3)]
    for env in envelopes:
        assert (await sender.submit_message(env))[0] == 201
    first, cursor = await recipient.mailbox(limit=2)
    assert [i.data for i in first] == envelopes[:2]
    assert cursor == first[-1].cursor
    rest, end = await recipient.mailbox(after=cursor, limit=2)
    assert [i.data for i in rest] == envelopes[2:]
    assert end == rest[-1].cursor > cursor
    assert await recipient.mailbox(after=end) == ([], end)


# --- blobs -------------------------------------------------------------------------------------


async def test_blob_round_trip_of_a_multi_megabyte_file(net: Net) -> None:
    fr, de = await net.members("FR-PNF", "DE-BKA")
    size = 5 * MIB + 12345
    source = net.tmp / "source.bin"
    digest = random_file(source, size)
    blob_id = new_id()
    sent: list[tuple[int, int]] = []

    answer = await net.client(fr).put_blob(
        blob_id, source, progress=lambda d, t: sent.append((d, t))
    )
    assert answer == {"id": blob_id, "size": size, "sha256": canonical.b64e(digest)}
    assert sent[0] == (0, size)
    assert sent[-1] == (size, size)
    assert [d for d, _ in sent] == sorted(d for d, _ in sent)
    assert (net.store.directory / blob_id).stat().st_size == size

    assert (await net.client(fr).submit_message(net.seal(fr, de, blobs=[blob_id])))[0] == 201
    out = net.tmp / "received.bin"
    got: list[tuple[int, int]] = []
    result = await net.client(de).get_blob(
        blob_id, out, max_size=size, progress=lambda d, t: got.append((d, t))
    )
    assert result == digest
    assert hashlib.sha256(out.read_bytes()).digest() == digest
    assert out.read_bytes() == source.read_bytes()
    assert net.leftovers(out) == ["received.bin"]
    assert got[0] == (0, size)
    assert got[-1] == (size, size)
    assert out.stat().st_mode & 0o777 == 0o600


async def test_empty_blob_round_trip(net: Net) -> None:
    fr, de = await net.members("FR-PNF", "DE-BKA")
    source = net.tmp / "empty"
    source.write_bytes(b"")
    blob_id = new_id()
    answer = await net.client(fr).put_blob(blob_id, source)
    assert answer["size"] == 0
    await net.client(fr).submit_message(net.seal(fr, de, blobs=[blob_id]))
    out = net.tmp / "empty.out"
    assert await net.client(de).get_blob(blob_id, out, max_size=0) == hashlib.sha256().digest()
    assert out.read_bytes() == b""


@pytest.mark.slow
async def test_blob_transfers_hold_constant_memory(net: Net) -> None:
    fr, de = await net.members("FR-PNF", "DE-BKA")
    size = 48 * MIB
    source = net.tmp / "big.bin"
    digest = random_file(source, size)
    blob_id = new_id()
    out = net.tmp / "big.out"
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        await net.client(fr).put_blob(blob_id, source)
        upload_peak = tracemalloc.get_traced_memory()[1] - base
        await net.client(fr).submit_message(net.seal(fr, de, blobs=[blob_id]))
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert await net.client(de).get_blob(blob_id, out, max_size=size) == digest
        download_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # Client and hub share this process: neither side held the blob.
    assert upload_peak < 16 * MIB, upload_peak
    assert download_peak < 16 * MIB, download_peak


async def uploaded(net: Net, size: int = 3 * MIB) -> tuple[Applicant, str, bytes]:
    """A blob of ``size`` random bytes from FR, listed in an envelope to DE; (DE, id, digest)."""
    fr, de = await net.members("FR-PNF", "DE-BKA")
    source = net.tmp / "source.bin"
    digest = random_file(source, size)
    blob_id = new_id()
    await net.client(fr).put_blob(blob_id, source)
    await net.client(fr).submit_message(net.seal(fr, de, blobs=[blob_id]))
    return de, blob_id, digest


async def test_tampered_blob_on_the_hub_is_refused_and_leaves_no_file(net: Net) -> None:
    de, blob_id, _digest = await uploaded(net)
    stored = net.store.directory / blob_id
    with stored.open("r+b") as f:  # same size, one byte changed: the recorded digest is off
        f.seek(2 * MIB)
        byte = f.read(1)
        f.seek(2 * MIB)
        f.write(bytes([byte[0] ^ 1]))
    out = net.tmp / "out.bin"
    with pytest.raises(MalformedError, match="Repr-Digest"):
        await net.client(de).get_blob(blob_id, out, max_size=4 * MIB)
    assert net.leftovers(out) == []


@pytest.mark.parametrize(
    "value",
    [
        f"sha-256=:{canonical.b64e(b'x' * 32)}:",  # well-formed, wrong digest (base64url!)
        "sha-256=:" + "A" * 43 + "=:",  # well-formed, wrong digest
        "sha-512=:" + "A" * 86 + "==:",  # no sha-256 member
        "sha-256=" + "A" * 43 + "=",  # not a byte sequence
        "sha-256=:AAAA:",  # not 32 bytes
        None,  # absent
    ],
)
async def test_wrong_or_missing_repr_digest_is_refused(net: Net, value: str | None) -> None:
    de, blob_id, _digest = await uploaded(net, 100_000)
    net.headers["Repr-Digest"] = value
    out = net.tmp / "out.bin"
    with pytest.raises(MalformedError):
        await net.client(de).get_blob(blob_id, out, max_size=MIB)
    assert net.leftovers(out) == []


async def test_repr_digest_with_several_algorithms_is_accepted(net: Net) -> None:
    de, blob_id, digest = await uploaded(net, 100_000)
    b64 = base64.b64encode(digest).decode()
    net.headers["Repr-Digest"] = f"sha-512=:{'A' * 86}==:, sha-256=:{b64}:"
    out = net.tmp / "out.bin"
    assert await net.client(de).get_blob(blob_id, out, max_size=MIB) == digest


async def test_blob_over_max_size_is_refused_and_leaves_no_file(net: Net) -> None:
    de, blob_id, digest = await uploaded(net, 2 * MIB)
    out = net.tmp / "out.bin"
    with pytest.raises(SizeLimitExceeded):
        await net.client(de).get_blob(blob_id, out, max_size=2 * MIB - 1)
    assert net.leftovers(out) == []
    # Without a Content-Length (a proxy re-chunking the body) the cap holds while streaming.
    net.headers["chunked"] = "yes"
    got: list[tuple[int, int]] = []
    with pytest.raises(SizeLimitExceeded):
        await net.client(de).get_blob(
            blob_id, out, max_size=MIB + 1, progress=lambda d, t: got.append((d, t))
        )
    assert net.leftovers(out) == []
    assert got
    assert all(t == 0 for _, t in got)
    assert got[-1][0] <= MIB + 1
    # ... and the same chunked answer within the cap is accepted.
    assert await net.client(de).get_blob(blob_id, out, max_size=2 * MIB) == digest
    assert net.leftovers(out) == ["out.bin"]


async def test_failed_download_keeps_an_existing_file(net: Net) -> None:
    de, blob_id, _digest = await uploaded(net, 100_000)
    out = net.tmp / "out.bin"
    out.write_bytes(b"previous")
    with pytest.raises(SizeLimitExceeded):
        await net.client(de).get_blob(blob_id, out, max_size=10)
    assert out.read_bytes() == b"previous"
    assert net.leftovers(out) == ["out.bin"]


async def test_blob_refusals_are_typed(net: Net) -> None:
    fr, de, es = await net.members("FR-PNF", "DE-BKA", "ES-FCC")
    source = net.tmp / "source.bin"
    source.write_bytes(b"ciphertext")
    blob_id = new_id()
    await net.client(fr).put_blob(blob_id, source)
    with pytest.raises(Conflict):  # an id in use
        await net.client(de).put_blob(blob_id, source)
    with pytest.raises(InvalidIdentifier):
        await net.client(fr).put_blob("X" * 32, source)
    with pytest.raises(StorageError):
        await net.client(fr).put_blob(new_id(), net.tmp / "missing")
    await net.client(fr).submit_message(net.seal(fr, de, blobs=[blob_id]))
    out = net.tmp / "out.bin"
    for member, target in ((es, blob_id), (de, new_id())):  # not a recipient; unknown
        with pytest.raises(NotFound):
            await net.client(member).get_blob(target, out, max_size=MIB)
        assert net.leftovers(out) == []
    with pytest.raises(StorageError):  # the destination directory does not exist
        await net.client(de).get_blob(blob_id, net.tmp / "nowhere" / "out", max_size=MIB)
    with pytest.raises(UsageError):
        await net.client(None).get_blob(blob_id, out, max_size=MIB)


async def test_file_changed_during_upload_is_refused(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fr,) = await net.members("FR-PNF")
    source = net.tmp / "source.bin"
    random_file(source, 3 * MIB)
    blob_id = new_id()

    def grow(done: int, total: int) -> None:
        if done == MIB:  # after the first chunk went out, the file changes under us
            with source.open("r+b") as f:
                f.seek(2 * MIB)
                f.write(b"changed")

    with pytest.raises(StorageError, match="changed"):
        await net.client(fr).put_blob(blob_id, source, progress=grow)
    assert await net.hub.rows(db.Blob) == []


# --- answers that do not have the documented shape -----------------------------------------------
#
# A stand-in hub (no database: these tests do not use ``db_url``) answers each request with
# what the test put in ``answers``; the client must refuse every malformed shape.


@dataclass
class FakeHub:
    base: str
    answers: dict[str, web.StreamResponse]


@pytest.fixture
async def fake_hub() -> AsyncIterator[FakeHub]:
    answers: dict[str, web.StreamResponse] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "PUT":
            await request.read()
        return answers[request.path]

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield FakeHub(str(server.make_url("")).rstrip("/"), answers)
    finally:
        await server.close()


def fake_client(fake: FakeHub) -> HubClient:
    return HubClient(fake.base, network=bytes(32), key=SigningKey.generate())


def page(value: object) -> web.Response:
    return web.Response(body=orjson.dumps(value), content_type="application/json")


GOOD_ITEM = {"cursor": 5, "kind": "envelope", "data": canonical.b64e(b"envelope bytes")}


async def test_a_well_formed_mailbox_page_is_read(fake_hub: FakeHub) -> None:
    fake_hub.answers["/v1/mailbox"] = page(
        {"items": [GOOD_ITEM, {**GOOD_ITEM, "cursor": 9, "kind": "non-delivery"}], "cursor": 9}
    )
    async with fake_client(fake_hub) as client:
        assert await client.mailbox(after=3) == (
            [
                MailboxItem(5, "envelope", b"envelope bytes"),
                MailboxItem(9, "non-delivery", b"envelope bytes"),
            ],
            9,
        )


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"cursor": 0},
        {"items": {}, "cursor": 0},
        {"items": [GOOD_ITEM], "cursor": True},
        {"items": [GOOD_ITEM], "cursor": 4},  # not the last item's cursor
        {"items": [GOOD_ITEM]},
        {"items": [[5, "envelope", ""]], "cursor": 5},
        {"items": [{**GOOD_ITEM, "cursor": 3}], "cursor": 3},  # not after ``after``
        {"items": [{**GOOD_ITEM, "cursor": "5"}], "cursor": 5},
        {"items": [GOOD_ITEM, GOOD_ITEM], "cursor": 5},  # cursors must increase
        {"items": [{**GOOD_ITEM, "kind": ""}], "cursor": 5},
        {"items": [{**GOOD_ITEM, "kind": "Envelope"}], "cursor": 5},
        {"items": [{**GOOD_ITEM, "kind": 1}], "cursor": 5},
        {"items": [{**GOOD_ITEM, "data": "not base64!"}], "cursor": 5},
        {"items": [{**GOOD_ITEM, "data": None}], "cursor": 5},
        {"items": [{"cursor": 5, "kind": "envelope"}], "cursor": 5},
        {"items": [GOOD_ITEM, {**GOOD_ITEM, "cursor": 6}], "cursor": 6},  # over ``limit``
    ],
)
async def test_a_malformed_mailbox_page_is_refused(fake_hub: FakeHub, body: object) -> None:
    fake_hub.answers["/v1/mailbox"] = page(body)
    async with fake_client(fake_hub) as client:
        with pytest.raises(MalformedError):
            await client.mailbox(after=3, limit=1)


async def test_an_unexpected_success_status_for_a_message_is_refused(fake_hub: FakeHub) -> None:
    fake_hub.answers["/v1/messages"] = web.Response(status=202, body=b"{}")
    async with fake_client(fake_hub) as client:
        with pytest.raises(MalformedError):
            await client.submit_message(b"envelope")


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"sha256": canonical.b64e(bytes(32))}, 201),
        ({"size": 3}, 201),
        ({"id": "0" * 32}, 201),
        ({}, 200),
    ],
)
async def test_an_upload_answer_for_other_bytes_is_refused(
    fake_hub: FakeHub, tmp_path: Path, change: dict[str, object], status: int
) -> None:
    blob_id = new_id()
    source = tmp_path / "file"
    source.write_bytes(b"ciphertext")
    answer = {
        "id": blob_id,
        "size": 10,
        "sha256": canonical.b64e(hashlib.sha256(b"ciphertext").digest()),
    }
    fake_hub.answers[f"/v1/blobs/{blob_id}"] = web.Response(
        status=status, body=orjson.dumps({**answer, **change}), content_type="application/json"
    )
    async with fake_client(fake_hub) as client:
        with pytest.raises(MalformedError):
            await client.put_blob(blob_id, source)


async def test_a_proxy_error_page_on_download_is_a_remote_error(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    blob_id = new_id()
    fake_hub.answers[f"/v1/blobs/{blob_id}"] = web.Response(
        status=502, text="<html>bad gateway</html>", content_type="text/html"
    )
    out = tmp_path / "out"
    async with fake_client(fake_hub) as client:
        with pytest.raises(RemoteError) as info:
            await client.get_blob(blob_id, out, max_size=MIB)
    assert info.value.http_status == 502
    assert list(tmp_path.iterdir()) == []


async def test_a_download_shorter_than_announced_leaves_no_file(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    blob_id = new_id()
    body = b"x" * 1000
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()

    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Repr-Digest": f"sha-256=:{digest}:"})
        response.content_length = 2000
        await response.prepare(request)
        await response.write(body)
        assert request.transport is not None
        request.transport.close()  # the connection drops before the announced length
        return response

    app = web.Application()
    app.router.add_get("/v1/blobs/{blob_id}", short)
    server = TestServer(app)
    await server.start_server()
    out = tmp_path / "out"
    try:
        client = HubClient(
            str(server.make_url("")).rstrip("/"), network=bytes(32), key=SigningKey.generate()
        )
        async with client:
            with pytest.raises(TransportError):
                await client.get_blob(blob_id, out, max_size=MIB)
    finally:
        await server.close()
    assert list(tmp_path.iterdir()) == []
